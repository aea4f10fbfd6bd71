/**
 * The `train` section: rcnn-node's training step against torchvision's own (eager, 2 threads;
 * tools/peer/bench_train_torchvision.py) on a perf case, for both trainability rules, alternating
 * A B A B in separate processes; then a profile of rcnn-node's step, the step's FLOPs, the conv probe
 * and data-parallel throughput, each printed with its target (issue 19).
 */
import { spawn } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trainingAllocatorEnvironment } from '@rcnn/runtime/training';
import { childResult, runNode } from './child.js';
import type { ConvProbeResult } from './rcnn-child.js';
import { GEMM_CLASS } from './bench.js';
import { median } from './stats.js';
import type { SessionProfile, Trainability, TrainFlopsResult, TrainStepsResult, TrainTask, TrainThroughputResult } from './train-child.js';

/** One row of bench_train_torchvision.py (the fields used here). */
export interface TorchTrainRow {
  readonly model: string;
  readonly trainable: string;
  readonly trainable_params: number;
  readonly runs_s: readonly number[];
  readonly median_s: number;
  readonly peak_rss_mb: number;
  readonly losses: Readonly<Record<string, number>>;
  readonly work_per_step?: readonly Readonly<Record<string, number>>[];
  /** With `--op-profile`: one more step under torch's profiler, split as the bench splits rcnn-node's. */
  readonly op_profile?: TorchOpProfile;
}

/** torchvision's own step under torch.autograd.profiler (bench_train_torchvision.py `--op-profile`). */
export interface TorchOpProfile {
  /** Wall time of the profiled step, s. */
  readonly step_s: number;
  /** Self CPU time of its convolution / matmul-class operators (forward and backward), s. */
  readonly gemm_s: number;
  /** 1 − gemm_s / step_s. */
  readonly outside_share: number;
  /** The largest operators by self CPU time, [name, s]. */
  readonly top_self_s: readonly (readonly [string, number])[];
}

/** Settings of the train section. */
export interface TrainBenchOptions {
  readonly rounds: number;
  /** Timed steps per process (after one warm-up step). */
  readonly runs: number;
  readonly threads: number;
  readonly trainabilities: readonly Trainability[];
  /** Python with torch 1.13 / torchvision 0.14.1 (Debian python3-torchvision), or undefined for no baseline. */
  readonly python: string | undefined;
  /** tools/peer/bench_train_torchvision.py. */
  readonly peerScript: string;
  /** Steps per throughput measurement (after one warm-up step). */
  readonly throughputSteps: number;
  readonly profile: boolean;
  readonly probe: readonly [number, number, number];
}

/** What was measured for one trainability rule. */
export interface TrainRuleReport {
  readonly trainable: Trainability;
  readonly rcnn: readonly TrainStepsResult[];
  readonly torch: readonly TorchTrainRow[];
  readonly stepMs: number | undefined;
  readonly torchStepMs: number | undefined;
  readonly peakRssMb: number | undefined;
  readonly torchPeakRssMb: number | undefined;
  readonly profiled: TrainStepsResult | undefined;
  /** torchvision's step under its profiler (with the profile, where python is given). */
  readonly torchProfiled: TorchTrainRow | undefined;
  readonly flops: TrainFlopsResult | undefined;
}

/** The train section of one case. */
export interface TrainCaseReport {
  readonly name: string;
  readonly kind: 'maskrcnn' | 'keypointrcnn';
  readonly options: Omit<TrainBenchOptions, 'python'> & { readonly python: string | undefined };
  readonly rules: readonly TrainRuleReport[];
  readonly conv: ConvProbeResult | undefined;
  readonly throughput: readonly TrainThroughputResult[];
}

const here = dirname(fileURLToPath(import.meta.url));

/** a / b, or undefined when either side was not measured. */
const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined || b === 0 ? undefined : a / b);

/** rcnn-node's side runs in the environment `rcnn train` gives itself (its allocator settings, M6). */
const TRAINING_ENV = trainingAllocatorEnvironment(process.env) ?? process.env;

async function trainTask<T>(task: TrainTask): Promise<T> {
  return childResult<T>(await runNode([join(here, 'train-child.js'), JSON.stringify(task)], { env: TRAINING_ENV, timeoutMs: 60 * 60_000 }));
}

/** The model kind of a perf case directory (maskrcnn_r50fpn, keypointrcnn_r50fpn). */
export function caseKind(caseDir: string): 'maskrcnn' | 'keypointrcnn' {
  return basename(caseDir).startsWith('keypoint') ? 'keypointrcnn' : 'maskrcnn';
}

/**
 * Runs one configuration of the torchvision script in its own process (`--one kind:rule`); with
 * `opProfile`, one more step under torch's profiler (`--op-profile`).
 */
