/** `rcnn predict`: detections for images, as COCO JSON, drawings and tensor dumps. */
import { basename, extname, join } from 'node:path';
import { ConfigError, InputError, type NamedInput, OutputError, checkOutputFile, ensureOutputDirectory, fileIdentity, sameFileAs, writeFileAtomic } from '@rcnn/core';
import { CocoResultsBuilder, type Detector, type ImageResult, type PredictOutcome, createDetector, drawResult, writeDump } from '@rcnn/runtime';
import { type Command, MODEL_OPTIONS, MODEL_OPTIONS_HELP, RUN_OPTIONS, RUN_OPTIONS_HELP, optFlag, optNumber, optString, optStrings } from '../command.js';
import { EXIT, UsageError, describeError } from '../errors.js';
import { expandImages } from '../images.js';
import { type CliIO, ProgressBar, say, warn, writeOut } from '../io.js';
import { detectorOptions } from '../model-options.js';
import { blamePlugin, withPluginBlame } from '../plugins.js';

const HELP = `Usage: rcnn predict --config <preset|file> [options] IMAGE...

Runs the detector on images (files or directories) and reports what it finds.

${MODEL_OPTIONS_HELP}

${RUN_OPTIONS_HELP}

Output:
  -o, --out <file.json>     COCO-style results (bbox [x,y,w,h], score, category, RLE masks,
                            keypoints); "-" writes them to stdout
      --draw <dir>          one PNG per image with boxes, labels, masks and keypoints
      --min-score <s>       drawing threshold (default 0.5; 0 with random weights)
      --dump <file>         every output tensor, with the parity fixtures' names, as safetensors
                            (all images then run in one batch)
      --dump-intermediates  also dump every intermediate (backbone.*, rpn.*, roi.*)

A summary line per image goes to stdout (to stderr with --out -). An image that cannot be read,
or whose drawing cannot be written, fails alone; the exit status is then 1. Outputs are checked
before the model is built, never replace an input, and are written atomically (a full disk leaves
no truncated file). Directories skip entries that are not regular files (FIFOs, devices).

Examples:
  rcnn predict --config maskrcnn_resnet50_fpn --weights maskrcnn.safetensors --draw out/ photos/
  rcnn predict --config fixtures/parity/maskrcnn_tiny/case.json \\
      --weights fixtures/parity/maskrcnn_tiny/weights.safetensors \\
      --dump out.safetensors --dump-intermediates fixtures/parity/maskrcnn_tiny/image_0.png`;

function summary(result: ImageResult, detector: Detector): string {
  const t = result.timings;
  const time = `[${result.device}${result.provider !== result.device.split(':')[0] ? `→${result.provider}` : ''} ${(t.totalMs / 1000).toFixed(2)} s]`;
  if (result.proposals) return `${result.source}: ${result.proposals.count} proposals ${time}`;
  const det = result.detections!;
  const order = Array.from(det.scores.keys()).sort((a, b) => det.scores[b]! - det.scores[a]!);
  const top = order
    .slice(0, 5)
    .map((d) => `${detector.labels.categories[det.labels[d]!] ?? det.labels[d]} ${det.scores[d]!.toFixed(2)}`)
    .join(', ');
  return `${result.source}: ${det.scores.length} detection${det.scores.length === 1 ? '' : 's'}${top ? ` (${top}${order.length > 5 ? ', …' : ''})` : ''} ${time}`;
}

/** Unique drawing file names, even for inputs that share a base name. */
function drawingName(source: string, index: number, used: Set<string>): string {
  const base = basename(source, extname(source)).replace(/[^\w.-]+/g, '_') || `image_${index}`;
  let name = `${base}.png`;
  if (used.has(name)) name = `${base}_${index}.png`;
  used.add(name);
  return name;
}

/** The files an output must never replace: images, weights, a config file, plugin files. */
function inputFiles(images: readonly string[], values: Parameters<Command['run']>[0]): NamedInput[] {
  const inputs: NamedInput[] = images.map((path) => ({ path, what: 'image' }));
  const weights = optString(values, 'weights');
  if (weights) inputs.push({ path: weights, what: 'weights file' });
  const config = optString(values, 'config');
  if (config && fileIdentity(config) !== undefined) inputs.push({ path: config, what: 'config file' });
  for (const p of optStrings(values, 'plugin')) if (fileIdentity(p) !== undefined) inputs.push({ path: p, what: 'plugin' });
  return inputs;
}

/** Prints an image's error as the two lines of a fatal error (the other images go on). */
function reportImageError(io: CliIO, error: unknown): void {
  const { message, hint } = describeError(error, 'predict');
  warn(io, `rcnn predict: error: ${message}`);
  if (hint) warn(io, `  hint: ${hint}`);
}

