/**
 * `rcnn bench`: the benchmark. With no arguments it times torchvision's Mask R-CNN R50-FPN
 * (random weights, calibrated so every stage does real work) on the bundled photos, on every GPU
 * found or else the CPU, and writes a JSON and a self-contained HTML report.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { checkOutputFile, ensureOutputDirectory, writeFileAtomic } from '@rcnn/core';
import { cpus, tmpdir, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type DecodedImage,
  type Detector,
  type ImageResult,
  createDetector,
  decodeImage,
  describePlacement,
  discoverGpus,
  nodePlacement,
  readOrtProfile,
  runKernels,
} from '@rcnn/runtime';
import { type Distribution, distribution } from '../bench/stats.js';
import { Baseline } from '../bench/baseline.js';
import { renderHtml } from '../bench/html.js';
import { type BaselineReport, type BenchReport, type Measurement, STAGES, STAGE_NAMES, type Stage, type Summary } from '../bench/model.js';
import { type Command, MODEL_OPTIONS, MODEL_OPTIONS_HELP, RUN_OPTIONS, RUN_OPTIONS_HELP, optFlag, optInt, optString } from '../command.js';
import { EXIT } from '../errors.js';
import { expandImages } from '../images.js';
import { type CliIO, ProgressBar, isTty, say, warn } from '../io.js';
import { detectorOptions } from '../model-options.js';

/** The photos bundled with the CLI (public domain / CC0; assets/LICENSES.md). */
export const SAMPLE_IMAGES = ['astronaut.jpg', 'coffee.jpg', 'chelsea.jpg'].map((f) => join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'assets', f));

/** Where `rcnn bench` writes its reports by default. */
export const DEFAULT_JSON = join('out', 'bench', 'report.json');
/** Where `rcnn bench` writes its HTML report by default. */
export const DEFAULT_HTML = join('out', 'bench', 'report.html');

/** The default model of `rcnn bench`. */
export const DEFAULT_BENCH_CONFIG = 'maskrcnn_resnet50_fpn';

const HELP = `Usage: rcnn bench [options] [IMAGE...]

Times the detector, stage by stage, and writes a report. With no arguments: ${DEFAULT_BENCH_CONFIG}
with random weights (calibrated so that ~1000 proposals and up to 100 detections reach the mask
head, like a trained model), on every GPU found (nvidia-smi) or else the CPU, on the bundled
photos (astronaut, coffee, chelsea; 512 px, resized to 800 px by the model): 1 warm-up image per
replica, then 3 timed runs over the images (about 30 s on 2 CPU cores). Random weights: the timings are real, the detections
are not.

${MODEL_OPTIONS_HELP.replace('  -c, --config <name|file>  preset', `  -c, --config <name|file>  (default ${DEFAULT_BENCH_CONFIG}) preset`)}

${RUN_OPTIONS_HELP.replace('(default cpu)', '(default: cuda:all if a GPU is found, else cpu)')}

Benchmark:
      --runs <n>            timed passes over the images (default 3)
      --warmup <n>          untimed images per replica first (default 1)
      --baseline <model>    also time this ONNX model (e.g. torchvision's export, one CHW float
                            image in [0, 1]) on the same images, alternating A B A B, and print
                            the ratio of the medians
      --json <file>         JSON report (default out/bench/report.json)
      --html <file>         self-contained HTML report with charts (default out/bench/report.html)
      --no-report           write neither report
      --no-progress         no progress bar (it is only drawn on a terminal anyway)
      --explain-placement   instead of timing: run one image per replica with onnxruntime's
                            profiler and report where every node ran (which nodes of a CUDA
                            replica fall back to the CPU, e.g. RoiAlign / NonMaxSuppression, and
                            the device copies onnxruntime inserted)`;

const fmt = (v: number): string => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '-');

function measurement(r: ImageResult, run: number): Measurement {
  const t = r.timings;
  return {
    image: basename(r.source),
    run,
    device: r.device,
    decodeMs: t.decodeMs,
    preprocessMs: t.preprocessMs,
    sessionMs: t.sessionMs,
    transferMs: Math.max(0, t.runMs - t.sessionMs),
    postprocessMs: t.postprocessMs,
    totalMs: t.totalMs,
    batchSize: t.batchSize,
    found: r.detections ? r.detections.scores.length : (r.proposals?.count ?? 0),
  };
}