export function timeTorchTrain(python: string, script: string, kind: string, trainable: Trainability, threads: number, runs: number, opProfile = false): Promise<TorchTrainRow> {
  return new Promise((resolve, reject) => {
    const args = [script, '--one', `${kind}:${trainable}`, '--threads', String(threads), '--runs', String(runs), ...(opProfile ? ['--op-profile'] : [])];
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`${script} --one ${kind}:${trainable} exited with ${code}:\n${`${stdout}\n${stderr}`.trim().split('\n').slice(-8).join('\n')}`));
      resolve(JSON.parse(line) as TorchTrainRow);
    });
  });
}

/** The train section on one case. */
export async function benchTrain(caseDir: string, options: TrainBenchOptions, log: (line: string) => void): Promise<TrainCaseReport> {
  const kind = caseKind(caseDir);
  const name = basename(caseDir);
  const rules: TrainRuleReport[] = [];
  for (const trainable of options.trainabilities) {
    const rcnn: TrainStepsResult[] = [];
    const torch: TorchTrainRow[] = [];
    for (let round = 0; round < options.rounds; round++) {
      log(`${name} ${trainable}: round ${round + 1}/${options.rounds} A (rcnn-node)`);
      rcnn.push(await trainTask<TrainStepsResult>({ mode: 'steps', caseDir, trainable, threads: options.threads, runs: options.runs, profile: false }));
      if (options.python) {
        log(`${name} ${trainable}: round ${round + 1}/${options.rounds} B (torchvision)`);
        torch.push(await timeTorchTrain(options.python, options.peerScript, kind, trainable, options.threads, options.runs));
      }
    }
    let profiled: TrainStepsResult | undefined;
    let torchProfiled: TorchTrainRow | undefined;
    let flops: TrainFlopsResult | undefined;
    if (options.profile) {
      log(`${name} ${trainable}: profile`);
      profiled = await trainTask<TrainStepsResult>({ mode: 'steps', caseDir, trainable, threads: options.threads, runs: 1, profile: true });
      if (options.python) {
        log(`${name} ${trainable}: torchvision's operator profile`);
        torchProfiled = await timeTorchTrain(options.python, options.peerScript, kind, trainable, options.threads, 1, true);
      }
      log(`${name} ${trainable}: FLOPs`);
      flops = await trainTask<TrainFlopsResult>({ mode: 'flops', caseDir, trainable, threads: options.threads });
    }
    rules.push({
      trainable,
      rcnn,
      torch,
      stepMs: rcnn.length ? median(rcnn.flatMap((r) => r.stepsMs)) : undefined,
      torchStepMs: torch.length ? median(torch.flatMap((r) => r.runs_s.map((s) => s * 1000))) : undefined,
      peakRssMb: rcnn.length ? median(rcnn.map((r) => r.peakRssMb)) : undefined,
      torchPeakRssMb: torch.length ? median(torch.map((r) => r.peak_rss_mb)) : undefined,
      profiled,
      torchProfiled,
      flops,
    });
  }
  let conv: ConvProbeResult | undefined;
  if (options.profile) {
    const [c, h, w] = options.probe;
    conv = childResult<ConvProbeResult>(await runNode([join(here, 'rcnn-child.js'), JSON.stringify({ mode: 'conv', threads: options.threads, channels: c, height: h, width: w, runs: 3 })]));
  }
  const throughput: TrainThroughputResult[] = [];
  if (options.throughputSteps > 0) {
    const trainable = options.trainabilities[0] ?? 'tbl3';
    for (const [replicas, batch] of [
      [1, 2],
      [2, 1],
    ] as const) {
      log(`${name}: throughput, ${replicas} replica(s) x batch ${batch}`);
      throughput.push(await trainTask<TrainThroughputResult>({ mode: 'throughput', caseDir, trainable, replicas, batch, steps: options.throughputSteps, threads: options.threads }));
    }
  }
  return { name, kind, options, rules, conv, throughput };
}

/**
 * Where rcnn-node's timed steps went, medians over every step of every round: onnxruntime's runs,
 * the SGD update, and the rest (host work); undefined when a child did not report its phases.
 */
export function stepPhases(results: readonly TrainStepsResult[]): { sessionMs: number; updateMs: number; hostMs: number } | undefined {
  if (results.length === 0 || results.some((r) => !r.phasesMs)) return undefined;
  const session = results.flatMap((r) => r.phasesMs!.session);
  const update = results.flatMap((r) => r.phasesMs!.update);
  const host = results.flatMap((r) => r.stepsMs.map((t, i) => t - r.phasesMs!.session[i]! - r.phasesMs!.update[i]!));
  return { sessionMs: median(session), updateMs: median(update), hostMs: median(host) };
}

