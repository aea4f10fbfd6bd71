/** `rcnn train-step`: one training forward (losses, and gradients where built) on a training case or a COCO dataset, written as a tensor dump. */
import { writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { type ImageTargets, type RgbImage, writeSafetensors } from '@rcnn/core';
import { type ExportOptions, type InjectedTraining, loadTrainingCase, resolveModelSources, trainStep } from '@rcnn/runtime';
import { type Command, MODEL_OPTIONS, MODEL_OPTIONS_HELP, optFlag, optInt, optString } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { type CliIO, say, warn } from '../io.js';
import { modelSource } from '../model-options.js';
import { COCO_LOADER, loadCocoTrainingSample, loadCocoTrainingSet } from '../train/detector.js';

const HELP = `Usage: rcnn train-step --config <case.json|yaml|preset> --weights <file> --targets <case dir> --dump <out.safetensors> [--dump-intermediates]
       rcnn train-step --config <…> --weights <file> --targets <train.json> --images <dir> --dump <out.safetensors>

Runs ONE training forward (and backward: the dump holds the gradients) of the model on a batch of
images with their targets and writes the losses (loss.<name>, loss.total) and the gradients
(grad.<torchvision name>) to a safetensors dump. The batch is either

  a training case directory (image_<i>.png, reference.safetensors with target.boxes.<i>,
  target.labels.<i>, target.masks.<i>, target.keypoints.<i>; the format of shared/tools/parity,
  "Training fixtures"). When it holds torchvision's recorded sampling (train.rpn.sampled_pos/neg.<i>,
  train.roi.sampled_pos/neg.<i>) and detached proposals (train.rpn.proposals.<i>), they are
  injected instead of drawn; or

  a COCO dataset (a .json file, with --images): every image the JSON lists, in its order, is one
  image of the batch, read exactly as rcnn train reads a dataset (category ids to labels 1..K in
  sorted id order, polygons / RLE decoded to masks, keypoints, crowd regions and unusable items
  skipped; MODEL.NUM_CLASSES must be the category count + 1). Sampling is drawn.

Either way the training transform runs (TRAIN.SCALES choice, TRAIN.MAX_SIZE, TRAIN.USE_FLIPPED) and
the draws come from TRAIN.SEED.

${MODEL_OPTIONS_HELP}

Training:
      --targets <dir|file>   training case directory, or COCO annotations (.json) (required); for a
                             case directory --config and --weights default to its case.json and
                             weights.safetensors
      --images <dir>         the images of a COCO --targets (file_name in the JSON is relative to it)
      --dump <file>          safetensors file to write (required)
      --dump-intermediates   also write transform.image_sizes, train.target.*, train.rpn.*,
                             train.roi.*, train.mask.*, train.keypoint.* (fixture names)
      --no-inject            case directory: draw the samples and compute the proposals even when
                             recorded
      --threads <n>          onnxruntime intra-op threads (default 1)`;

/** A batch of a training step and where its model comes from. */
interface StepBatch {
  readonly images: RgbImage[];
  readonly targets: ImageTargets[];
  readonly injected: InjectedTraining;
  readonly source: ExportOptions;
}

/** The batch of a training case directory (its case.json and weights unless given). */
async function caseBatch(dir: string, values: Parameters<Command['run']>[0], io: CliIO): Promise<StepBatch> {
  if (optString(values, 'images') !== undefined) throw new UsageError('--images goes with a COCO --targets <file.json>; a case directory holds its images');
  const trainingCase = await loadTrainingCase(dir);
  const source = await modelSource({ config: trainingCase.caseJson, weights: trainingCase.weights, ...values }, io);
  return { images: trainingCase.images, targets: trainingCase.targets, injected: optFlag(values, 'no-inject') ? {} : trainingCase.injected, source };
}

async function run(values: Parameters<Command['run']>[0], _positionals: readonly string[], io: CliIO): Promise<number> {
  const targets = optString(values, 'targets');
  if (!targets) throw new UsageError('--targets <case dir | train.json> is required');
  const stat = statSync(targets, { throwIfNoEntry: false });
  if (!stat) throw new UsageError(`--targets ${targets} does not exist`, 'give a training case directory (image_<i>.png + reference.safetensors) or COCO annotations (.json) with --images');
  if (!stat.isDirectory() && !stat.isFile()) throw new UsageError(`--targets ${targets} is neither a directory nor a file`);
  const dump = optString(values, 'dump');
  if (!dump) throw new UsageError('--dump <out.safetensors> is required');
  const threads = optInt(values, 'threads', 1, 1024) ?? 1;

  let batch: StepBatch;
  let resolved: Awaited<ReturnType<typeof resolveModelSources>>;
  if (stat.isDirectory()) {
    batch = await caseBatch(targets, values, io);
    resolved = await resolveModelSources(batch.source);
  } else {
    // A COCO dataset: the model as rcnn train resolves it (with @rcnn/coco's DATALOADER section).
    const images = optString(values, 'images');
    if (!images) throw new UsageError(`--targets ${targets} is a file (COCO annotations), so --images <dir> is required`, 'give the directory its file_name entries are relative to: --images dir/');
    if (optFlag(values, 'no-inject')) throw new UsageError('--no-inject goes with a case directory: a COCO dataset records no sampling, it is always drawn');
    const source = await modelSource(values, io);
    resolved = await resolveModelSources({ ...source, register: [...(source.register ?? []), COCO_LOADER.register] });
    const dataset = await loadCocoTrainingSet(resolved.resolved.config, targets, images);
    warn(io, `rcnn: dataset ${targets}: ${dataset.summary()}`);
    const samples = [];
    for (let i = 0; i < dataset.length; i++) samples.push(await loadCocoTrainingSample(dataset, i));
    batch = { images: samples.map((s) => s.image), targets: samples.map((s) => s.targets), injected: {}, source };
  }
  const { container, weights } = resolved;
  const result = await trainStep(
    resolved.resolved.config,
    container,
    weights,
    { images: batch.images, targets: batch.targets, injected: batch.injected },
    { intermediates: optFlag(values, 'dump-intermediates'), threads },
  );
  await writeFile(dump, writeSafetensors(result.tensors, { 'rcnn.command': 'train-step', 'rcnn.targets': join(targets) }));
  for (const [name, value] of result.losses) say(io, `${name.padEnd(20)} ${value.toPrecision(8)}`);
  if (weights.isRandom) warn(io, 'rcnn train-step: RANDOM WEIGHTS (pass --weights)');
  say(io, `wrote ${dump} (${result.tensors.size} tensors)`);
  return EXIT.ok;
}

/** The `train-step` command. */
export const trainStepCommand: Command = {
  name: 'train-step',
  summary: 'one training forward + backward on a training case or a COCO dataset: losses and gradients as a safetensors dump',
  help: HELP,
  options: {
    ...MODEL_OPTIONS,
    targets: { type: 'string' },
    images: { type: 'string' },
    dump: { type: 'string' },
    'dump-intermediates': { type: 'boolean' },
    'no-inject': { type: 'boolean' },
    threads: { type: 'string' },
  },
  positionals: false,
  run,
};