function summarize(ms: readonly Measurement[], wallMs: number): Summary {
  const stagesMs = Object.fromEntries(STAGES.map((s) => [s, distribution(ms.map((m) => m[s]))])) as Record<Stage, Distribution>;
  return {
    images: ms.length,
    imagesPerSecond: wallMs > 0 ? ms.length / (wallMs / 1000) : Number.NaN,
    latencyMs: distribution(ms.map((m) => m.totalMs)),
    stagesMs,
    found: distribution(ms.map((m) => m.found)),
  };
}

function printSummary(io: CliIO, report: BenchReport): void {
  const header = ['per image, mean ms'.padEnd(20), ...STAGES.map((s) => STAGE_NAMES[s].padStart(16)), 'total'.padStart(10)].join('');
  say(io, header);
  const rows: [string, Summary][] = [...Object.entries(report.perDevice), ...(Object.keys(report.perDevice).length > 1 ? [['all', report.total] as [string, Summary]] : [])];
  for (const [name, s] of rows) {
    say(io, [name.padEnd(20), ...STAGES.map((st) => fmt(s.stagesMs[st].mean).padStart(16)), fmt(s.latencyMs.mean).padStart(10)].join(''));
  }
  const devices = Object.entries(report.perDevice);
  for (const [name, s] of devices.length > 1 ? [...devices, ['total', report.total] as [string, Summary]] : devices) {
    say(io, `${name.padEnd(8)} latency p50 ${(s.latencyMs.p50 / 1000).toFixed(3)} s  p95 ${(s.latencyMs.p95 / 1000).toFixed(3)} s  ${s.imagesPerSecond.toFixed(3)} images/s  (${s.images} images; ${fmt(s.found.mean)} detections per image)`);
  }
}

async function timeImages(detector: Detector, inputs: readonly string[], runs: number, progress: ProgressBar): Promise<{ measurements: Measurement[]; wallMs: number }> {
  const measurements: Measurement[] = [];
  const all = Array.from({ length: runs }, () => inputs).flat();
  const started = performance.now();
  let i = 0;
  for await (const o of detector.stream(all)) {
    if (!o.ok) throw o.error;
    const m = measurement(o.result, Math.floor(i / inputs.length));
    measurements.push(m);
    progress.tick(`${m.image} ${(m.totalMs / 1000).toFixed(2)} s`);
    i++;
  }
  return { measurements, wallMs: performance.now() - started };
}

async function timeWithBaseline(
  detector: Detector,
  baseline: Baseline,
  images: readonly DecodedImage[],
  runs: number,
  progress: ProgressBar,
): Promise<{ measurements: Measurement[]; wallMs: number; pairs: BaselineReport['pairs'] }> {
  const measurements: Measurement[] = [];
  const pairs: { image: string; run: number; oursMs: number; baselineMs: number; oursSessionMs: number; baselineSessionMs: number }[] = [];
  let wallMs = 0;
  for (let run = 0; run < runs; run++) {
    for (const image of images) {
      // A then B on the same decoded pixels, so neither pays for decoding.
      const started = performance.now();
      const r = await detector.predictOne(image);
      wallMs += performance.now() - started;
      const m = { ...measurement(r, run), image: basename(image.source) };
      measurements.push(m);
      const b = await baseline.time(image, detector);
      pairs.push({ image: m.image, run, oursMs: m.totalMs - m.decodeMs, baselineMs: b.ms, oursSessionMs: m.sessionMs, baselineSessionMs: b.sessionMs });
      progress.tick(`${m.image} A ${(m.totalMs / 1000).toFixed(2)} s  B ${(b.ms / 1000).toFixed(2)} s`);
    }
  }
  return { measurements, wallMs, pairs };
}