/** Time of a step inside Conv / ConvTranspose / Gemm / MatMul kernels (both sessions), ms. */
export function gemmKernelMs(profile: { readonly proposals?: SessionProfile; readonly training: SessionProfile }): number {
  return [profile.proposals, profile.training].filter((p): p is SessionProfile => p !== undefined).reduce((a, p) => a + p.ops.filter((o) => GEMM_CLASS.has(o.op)).reduce((b, o) => b + o.ms, 0), 0);
}

/** One target line: what, the goal, what was measured, met. */
export interface TrainTarget {
  readonly target: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
const seconds = (ms: number | undefined): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);

/** The issue's targets for one case. */
export function checkTrainTargets(report: TrainCaseReport): TrainTarget[] {
  const out: TrainTarget[] = [];
  for (const r of report.rules) {
    const label = r.trainable === 'tbl3' ? 'trainable_backbone_layers=3' : 'frozen conv body';
    const t = ratio(r.stepMs, r.torchStepMs);
    out.push({ target: `step time (${label})`, goal: '≤ 0.80x torchvision', measured: t === undefined ? 'no baseline' : `${t.toFixed(2)}x (${seconds(r.stepMs)} vs ${seconds(r.torchStepMs)})`, met: t === undefined ? undefined : t <= 0.8 });
    const m = ratio(r.peakRssMb, r.torchPeakRssMb);
    out.push({ target: `peak RSS (${label})`, goal: '≤ 1.00x torchvision', measured: m === undefined ? 'no baseline' : `${m.toFixed(2)}x (${Math.round(r.peakRssMb!)} vs ${Math.round(r.torchPeakRssMb!)} MB)`, met: m === undefined ? undefined : m <= 1 });
    const p = r.profiled;
    if (p?.profile) {
      const step = median(p.stepsMs);
      const outside = 1 - gemmKernelMs(p.profile) / step;
      // torchvision's own step measured the same way, for scale (its convolution backward's im2col
      // and col2im count as GEMM time there; the graph's tap copies count as outside here).
      const op = r.torchProfiled?.op_profile;
      const torchSide = op ? `; torchvision ${pct(op.outside_share)}, ${seconds((op.step_s - op.gemm_s) * 1000)}` : '';
      out.push({
        target: `outside Conv/ConvT/Gemm/MatMul (${label})`,
        goal: '≤ 15% of the step',
        measured: `${pct(outside)} (${seconds(step * outside)}${torchSide})`,
        met: outside <= 0.15,
      });
      const frozen = [...(p.profile.proposals?.frozenGradientKernels ?? []), ...p.profile.training.frozenGradientKernels];
      out.push({
        target: `frozen stages: no backward (${label})`,
        goal: 'no gradient kernel',
        measured: frozen.length === 0 ? `none (${p.profile.training.backboneGradientKernels} in trainable conv-body stages)` : `${frozen.length}: ${frozen.slice(0, 3).join(', ')}`,
        met: frozen.length === 0,
      });
      if (r.flops && report.conv) {
        const gflops = (r.flops.training.total + (r.flops.proposals?.total ?? 0)) / 1e9 / (step / 1000);
        out.push({ target: `GFLOP/s of the step (${label})`, goal: 'reported vs the conv probe', measured: `${gflops.toFixed(0)} vs ${report.conv.gflopPerSecond.toFixed(0)} (${pct(gflops / report.conv.gflopPerSecond)})`, met: true });
      }
    }
  }
  const one = report.throughput.find((t) => t.replicas === 1);
  const two = report.throughput.find((t) => t.replicas === 2);
  if (one && two) {
    const q = two.imagesPerSecond / one.imagesPerSecond;
    out.push({ target: '2 replicas x 1 image vs 1 replica x batch 2', goal: '≥ 0.95x', measured: `${q.toFixed(2)}x (${two.imagesPerSecond.toFixed(3)} vs ${one.imagesPerSecond.toFixed(3)} images/s)`, met: q >= 0.95 });
  }
  return out;
}

const pad = (s: string, n: number): string => (s.length >= n ? `${s} ` : s + ' '.repeat(n - s.length));

function profileLine(name: string, p: SessionProfile): string {
  const top = p.ops
    .filter((o) => o.share >= 0.005)
    .map((o) => `${o.op} ${pct(o.share)}`)
    .join(', ');
  const mb = (bytes: number): string => `${Math.round(bytes / 1048576)} MB`;
  const memory = p.memory ? `; memory in use at most ${mb(p.memory.peakInUseBytes)} (after ${p.memory.peakNode}), arena ${mb(p.memory.arenaHeldBytes)}` : '';
  return `${name} (${(p.kernelMs / 1000).toFixed(2)} s of kernels, backward ${(p.backwardMs / 1000).toFixed(2)} s): ${top}${memory}`;
}

