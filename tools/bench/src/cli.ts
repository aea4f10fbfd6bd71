#!/usr/bin/env node
/**
 * `node tools/bench/build/src/cli.js [options] [caseDir...]` (or `npm run perf -w @rcnn/bench-tools`):
 * rcnn-node against torchvision's own ONNX export on the perf cases. See tools/bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchOptions, type CaseReport, SECTIONS, type Section, benchCase, rcnnTask } from './bench.js';
import type { PlacementResult } from './rcnn-child.js';
import { DEFAULT_PEER_TOOL, defaultOrtNodeDir } from './peer.js';
import { formatCase } from './report.js';
import { type TrainBenchOptions, type TrainCaseReport, benchTrain, formatTrain } from './train.js';
import type { Trainability } from './train-child.js';

/** The repository root (tools/bench/build/src → ../../../..). */
const REPO_ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../../../..');

const HELP = `usage: node tools/bench/build/src/cli.js [options] [caseDir...]

Times rcnn-node against the baseline (torchvision's own ONNX export, <case>/peer.onnx, timed by the
tools/peer/time_peer.cjs) on perf cases made by make_perf_cases.sh, alternating A B A B in separate
processes, then profiles both, counts the forward's FLOPs, probes one large conv and measures
throughput. Default cases: <perf-dir>/maskrcnn_r50fpn and <perf-dir>/keypointrcnn_r50fpn.

  --perf-dir <dir>         where the perf cases are (default .data/perf)
  --rounds <n>             A B rounds (default 3)
  --runs <n>               timed runs per process after the first (default 2)
  --threads <n>            onnxruntime intra-op threads on both sides (default 2)
  --sections <list>        any of ${SECTIONS.join(',')} (default all)
  --throughput-images <n>  images per throughput measurement (default 4)
  --batches <list>         batch sizes for throughput (default 1,2,4)
  --replicas <list>        CPU replicas for throughput (default 1,2)
  --probe <C,H,W>          the conv probe's map (default 256,200,272: FPN P2 at 800x1088)
  --profile-runs <n>       profiled runs per side; per-operator medians (default 3)
  --peer-tool <path>       time_peer.cjs (default $PEER_TOOL or ${DEFAULT_PEER_TOOL})
  --ort-node-dir <dir>     onnxruntime-node for the peer (default: this repository's node_modules)
  --no-peer                time rcnn-node only
  --explain-placement <device>
                           instead of timing: run each case once on <device> (e.g. cuda:0) with
                           onnxruntime's profiler and report which nodes ran on which execution
                           provider (those left on the CPU, and the copies between devices)
  --precision <p>          float32 (default) or float16 (conv stages in float16; a GPU option)
                           for --explain-placement
  --train                  instead of the inference sections: the training step (issue 19) against
                           torchvision's (tools/peer/bench_train_torchvision.py), A B alternating,
                           both trainability rules, then profile, FLOPs, conv probe, replicas
  --train-rules <list>     tbl3 (trainable_backbone_layers=3) and/or frozen (default tbl3,frozen)
  --train-throughput-steps <n>  steps per replica/batch throughput measurement (default 2; 0: none)
  --no-train-profile       skip the profiled step, FLOP count and conv probe
  --python <path>          python with torchvision 0.14.1 for the baseline (default /usr/bin/python3)
  --json <file>            also write the full report as JSON
  --markdown <file>        also write the printed report to a file`;

function list(value: string | undefined, fallback: readonly number[]): number[] {
  if (value === undefined) return [...fallback];
  const out = value.split(',').map((v) => Number(v));
  if (out.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`expected a comma-separated list of positive integers, got "${value}"`);
  return out;
}

