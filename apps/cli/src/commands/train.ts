/** `rcnn train`: fine-tune a detector on a COCO-format dataset, data-parallel over devices. */
import { join } from 'node:path';
import { configToObject, writeFileAtomic } from '@rcnn/core';
import {
  CHECKPOINT_METADATA,
  type IterationRecord,
  METRICS_FILE,
  type TrainResult,
  readMetrics,
  train,
  trainingReportHtml,
} from '@rcnn/runtime/training';
import { type Command, MODEL_OPTIONS, MODEL_OPTIONS_HELP, optFlag, optInt, optString, optStrings } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { type CliIO, isTty, say, warn } from '../io.js';
import { modelSource } from '../model-options.js';
import { type TrainingSetup, detectorTraining } from '../train/detector.js';
import { parseSigmas } from './eval.js';

const HELP = `Usage: rcnn train --config <preset|file> --dataset <train.json> --images <dir> [options]

Fine-tunes a Faster / Mask / Keypoint R-CNN on a COCO-format dataset: SGD with momentum and
Detectron's schedule (SOLVER.* keys, see docs/config.md), one replica per device with the gradients
averaged on the host, checkpoints every SOLVER.CHECKPOINT_PERIOD iterations and at the end.

${MODEL_OPTIONS_HELP}

Initial weights (--weights) may be any format predict reads; layers that do not fit the config
(another MODEL.NUM_CLASSES, a head the checkpoint lacks) are re-initialised and listed. --seed also
seeds the data order, the augmentation and the sampling of every step.

Data:
      --dataset <file.json> COCO annotations of the training set (images, annotations, categories)
      --images <dir>        the training images (file_name in the JSON is relative to it)
      --val <file.json>     COCO annotations of a validation set, evaluated at every checkpoint
      --val-images <dir>    its images (default: --images)
      --oks-sigmas <list>   with --val on a keypoint model: comma-separated OKS sigma per keypoint
                            (default: COCO's 17 person sigmas; needed for any other keypoint count)

Devices:
  -d, --device <device>     cpu, cpu:<n>, cuda:<gpu>, cuda:all; repeatable or comma-separated,
                            one replica per device, each on SOLVER.IMS_PER_BATCH / replicas images
                            (default cpu)
      --strict              fail if CUDA cannot be used instead of training on CPU
      --threads <n>         onnxruntime intra-op threads per replica (default: cores / CPU replicas)

Run:
  -o, --out <dir>           checkpoints, metrics.json and report.html (default out/train)
      --resume              continue from the last checkpoint in --out (same losses as an
                            uninterrupted run)
      --max-iter <n>        shorthand for --set SOLVER.MAX_ITER=<n>

Ctrl-C stops after the running iteration and writes a checkpoint; a second Ctrl-C quits at once.
A non-finite loss stops the run with an error naming the iteration; the last checkpoint is kept.

Examples:
  rcnn train --config maskrcnn_resnet50_fpn --weights maskrcnn_coco.pth \\
      --dataset data/train.json --images data/images --set MODEL.NUM_CLASSES=4 --out out/shapes
  rcnn train --config maskrcnn_resnet50_fpn --dataset data/train.json --images data/images \\
      --device cuda:all --set SOLVER.IMS_PER_BATCH=16 --out out/gpu --resume`;

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** The progress line of an iteration: iteration, bar, ETA, losses, learning rate. */
export function progressLine(r: IterationRecord, maxIter: number, width = 20): string {
  const done = r.iteration + 1;
  const filled = Math.round((done / maxIter) * width);
  const losses = Object.entries(r.losses)
    .map(([k, v]) => `${k.replace(/^loss_/, '')} ${v.toFixed(3)}`)
    .join(' ');
  return `iter ${done}/${maxIter} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] eta ${formatDuration(r.etaSeconds)} loss ${r.totalLoss.toFixed(4)} (${losses}) lr ${r.lr.toPrecision(3)}`;
}

/** Iterations between log lines when the output is not a terminal (Detectron2 logs every 20). */
const LOG_PERIOD = 20;

/** How {@link runTraining} runs. */
export interface RunTrainingOptions {
  readonly out: string;
  readonly devices: string | readonly string[];
  readonly strict?: boolean;
  readonly threads?: number;
  readonly seed?: number;
  readonly resume?: boolean;
  readonly verbose?: boolean;
  /** The name of the dataset, for the report. */
  readonly dataset: string;
}

/**
 * The run of `rcnn train` once the model and data are set up: notes, the progress bar (a line
 * every 20 iterations when not on a terminal), checkpoint lines, Ctrl-C (checkpoint and stop;
 * twice: quit), the HTML report and the closing line. Returns the exit status (130 when interrupted).
 */