async function onnxruntimeVersion(): Promise<string> {
  try {
    const { createRequire } = await import('node:module');
    const require = createRequire(fileURLToPath(import.meta.resolve('@rcnn/runtime')));
    return (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** `--explain-placement`: one profiled image per replica, then each replica's node placement. */
async function explainPlacement(options: Parameters<typeof createDetector>[0], image: string, io: CliIO): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'rcnn-placement-'));
  try {
    const detector = await createDetector({ ...options, profile: join(dir, 'placement') });
    const replicas = detector.replicas;
    try {
      const outcomes = await detector.predict(replicas.map(() => image));
      for (const o of outcomes) if (!o.ok) throw o.error;
    } finally {
      await detector.close();
    }
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
    for (const [i, r] of replicas.entries()) {
      const file = files.find((f) => f.startsWith(`placement_r${i}_`));
      say(io, `replica ${i}: ${r.device} → onnxruntime provider ${r.provider}${r.fallbackReason ? ` (fallback: ${r.fallbackReason})` : ''}`);
      if (!file) {
        say(io, '  (no profile was written)');
        continue;
      }
      const placement = nodePlacement(runKernels(await readOrtProfile(join(dir, file)), -1));
      say(io, describePlacement(placement).replace(/^/gm, '  '));
    }
    return EXIT.ok;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function run(values: Parameters<Command['run']>[0], positionals: readonly string[], io: CliIO): Promise<number> {
  if (optFlag(values, 'explain-placement')) {
    const options = await detectorOptions(values, io, { config: DEFAULT_BENCH_CONFIG, devices: discoverGpus().length > 0 ? 'cuda:all' : 'cpu' });
    const images = positionals.length > 0 ? await expandImages(positionals) : SAMPLE_IMAGES;
    return explainPlacement(options, images[0]!, io);
  }
  const runs = optInt(values, 'runs', 1, 10_000) ?? 3;
  const warmup = optInt(values, 'warmup', 0, 1000) ?? 1;
  const baselinePath = optString(values, 'baseline');
  const images = positionals.length > 0 ? await expandImages(positionals, { allowSpecialFiles: optFlag(values, 'allow-special-files'), onSkip: (p, why) => warn(io, `rcnn bench: skipping ${p}: ${why}`) }) : SAMPLE_IMAGES;
  const writeReport = !optFlag(values, 'no-report');
  const jsonPath = optString(values, 'json') ?? DEFAULT_JSON;
  const htmlPath = optString(values, 'html') ?? DEFAULT_HTML;
  if (writeReport) {
    // Before minutes of timing: the report paths must be writable (their directories are created).
    const inputs = images.map((path) => ({ path, what: 'image' }));
    for (const [path, what] of [[jsonPath, '--json report'], [htmlPath, '--html report']] as const) {
      ensureOutputDirectory(dirname(path), `directory of the ${what}`);
      checkOutputFile(path, { what, inputs });
    }
  }
  const options = await detectorOptions(values, io, { config: DEFAULT_BENCH_CONFIG, devices: discoverGpus().length > 0 ? 'cuda:all' : 'cpu' });
  const warnings: string[] = [];
  const started = performance.now();
  const detector = await createDetector({
    ...options,
    onWarning: (m) => {
      warnings.push(m);
      options.onWarning?.(m);
    },
  });
  try {
    const startupMs = performance.now() - started;
    say(io, `rcnn bench: ${detector.configSource} on ${detector.replicas.map((r) => `${r.device}${r.provider !== r.device.split(':')[0] ? ` (→${r.provider})` : ''} ${r.threads.intraOp} thread(s)`).join(', ')}; weights: ${detector.weights.description}`);
    if (detector.randomWeights) say(io, 'RANDOM WEIGHTS: the timings are real, the detections are meaningless');
    const limits = { maxPixels: detector.config.LIMITS.MAX_IMAGE_PIXELS, maxSide: detector.config.LIMITS.MAX_IMAGE_SIDE };
    const decoded = await Promise.all(images.map((f) => decodeImage(f, limits)));
    say(io, `images: ${decoded.map((d) => `${basename(d.source)} ${d.width}x${d.height}`).join(', ')}; ${runs} run(s), batch ${detector.batchSize}; start-up ${(startupMs / 1000).toFixed(1)} s`);

    const warmStart = performance.now();
    const warmCount = warmup * detector.replicas.length;
    if (warmCount > 0) {
      const outcomes = await detector.predict(Array.from({ length: warmCount }, (_, i) => images[i % images.length]!));
      for (const o of outcomes) if (!o.ok) throw o.error;
    }
    const warmupMs = performance.now() - warmStart;
    if (warmCount > 0) say(io, `warm-up: ${warmCount} image(s) in ${(warmupMs / 1000).toFixed(1)} s`);

    const progress = new ProgressBar(io, runs * images.length, 'bench', !optFlag(values, 'no-progress') && isTty(io.stdout));
    let timed: { measurements: Measurement[]; wallMs: number; pairs?: BaselineReport['pairs'] };
    let baselineReport: BaselineReport | undefined;
    if (baselinePath) {
      const first = detector.replicas[0]!;
      const device = first.provider === 'cuda' ? { kind: 'cuda' as const, id: Number(first.device.split(':')[1] ?? 0), name: first.device } : { kind: 'cpu' as const, id: 0, name: 'cpu' };
      const baseline = await Baseline.open(baselinePath, device, first.threads);
      try {
        await baseline.time(decoded[0]!, detector); // its warm-up
        timed = await timeWithBaseline(detector, baseline, decoded, runs, progress);
        const pairs = timed.pairs!;
        const ours = distribution(pairs.map((p) => p.oursMs));
        const theirs = distribution(pairs.map((p) => p.baselineMs));
        baselineReport = {
          model: baselinePath,
          inputMode: baseline.mode,
          device: device.name,
          pairs,
          oursMs: ours,
          baselineMs: theirs,
          ratio: theirs.p50 / ours.p50,
          sessionRatio: distribution(pairs.map((p) => p.baselineSessionMs)).p50 / distribution(pairs.map((p) => p.oursSessionMs)).p50,
        };
      } finally {
        await baseline.session.release();
      }
    } else {
      timed = await timeImages(detector, images, runs, progress);
    }
    const perDevice: Record<string, Summary> = {};
    for (const d of [...new Set(timed.measurements.map((m) => m.device))]) perDevice[d] = summarize(timed.measurements.filter((m) => m.device === d), timed.wallMs);
    const host = cpus();
    const report: BenchReport = {
      tool: 'rcnn bench',
      date: new Date().toISOString(),
      host: {
        cpus: host.length,
        cpuModel: host[0]?.model ?? 'unknown',
        memoryGb: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        onnxruntime: await onnxruntimeVersion(),
        platform: `${process.platform}-${process.arch}`,
      },
      model: { config: detector.configSource, weights: detector.weights.description, randomWeights: detector.randomWeights, resolved: detector.resolved },
      warnings,
      replicas: detector.replicas.map((r) => ({ device: r.device, provider: r.provider, threads: r.threads.intraOp, sessionCreateMs: r.sessionCreateMs })),
      settings: { runs, warmup, batch: detector.batchSize, images: decoded.map((d) => ({ file: d.source, width: d.width, height: d.height })) },
      startupMs,
      warmupMs,
      wallMs: timed.wallMs,
      measurements: timed.measurements,
      total: summarize(timed.measurements, timed.wallMs),
      perDevice,
      ...(baselineReport ? { baseline: baselineReport } : {}),
    };
    printSummary(io, report);
    if (baselineReport) {
      say(io, `baseline ${baselinePath} (${baselineReport.inputMode} input): p50 ${(baselineReport.baselineMs.p50 / 1000).toFixed(3)} s vs rcnn-node ${(baselineReport.oursMs.p50 / 1000).toFixed(3)} s per image (decoded image to results)`);
      say(io, `ratio baseline / rcnn-node: ${baselineReport.ratio.toFixed(2)} (session run only: ${baselineReport.sessionRatio.toFixed(2)})`);
    }
    if (writeReport) {
      await writeFileAtomic(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
      await writeFileAtomic(htmlPath, renderHtml(report));
      say(io, `report: ${jsonPath}, ${htmlPath}`);
    }
    if (detector.randomWeights) warn(io, 'rcnn bench: RANDOM WEIGHTS were used: timings are real, detections are meaningless');
  } finally {
    await detector.close();
  }
  return EXIT.ok;
}

/** The `bench` command. */
export const bench: Command = {
  name: 'bench',
  summary: 'time the detector stage by stage (no arguments: Mask R-CNN R50-FPN on sample photos)',
  help: HELP,
  options: {
    ...MODEL_OPTIONS,
    ...RUN_OPTIONS,
    runs: { type: 'string' },
    warmup: { type: 'string' },
    baseline: { type: 'string' },
    json: { type: 'string' },
    html: { type: 'string' },
    'no-report': { type: 'boolean' },
    'no-progress': { type: 'boolean' },
    'explain-placement': { type: 'boolean' },
  },
  positionals: true,
  run,
};