function positive(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const v = Number(value);
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer, got "${value}"`);
  return v;
}

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      'perf-dir': { type: 'string' },
      rounds: { type: 'string' },
      runs: { type: 'string' },
      threads: { type: 'string' },
      sections: { type: 'string' },
      'throughput-images': { type: 'string' },
      batches: { type: 'string' },
      replicas: { type: 'string' },
      probe: { type: 'string' },
      'profile-runs': { type: 'string' },
      'peer-tool': { type: 'string' },
      'ort-node-dir': { type: 'string' },
      'no-peer': { type: 'boolean' },
      train: { type: 'boolean' },
      'train-rules': { type: 'string' },
      'train-throughput-steps': { type: 'string' },
      'no-train-profile': { type: 'boolean' },
      python: { type: 'string' },
      json: { type: 'string' },
      'explain-placement': { type: 'string' },
      precision: { type: 'string' },
      markdown: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const sections = (values.sections?.split(',') ?? [...SECTIONS]) as Section[];
  const unknown = sections.filter((s) => !SECTIONS.includes(s));
  if (unknown.length > 0) throw new Error(`unknown section(s) ${unknown.join(', ')}; known: ${SECTIONS.join(', ')}`);
  const probe = list(values.probe, [256, 200, 272]);
  if (probe.length !== 3) throw new Error('--probe takes C,H,W');
  const options: BenchOptions = {
    rounds: Math.max(1, positive(values.rounds, 3, '--rounds')),
    runs: positive(values.runs, 2, '--runs'),
    threads: Math.max(1, positive(values.threads, 2, '--threads')),
    sections,
    peer: values['no-peer'] ? undefined : { tool: resolve(values['peer-tool'] ?? process.env.PEER_TOOL ?? DEFAULT_PEER_TOOL), ortNodeDir: resolve(values['ort-node-dir'] ?? defaultOrtNodeDir()) },
    throughputImages: Math.max(1, positive(values['throughput-images'], 4, '--throughput-images')),
    batches: list(values.batches, [1, 2, 4]),
    replicas: list(values.replicas, [1, 2]),
    probe: [probe[0]!, probe[1]!, probe[2]!],
    profileRuns: Math.max(1, positive(values['profile-runs'], 3, '--profile-runs')),
  };
  const perfDir = resolve(values['perf-dir'] ?? '.data/perf');
  const cases = positionals.length > 0 ? positionals.map((p) => resolve(p)) : ['maskrcnn_r50fpn', 'keypointrcnn_r50fpn'].map((c) => join(perfDir, c));
  if (values['explain-placement']) {
    const precision = values.precision ?? 'float32';
    if (precision !== 'float32' && precision !== 'float16') throw new Error(`--precision must be float32 or float16, got "${precision}"`);
    for (const dir of cases) {
      const r = await rcnnTask<PlacementResult>({ mode: 'placement', caseDir: dir, device: values['explain-placement'], precision });
      console.log(`## ${dir}: node placement on ${r.device} (${precision}), session provider ${r.provider}`);
      if (r.fallbackReason) console.log(`onnxruntime could not use ${r.device}: ${r.fallbackReason}`);
      console.log(r.text);
    }
    return 0;
  }
  if (values.train) return trainSection(values, options, cases);
  const host = cpus();
  const header = `# rcnn-node perf bench — ${new Date().toISOString()} — ${host.length} x ${host[0]?.model ?? '?'}, Node ${process.version}`;
  console.log(header);
  const reports: CaseReport[] = [];
  const blocks: string[] = [header, ''];
  for (const dir of cases) {
    const report = await benchCase(dir, options, (line) => console.error(`  ${line}`));
    reports.push(report);
    const text = formatCase(report);
    blocks.push(text, '');
    console.log(`\n${text}\n`);
  }
  if (values.json) {
    mkdirSync(dirname(resolve(values.json)), { recursive: true });
    writeFileSync(values.json, `${JSON.stringify({ date: new Date().toISOString(), host: { cpus: host.length, model: host[0]?.model, node: process.version }, reports }, null, 2)}\n`);
  }
  if (values.markdown) {
    mkdirSync(dirname(resolve(values.markdown)), { recursive: true });
    writeFileSync(values.markdown, `${blocks.join('\n')}\n`);
  }
  return 0;
}

/** `--train`: the training-step section on every case. */
async function trainSection(values: Readonly<Record<string, string | boolean | undefined>>, base: BenchOptions, cases: readonly string[]): Promise<number> {
  const rules = String(values['train-rules'] ?? 'tbl3,frozen').split(',');
  const bad = rules.filter((r) => r !== 'tbl3' && r !== 'frozen');
  if (bad.length > 0) throw new Error(`unknown --train-rules ${bad.join(', ')}; known: tbl3, frozen`);
  const options: TrainBenchOptions = {
    rounds: base.rounds,
    runs: Math.max(1, base.runs),
    threads: base.threads,
    trainabilities: rules as Trainability[],
    python: values['no-peer'] ? undefined : String(values.python ?? '/usr/bin/python3'),
    peerScript: join(REPO_ROOT, 'tools/peer/bench_train_torchvision.py'),
    throughputSteps: positive(values['train-throughput-steps'] as string | undefined, 2, '--train-throughput-steps'),
    profile: !values['no-train-profile'],
    probe: base.probe,
  };
  const host = cpus();
  const header = `# rcnn-node training bench — ${new Date().toISOString()} — ${host.length} x ${host[0]?.model ?? '?'}, Node ${process.version}`;
  console.log(header);
  const blocks: string[] = [header, ''];
  const reports: TrainCaseReport[] = [];
  for (const dir of cases) {
    const report = await benchTrain(dir, options, (line) => console.error(`  ${line}`));
    reports.push(report);
    const text = formatTrain(report);
    blocks.push(text, '');
    console.log(`\n${text}\n`);
  }
  if (typeof values.json === 'string') {
    mkdirSync(dirname(resolve(values.json)), { recursive: true });
    writeFileSync(values.json, `${JSON.stringify({ date: new Date().toISOString(), reports }, null, 2)}\n`);
  }
  if (typeof values.markdown === 'string') {
    mkdirSync(dirname(resolve(values.markdown)), { recursive: true });
    writeFileSync(values.markdown, `${blocks.join('\n')}\n`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`rcnn perf bench: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  },
);