export async function runTraining<S>(setup: TrainingSetup<S>, options: RunTrainingOptions, io: CliIO): Promise<number> {
  for (const line of setup.notes) warn(io, `rcnn: ${line}`);
  const solver = setup.config.SOLVER;
  const tty = isTty(io.stdout);
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    warn(io, `${tty ? '\n' : ''}rcnn: stopping after this iteration and writing a checkpoint (Ctrl-C again to quit at once)`);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  let result: TrainResult;
  try {
    result = await train({
      model: setup.model,
      data: setup.data,
      solver,
      out: options.out,
      devices: options.devices,
      strict: options.strict ?? false,
      ...(options.threads === undefined ? {} : { threads: { intraOp: options.threads } }),
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      resume: options.resume ?? false,
      // This run is the model's only use: its serialised graphs can go once the replicas are open.
      releaseGraphs: true,
      metadata: { ...setup.metadata, [CHECKPOINT_METADATA.config]: JSON.stringify(configToObject(setup.config)) },
      signal: controller.signal,
      logLevel: options.verbose ? 'warning' : 'fatal',
      onWarning: (m) => warn(io, `rcnn: ${m}`),
      ...(setup.validate ? { validate: setup.validate } : {}),
      ...(setup.loading ? { aspectRatioGrouping: setup.loading.aspectRatioGrouping, prefetch: setup.loading.prefetch } : {}),
      onIteration: (r) => {
        if (tty) io.stdout.write(`\r${progressLine(r, solver.MAX_ITER).padEnd(110)}`);
        else if ((r.iteration + 1) % LOG_PERIOD === 0 || r.iteration === 0 || r.iteration + 1 === solver.MAX_ITER) say(io, progressLine(r, solver.MAX_ITER));
      },
      onCheckpoint: (files, validation) => {
        if (tty) io.stdout.write('\n');
        const numbers = validation ? ` (${Object.entries(validation).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')})` : '';
        say(io, `checkpoint ${files.model} after ${files.iteration} iterations${numbers}`);
      },
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
  const entries = await readMetrics(join(options.out, METRICS_FILE));
  const report = join(options.out, 'report.html');
  await writeFileAtomic(
    report,
    trainingReportHtml(entries, {
      title: `rcnn train: ${setup.description}`,
      details: [
        ['devices', result.replicas.map((r) => `${r.device}${r.provider !== r.device.split(':')[0] ? ` (${r.provider})` : ''}`).join(', ') || 'none'],
        ['dataset', `${options.dataset} (${setup.data.size} images)`],
        ['checkpoint', result.checkpoint?.model ?? 'none'],
      ],
    }),
  );
  const how = result.stoppedBy === 'interrupted' ? 'interrupted' : 'done';
  say(io, `${how}: ${result.completed}/${solver.MAX_ITER} iterations; checkpoint ${result.checkpoint?.model ?? 'none'}; report ${report}`);
  return result.stoppedBy === 'interrupted' ? 130 : EXIT.ok;
}

async function run(values: Parameters<Command['run']>[0], _positionals: readonly string[], io: CliIO): Promise<number> {
  // The allocator setting `rcnn train` relaunched itself with (relaunch.ts), or the user's.
  if (optFlag(values, 'verbose')) warn(io, `rcnn: MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '(unset)'}`);
  const dataset = optString(values, 'dataset');
  const images = optString(values, 'images');
  if (!dataset) throw new UsageError('--dataset is required', 'give the COCO annotations of the training set: --dataset train.json');
  if (!images) throw new UsageError('--images is required', 'give the directory of the training images: --images dir/');
  const val = optString(values, 'val');
  const valImages = optString(values, 'val-images') ?? images;
  const oksSigmas = parseSigmas(optString(values, 'oks-sigmas'));
  if (oksSigmas && val === undefined) throw new UsageError('--oks-sigmas needs --val (it sets how validation scores keypoints)');
  const maxIter = optInt(values, 'max-iter', 1);
  const threads = optInt(values, 'threads', 1, 1024);
  const devices = optStrings(values, 'device');
  const source = await modelSource(values, io);
  const setup = await detectorTraining({
    source: { ...source, set: [...(source.set ?? []), ...(maxIter === undefined ? [] : [`SOLVER.MAX_ITER=${maxIter}`])] },
    dataset,
    images,
    ...(val === undefined ? {} : { val: { dataset: val, images: valImages, ...(oksSigmas ? { oksSigmas } : {}) } }),
    onWarning: (m) => warn(io, `rcnn: ${m}`),
  });
  return runTraining(
    setup,
    {
      out: optString(values, 'out') ?? join('out', 'train'),
      devices: devices.length > 0 ? devices : 'cpu',
      strict: optFlag(values, 'strict'),
      ...(threads === undefined ? {} : { threads }),
      ...(source.seed === undefined ? {} : { seed: source.seed }),
      resume: optFlag(values, 'resume'),
      verbose: optFlag(values, 'verbose'),
      dataset,
    },
    io,
  );
}

/** The `rcnn train` command. */
export const trainCommand: Command = {
  name: 'train',
  summary: 'fine-tune a detector on a COCO-format dataset (CPU or all GPUs)',
  help: HELP,
  options: {
    ...MODEL_OPTIONS,
    dataset: { type: 'string' },
    images: { type: 'string' },
    val: { type: 'string' },
    'val-images': { type: 'string' },
    'oks-sigmas': { type: 'string' },
    device: { type: 'string', short: 'd', multiple: true },
    strict: { type: 'boolean' },
    threads: { type: 'string' },
    out: { type: 'string', short: 'o' },
    resume: { type: 'boolean' },
    'max-iter': { type: 'string' },
  },
  positionals: false,
  run,
};