async function run(values: Parameters<Command['run']>[0], positionals: readonly string[], io: CliIO): Promise<number> {
  if (positionals.length === 0) throw new UsageError('no images given', 'rcnn predict --config <preset> IMAGE...');
  const images = await expandImages(positionals, {
    allowSpecialFiles: optFlag(values, 'allow-special-files'),
    onSkip: (path, why) => warn(io, `rcnn predict: skipping ${path}: ${why}`),
  });
  const out = optString(values, 'out');
  const drawDir = optString(values, 'draw');
  const dump = optString(values, 'dump');
  const dumpIntermediates = optFlag(values, 'dump-intermediates');
  if (dumpIntermediates && !dump) throw new UsageError('--dump-intermediates needs --dump <file>');
  const minScore = optNumber(values, 'min-score', 0, 1);
  // Every output is checked before the model is built: a bad path fails in milliseconds, and no
  // output may replace an input (same device and inode, however the paths are spelled).
  const inputs = inputFiles(images, values);
  if (out && out !== '-') checkOutputFile(out, { what: 'results file (-o)', inputs });
  if (dump) checkOutputFile(dump, { what: '--dump file', inputs });
  const drawings = new Map<number, string>();
  if (drawDir) {
    ensureOutputDirectory(drawDir, '--draw directory');
    const used = new Set<string>();
    images.forEach((source, index) => drawings.set(index, join(drawDir, drawingName(source, index, used))));
    for (const [index, path] of drawings) {
      const victim = sameFileAs(path, inputs);
      if (victim) {
        throw new OutputError(`the drawing of ${images[index]} would be written to ${path}, which is the ${victim.what} ${victim.path}`, {
          file: path,
          hint: 'draw into another directory (--draw)',
        });
      }
    }
  }
  const options = await detectorOptions(values, io);
  const report: CliIO = out === '-' ? { stdout: io.stderr, stderr: io.stderr } : io;
  let batchSize = options.batchSize;
  if (dump) {
    // Whole-batch tensors (transform.images, backbone.*) exist once per forward pass.
    if (batchSize !== undefined && batchSize < images.length) {
      throw new UsageError(`--dump runs all ${images.length} images in one batch, but --batch is ${batchSize}`, 'drop --batch, or dump fewer images');
    }
    batchSize = images.length;
  }
  const detector = await withPluginBlame(options.container, 'build()', () => createDetector({ ...options, batchSize, intermediates: dumpIntermediates }));
  let failed = 0;
  const failedSources: string[] = [];
  try {
    const coco = new CocoResultsBuilder({
      labels: detector.labels,
      config: detector.config,
      configSource: detector.configSource,
      weightsDescription: detector.weights.description,
      randomWeights: detector.randomWeights,
    });
    const kept: ImageResult[] = [];
    const progress = new ProgressBar(report, images.length, 'predict', images.length > 1 && report === io && process.stdout.isTTY === true);
    for await (const outcome of detector.stream(images, { keepImages: drawDir !== undefined, keepOutputs: dump !== undefined }) as AsyncIterable<PredictOutcome>) {
      progress.clear();
      coco.add(outcome);
      if (!outcome.ok) {
        failed++;
        failedSources.push(outcome.source);
        reportImageError(io, blamePlugin(options.container, 'predict', outcome.error));
        progress.tick();
        continue;
      }
      const r = outcome.result;
      say(report, summary(r, detector));
      const drawing = drawings.get(r.index);
      if (drawing) {
        // A drawing that cannot be written (its name is a directory, the disk is full) fails alone.
        try {
          const png = await drawResult(r, { labels: detector.labels, config: detector.config, ...(minScore === undefined ? {} : { minScore }) });
          await writeFileAtomic(drawing, png);
        } catch (e) {
          failed++;
          reportImageError(io, e);
        }
      }
      if (dump) kept.push(r);
      progress.tick();
    }
    if (detector.randomWeights) warn(io, 'rcnn predict: RANDOM WEIGHTS were used: these detections are meaningless (pass --weights)');
    if (out) {
      const json = `${JSON.stringify(coco.toJSON(), null, out === '-' ? 2 : undefined)}\n`;
      if (out === '-') writeOut(io, json);
      else await writeFileAtomic(out, json);
    }
    if (dump) {
      if (kept.length === 0) throw new ConfigError('nothing to dump: every image failed');
      if (failedSources.length > 0 && new Set(kept.map((r) => r.batch)).size > 1) {
        // The failure split the batch (its images were retried one by one): say which image did it.
        throw new InputError(`--dump: ${failedSources.join(', ')} failed (its error is above), so the other images no longer ran in one batch; nothing was dumped`, {
          source: failedSources[0],
          hint: `leave ${failedSources[0]} out of the dump`,
        });
      }
      const n = await writeDump(dump, kept, detector.config, { 'rcnn.weights': detector.weights.description, 'rcnn.random_weights': String(detector.randomWeights) });
      say(report, `dump: ${n} tensors written to ${dump}`);
    }
  } finally {
    await detector.close();
  }
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

/** The `predict` command. */
export const predict: Command = {
  name: 'predict',
  summary: 'detect objects in images (COCO JSON, drawings, tensor dumps)',
  help: HELP,
  options: {
    ...MODEL_OPTIONS,
    ...RUN_OPTIONS,
    out: { type: 'string', short: 'o' },
    draw: { type: 'string' },
    'min-score': { type: 'string' },
    dump: { type: 'string' },
    'dump-intermediates': { type: 'boolean' },
  },
  positionals: true,
  run,
};
