/** `rcnn train-step`: one training forward (losses, and gradients where built) on a training case, written as a tensor dump. */
import { writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors } from '@rcnn/core';
import { loadTrainingCase, resolveModelSources, trainStep } from '@rcnn/runtime';
import { type Command, MODEL_OPTIONS, MODEL_OPTIONS_HELP, optFlag, optInt, optString } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { type CliIO, say, warn } from '../io.js';
import { modelSource } from '../model-options.js';

const HELP = `Usage: rcnn train-step --config <case.json|yaml|preset> --weights <file> --targets <case dir> --dump <out.safetensors> [--dump-intermediates]

Runs ONE training forward of the model on the images and targets of a training case directory
(image_<i>.png, reference.safetensors with target.boxes.<i>, target.labels.<i>, target.masks.<i>,
target.keypoints.<i>; the format of shared/tools/parity, "Training fixtures") and writes the
losses (loss.<name>, loss.total) to a safetensors dump. When the directory holds torchvision's
recorded sampling (train.rpn.sampled_pos/neg.<i>, train.roi.sampled_pos/neg.<i>) and detached
proposals (train.rpn.proposals.<i>), they are injected instead of drawn (TRAIN.SEED seeds the
draw otherwise).

${MODEL_OPTIONS_HELP}

Training:
      --targets <dir>        training case directory (required); --config and --weights default
                             to its case.json and weights.safetensors
      --dump <file>          safetensors file to write (required)
      --dump-intermediates   also write transform.image_sizes, train.target.*, train.rpn.*,
                             train.roi.*, train.mask.*, train.keypoint.* (fixture names)
      --no-inject            draw the samples and compute the proposals even when recorded
      --threads <n>          onnxruntime intra-op threads (default 1)`;

async function run(values: Parameters<Command['run']>[0], _positionals: readonly string[], io: CliIO): Promise<number> {
  const dir = optString(values, 'targets');
  if (!dir) throw new UsageError('--targets <case dir> is required');
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`--targets ${dir} is not a directory`, 'give a training case directory (image_<i>.png + reference.safetensors)');
  const dump = optString(values, 'dump');
  if (!dump) throw new UsageError('--dump <out.safetensors> is required');
  const trainingCase = await loadTrainingCase(dir);
  const source = await modelSource({ config: trainingCase.caseJson, weights: trainingCase.weights, ...values }, io);
  const { container, resolved, weights } = await resolveModelSources(source);
  const inject = !optFlag(values, 'no-inject');
  const threads = optInt(values, 'threads', 1, 1024) ?? 1;
  const result = await trainStep(
    resolved.config,
    container,
    weights,
    { images: trainingCase.images, targets: trainingCase.targets, ...(inject ? { injected: trainingCase.injected } : {}) },
    { intermediates: optFlag(values, 'dump-intermediates'), threads },
  );
  await writeFile(dump, writeSafetensors(result.tensors, { 'rcnn.command': 'train-step', 'rcnn.targets': join(dir) }));
  for (const [name, value] of result.losses) say(io, `${name.padEnd(20)} ${value.toPrecision(8)}`);
  if (weights.isRandom) warn(io, 'rcnn train-step: RANDOM WEIGHTS (pass --weights)');
  say(io, `wrote ${dump} (${result.tensors.size} tensors)`);
  return EXIT.ok;
}

/** The `train-step` command. */
export const trainStepCommand: Command = {
  name: 'train-step',
  summary: 'one training forward on a training case: losses (and intermediates) as a safetensors dump',
  help: HELP,
  options: { ...MODEL_OPTIONS, targets: { type: 'string' }, dump: { type: 'string' }, 'dump-intermediates': { type: 'boolean' }, 'no-inject': { type: 'boolean' }, threads: { type: 'string' } },
  positionals: false,
  run,
};
