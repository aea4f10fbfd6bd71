#!/usr/bin/env node
/**
 * The synthetic shapes benchmark (issue #17, "proof that it learns"): generates a train and a
 * held-out val split, trains each model of the plan (`configs/bench.yaml`) from random init with
 * `rcnn train`, evaluates it with `rcnn eval` on the val split, and prints the wall time, the loss
 * curve and the COCO numbers against the plan's goals. It runs the `rcnn` command itself (child
 * processes), so what it measures is what a user runs. A benchmark, not a test: nothing here fails
 * on a number; the verdicts are printed and written to `<out>/bench.json`.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type BenchModel, type GoalVerdict, type LossPoint, judgeGoals, lossCurveSvg, lossSummary, namedStats, parseMetrics, readBenchPlan } from './bench-report.js';
import { writeShapesDataset } from './write.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The plan shipped with the tool (tools/shapes/configs/bench.yaml). */
const DEFAULT_PLAN = resolve(HERE, '..', '..', 'configs', 'bench.yaml');

const HELP = `Usage: npm run bench -w tools/shapes -- [options]
       node tools/shapes/build/src/bench.js [options]

Trains each model of the plan from random init with rcnn train on a generated shapes split, evaluates
it with rcnn eval on a held-out split, and prints time, loss curve and COCO AP against the goals.
Build first (npm run build).

Options:
      --plan <file>         benchmark plan (default tools/shapes/configs/bench.yaml)
      --out <dir>           data, checkpoints, reports, bench.json (default out/shapes-bench)
      --models <names>      comma-separated subset of the plan's models (default: all)
      --set <KEY=VALUE>     config override for every model, train and eval (repeatable), e.g.
                            --set SOLVER.MAX_ITER=200 for a short exploratory run
      --device <devices>    rcnn train --device (default cpu)
      --threads <n>         rcnn train --threads (default: cores / replicas)
      --resume              continue interrupted runs in --out (rcnn train --resume; the same
                            losses as an uninterrupted run); the times then cover this call only
  -h, --help                this help`;

/** What one child process took. */
interface RunTime {
  readonly wallSeconds: number;
  /** User + system CPU seconds of the process (Linux /proc; undefined elsewhere). */
  readonly cpuSeconds: number | undefined;
  /** Mean 1-minute load average sampled during the run. */
  readonly meanLoad: number;
}

const CLOCK_TICKS = 100;

/** utime + stime of a live process in seconds, from /proc/<pid>/stat (undefined when unavailable). */
function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of proc(5) (utime, stime) are the 12th and 13th after the command name.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Runs `node <script> args`, its output shown with a prefix and kept in `log`; fails on a non-zero status. */
async function runNode(script: string, args: readonly string[], log: string, label: string): Promise<RunTime> {
  const file = createWriteStream(log);
  const started = performance.now();
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let cpu: number | undefined;
  const loads: number[] = [loadavg()[0]!];
  const sampler = setInterval(() => {
    if (child.pid !== undefined) cpu = cpuSecondsOf(child.pid) ?? cpu;
    loads.push(loadavg()[0]!);
  }, 2000);
  const forward = (chunk: Buffer): void => {
    file.write(chunk);
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) process.stdout.write(`[${label}] ${line}\n`);
  };
  child.stdout.on('data', forward);
  child.stderr.on('data', forward);
  const code = await new Promise<number | null>((done, reject) => {
    child.on('error', reject);
    child.on('close', done);
  });
  clearInterval(sampler);
  await new Promise<void>((done) => file.end(done));
  if (code !== 0) throw new Error(`${label} exited with status ${code}; its output is in ${log}`);
  return { wallSeconds: (performance.now() - started) / 1000, cpuSeconds: cpu, meanLoad: loads.reduce((a, b) => a + b, 0) / loads.length };
}