/** The printed train section of one case. */
export function formatTrain(report: TrainCaseReport): string {
  const o = report.options;
  const lines: string[] = [
    `## ${report.name}: training step, ${o.threads} thread(s), ${o.rounds} round(s) x ${o.runs} step(s), A (rcnn-node) B (torchvision eager) alternating`,
    '',
    `rcnn-node runs as \`rcnn train\` does: MALLOC_ARENA_MAX=${TRAINING_ENV.MALLOC_ARENA_MAX ?? '(unset)'}${process.env.RCNN_BENCH_SET ? `, config overrides RCNN_BENCH_SET='${process.env.RCNN_BENCH_SET}'` : ''}; torchvision in this process's environment (MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '(unset)'}).`,
    '',
  ];
  lines.push('```', `${pad('median', 40)}${pad('rcnn-node', 12)}${pad('torchvision', 12)}rcnn/torch`);
  for (const r of report.rules) {
    lines.push(`${pad(`step (${r.trainable})`, 40)}${pad(seconds(r.stepMs), 12)}${pad(seconds(r.torchStepMs), 12)}${ratio(r.stepMs, r.torchStepMs)?.toFixed(2) ?? '-'}x`);
    lines.push(`${pad(`peak RSS (${r.trainable})`, 40)}${pad(r.peakRssMb === undefined ? '-' : `${Math.round(r.peakRssMb)} MB`, 12)}${pad(r.torchPeakRssMb === undefined ? '-' : `${Math.round(r.torchPeakRssMb)} MB`, 12)}${ratio(r.peakRssMb, r.torchPeakRssMb)?.toFixed(2) ?? '-'}x`);
  }
  lines.push('```', '');
  for (const r of report.rules) {
    const steps = r.rcnn.map((x) => x.stepsMs.map((v) => (v / 1000).toFixed(2)).join(', ')).join(' | ');
    const torch = r.torch.map((x) => x.runs_s.join(', ')).join(' | ');
    lines.push(`${r.trainable}: rcnn-node steps (s) ${steps || '-'}; torchvision ${torch || '-'}; rcnn-node losses ${JSON.stringify(r.rcnn[0]?.losses ?? {})}; torchvision ${JSON.stringify(r.torch[0]?.losses ?? {})}`);
    const phases = stepPhases(r.rcnn);
    if (phases) lines.push(`${r.trainable}: rcnn-node step (median) = onnxruntime ${seconds(phases.sessionMs)} + SGD update ${Math.round(phases.updateMs)} ms + host ${Math.round(phases.hostMs)} ms (transform, GT feeds, hand-offs)`);
    if (r.profiled?.profile) {
      lines.push('', `profile (${r.trainable}, one step ${seconds(median(r.profiled.stepsMs))}):`);
      if (r.profiled.profile.proposals) lines.push(profileLine('  proposal pass', r.profiled.profile.proposals));
      lines.push(profileLine('  training graph', r.profiled.profile.training));
    }
    const op = r.torchProfiled?.op_profile;
    if (op) {
      const top = op.top_self_s.map(([k, v]) => `${k} ${pct(v / op.step_s)}`).join(', ');
      lines.push(`  torchvision's step under its profiler (${seconds(op.step_s * 1000)}, GEMM-class ${seconds(op.gemm_s * 1000)}): ${top}`);
    }
    if (r.flops) {
      const f = r.flops;
      lines.push(`FLOPs (${r.trainable}): training graph ${(f.training.total / 1e9).toFixed(1)} GFLOP (backward ${f.backwardGflop.toFixed(1)}; conv ${(f.training.conv / 1e9).toFixed(1)}, deconv ${(f.training.deconv / 1e9).toFixed(1)}, gemm ${(f.training.gemm / 1e9).toFixed(1)}, matmul ${(f.training.matmul / 1e9).toFixed(1)})${f.proposals ? ` + proposal pass ${(f.proposals.total / 1e9).toFixed(1)}` : ' (proposals in the graph)'}`);
    }
    lines.push('');
  }
  if (report.conv) lines.push(`one 3x3 conv ${report.conv.gflop.toFixed(1)} GFLOP: ${report.conv.gflopPerSecond.toFixed(0)} GFLOP/s`, '');
  for (const t of report.throughput) lines.push(`throughput: ${t.replicas} replica(s) x batch ${t.batch}: ${t.imagesPerSecond.toFixed(3)} images/s (${t.images} images in ${seconds(t.wallMs)}), peak RSS ${Math.round(t.peakRssMb)} MB`);
  lines.push('', '```', `${pad('target', 48)}${pad('goal', 28)}${pad('measured', 44)}met`);
  for (const t of checkTrainTargets(report)) lines.push(`${pad(t.target, 48)}${pad(t.goal, 28)}${pad(t.measured, 44)}${t.met === undefined ? '-' : t.met ? 'met' : 'not met'}`);
  lines.push('```', '');
  return lines.join('\n');
}