/** The `rcnn` command of the workspace's @rcnn/cli (built). */
function rcnnBin(): string {
  const pkgPath = createRequire(import.meta.url).resolve('@rcnn/cli/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { bin: { rcnn: string } };
  const bin = join(dirname(pkgPath), pkg.bin.rcnn);
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: build the workspace first (npm run build)`);
  return bin;
}

/** Everything measured for one model. */
interface ModelResult {
  readonly name: string;
  readonly config: string;
  readonly iterations: number;
  readonly train: RunTime;
  /** Sum of the steps' own times from metrics.json (no data loading waits, no checkpoints). */
  readonly stepSeconds: number;
  readonly eval: RunTime;
  readonly loss: readonly LossPoint[];
  readonly stats: Readonly<Record<string, number>>;
  readonly goals: readonly GoalVerdict[];
  readonly withinTime: boolean;
  readonly report: string;
}

async function benchModel(model: BenchModel, data: { train: string; trainImages: string; val: string; valImages: string }, options: { out: string; set: readonly string[]; device?: string; threads?: string; resume: boolean; timeLimitMinutes: number }): Promise<ModelResult> {
  const bin = rcnnBin();
  const out = join(options.out, model.name);
  await mkdir(out, { recursive: true });
  const sets = options.set.flatMap((s) => ['--set', s]);
  process.stdout.write(`\n== ${model.name}: rcnn train --config ${relative(process.cwd(), model.config)} (load average ${loadavg().map((l) => l.toFixed(2)).join(', ')})\n`);
  const train = await runNode(
    bin,
    [
      'train', '--config', model.config, ...sets,
      '--dataset', data.train, '--images', data.trainImages,
      '--out', out,
      ...(options.device ? ['--device', options.device] : []),
      ...(options.threads ? ['--threads', options.threads] : []),
      ...(options.resume ? ['--resume'] : []),
    ],
    join(out, 'train.log'),
    `${model.name} train`,
  );
  const entries = parseMetrics(await readFile(join(out, 'metrics.json'), 'utf8'));
  const evalJson = join(out, 'eval.json');
  const evalRun = await runNode(
    bin,
    [
      'eval', '--config', model.config, ...sets,
      '--weights', join(out, 'model_final.safetensors'),
      '--dataset', data.val, '--images', data.valImages,
      '--iou-type', model.iouTypes.join(','),
      ...(model.oksSigmas ? ['--oks-sigmas', model.oksSigmas.join(',')] : []),
      '--save-results', join(out, 'val-results.json'),
      '--json', evalJson,
    ],
    join(out, 'eval.log'),
    `${model.name} eval`,
  );
  const stats = namedStats(JSON.parse(await readFile(evalJson, 'utf8')) as Record<string, unknown>, model.iouTypes);
  return {
    name: model.name,
    config: model.config,
    iterations: entries.length,
    train,
    stepSeconds: entries.reduce((s, e) => s + (e.time ?? 0), 0),
    eval: evalRun,
    loss: lossSummary(entries),
    stats,
    goals: judgeGoals(model.goals, stats),
    withinTime: train.wallSeconds <= options.timeLimitMinutes * 60,
    report: join(out, 'report.html'),
  };
}

const f3 = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));
const minutes = (s: number): string => `${(s / 60).toFixed(1)} min`;

/** The result of one model as Markdown (printed, and written to `<out>/summary.md`). */
function modelMarkdown(r: ModelResult, limit: number): string {
  const lossNames = Object.keys(r.loss[0]?.losses ?? {});
  const lines = [
    `### ${r.name}`,
    '',
    `- config: ${relative(process.cwd(), r.config)}; ${r.iterations} iterations`,
    `- rcnn train: ${minutes(r.train.wallSeconds)} wall (${r.train.cpuSeconds === undefined ? 'CPU time n/a' : `${minutes(r.train.cpuSeconds)} CPU`}, steps ${minutes(r.stepSeconds)}), mean load average ${r.train.meanLoad.toFixed(2)}; goal < ${limit} min: ${r.withinTime ? 'met' : 'NOT MET'}`,
    `- rcnn eval: ${r.eval.wallSeconds.toFixed(1)} s wall, mean load average ${r.eval.meanLoad.toFixed(2)}`,
    `- report with the curves: ${relative(process.cwd(), r.report)}`,
    '',
    `| iteration | total loss | ${lossNames.map((n) => n.replace(/^loss_/, '')).join(' | ')} |`,
    `| ---: | ---: | ${lossNames.map(() => '---:').join(' | ')} |`,
    ...r.loss.map((p) => `| ${p.iterations} | ${f3(p.total)} | ${lossNames.map((n) => f3(p.losses[n])).join(' | ')} |`),
    '',
    `| metric | value | goal | |`,
    '| --- | ---: | ---: | --- |',
    ...Object.entries(r.stats).map(([metric, value]) => {
      const goal = r.goals.find((g) => g.metric === metric);
      return `| ${metric} | ${f3(value)} | ${goal ? `≥ ${goal.goal}` : ''} | ${goal ? (goal.met ? 'met' : 'NOT MET') : ''} |`;
    }),
    '',
  ];
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      plan: { type: 'string' },
      out: { type: 'string' },
      models: { type: 'string' },
      set: { type: 'string', multiple: true },
      device: { type: 'string' },
      threads: { type: 'string' },
      resume: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const plan = readBenchPlan(values.plan ?? DEFAULT_PLAN);
  const wanted = values.models?.split(',').map((s) => s.trim()).filter(Boolean);
  const models = wanted ? wanted.map((n) => plan.models.find((m) => m.name === n) ?? (() => { throw new Error(`--models: the plan has no model "${n}" (it has ${plan.models.map((m) => m.name).join(', ')})`); })()) : plan.models;
  const out = resolve(values.out ?? join('out', 'shapes-bench'));
  const started = new Date();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}`;
  process.stdout.write(`shapes benchmark: ${machine}; load average at start ${loadavg().map((l) => l.toFixed(2)).join(', ')}\n`);
  const dataDir = join(out, 'data');
  const splits = await writeShapesDataset(dataDir, plan.dataset);
  for (const s of splits) process.stdout.write(`${s.name}: ${s.imageCount} images, ${s.annotationCount} annotations -> ${relative(process.cwd(), s.dataset)}\n`);
  const data = { train: join(dataDir, 'train.json'), trainImages: join(dataDir, 'train'), val: join(dataDir, 'val.json'), valImages: join(dataDir, 'val') };
  const results: ModelResult[] = [];
  const overrides = values.set ?? [];
  /** Writes summary.md, bench.json and loss.svg for the models done so far (after each model, so a later failure keeps them). */
  const writeResults = async (): Promise<string> => {
    const curves = await Promise.all(results.map(async (r) => ({ name: r.name, entries: parseMetrics(await readFile(join(out, r.name, 'metrics.json'), 'utf8')) })));
    await writeFile(join(out, 'loss.svg'), lossCurveSvg(curves, { title: 'Synthetic shapes from random init: total training loss' }));
    const header = [
      '## Synthetic shapes benchmark',
      '',
      `- ${started.toISOString()}, ${machine}; load average after the last model ${loadavg().map((l) => l.toFixed(2)).join(', ')}`,
      `- data: ${plan.dataset.train} train / ${plan.dataset.val} held-out val images of ${plan.dataset.width}x${plan.dataset.height}, seed ${plan.dataset.seed}${overrides.length ? `; overrides: ${overrides.join(' ')}` : ''}${values.resume ? '; resumed (times: this call only)' : ''}`,
      '',
    ].join('\n');
    const summary = `${header}\n${results.map((r) => modelMarkdown(r, plan.timeLimitMinutes)).join('\n')}`;
    await writeFile(join(out, 'summary.md'), summary);
    await writeFile(join(out, 'bench.json'), `${JSON.stringify({ started: started.toISOString(), machine, loadAverageEnd: loadavg(), dataset: plan.dataset, overrides, models: results }, null, 1)}\n`);
    return summary;
  };
  for (const model of models) {
    results.push(
      await benchModel(model, data, {
        out,
        set: overrides,
        ...(values.device ? { device: values.device } : {}),
        ...(values.threads ? { threads: values.threads } : {}),
        resume: values.resume ?? false,
        timeLimitMinutes: plan.timeLimitMinutes,
      }),
    );
    await writeResults();
  }
  const summary = await writeResults();
  process.stdout.write(`\n${summary}\n`);
  const verdict = results.flatMap((r) => [...r.goals.map((g) => `${r.name} ${g.metric} ${f3(g.value)} (goal ≥ ${g.goal}): ${g.met ? 'met' : 'not met'}`), `${r.name} training time ${minutes(r.train.wallSeconds)} (goal < ${plan.timeLimitMinutes} min): ${r.withinTime ? 'met' : 'not met'}`]);
  process.stdout.write(`${verdict.join('\n')}\n\nwritten: ${relative(process.cwd(), join(out, 'summary.md'))}, bench.json, loss.svg\n`);
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`shapes bench: error: ${(e as Error).message}\n`);
  process.exitCode = 2;
}
