/** `rcnn export`: the assembled model as one self-contained ONNX file. */
import { type NamedInput, checkOutputFile, fileIdentity, printable, writeFileAtomic } from '@rcnn/core';
import { exportModel } from '@rcnn/runtime';
import { type Command, MODEL_OPTIONS, MODEL_OPTIONS_HELP, optFlag, optString, optStrings } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { type CliIO, say, warn } from '../io.js';
import { modelSource } from '../model-options.js';
import { withPluginBlame } from '../plugins.js';

const HELP = `Usage: rcnn export --config <preset|file> [--weights <file>] --out <model.onnx>

Writes the whole model (conv body, RPN, RoI heads, detection post-processing) as one ONNX file
(opset 17, weights inline, the config in its metadata), e.g. for NVIDIA Triton's onnxruntime
backend (docs/serving.md).

Inputs:  images [N,3,H,W] float32 (normalised, resized, zero-padded to a multiple of
         INPUT.SIZE_DIVISIBILITY), image_sizes [N,2] int64 (h, w after resizing),
         original_sizes [N,2] int64.
Outputs: det.boxes [D,4] (original pixels), det.boxes_resized, det.scores [D], det.labels [D]
         int64, det.batch_index [D] int64, and det.mask_probs [D,1,M,M] / det.keypoint_heatmaps
         [D,K,S,S] for Mask / Keypoint R-CNN (rpn.* for RPN-only models).
The image transform before, mask pasting and keypoint decoding after, are the client's job.

${MODEL_OPTIONS_HELP}

Output:
  -o, --out <file>          the .onnx file to write (required)
      --intermediates       also output every intermediate (backbone.*, rpn.*, roi.*)`;

async function run(values: Parameters<Command['run']>[0], _positionals: readonly string[], io: CliIO): Promise<number> {
  const out = optString(values, 'out');
  if (!out) throw new UsageError('--out <model.onnx> is required');
  // Before the build: the output must be writable and must not be the weights or the config.
  const inputs: NamedInput[] = [];
  const weights = optString(values, 'weights');
  const config = optString(values, 'config');
  if (weights) inputs.push({ path: weights, what: 'weights file' });
  if (config && fileIdentity(config) !== undefined) inputs.push({ path: config, what: 'config file' });
  for (const p of optStrings(values, 'plugin')) if (fileIdentity(p) !== undefined) inputs.push({ path: p, what: 'plugin' });
  checkOutputFile(out, { what: 'output (--out)', inputs });
  const source = await modelSource(values, io);
  const model = await withPluginBlame(source.container, 'build()', () => exportModel({ ...source, intermediates: optFlag(values, 'intermediates') }));
  await writeFileAtomic(out, model.bytes);
  const dims = (d: readonly (number | string)[]): string => `[${d.join(', ')}]`;
  say(io, `wrote ${out} (${(model.bytes.byteLength / 1e6).toFixed(1)} MB, ${model.kind} model)`);
  say(io, 'inputs:');
  for (const i of model.inputs) say(io, `  ${i.name.padEnd(24)} ${i.dtype.padEnd(8)} ${dims(i.dims)}`);
  say(io, 'outputs:');
  for (const o of model.outputs) say(io, `  ${o.name.padEnd(24)} ${o.dtype.padEnd(8)} ${dims(o.dims)}`);
  if (model.hostPostprocessors.length > 0) say(io, `host post-processing the client must do: ${model.hostPostprocessors.join(', ')}`);
  if (model.weights.random) warn(io, `rcnn export: RANDOM WEIGHTS (${model.weights.description}): the exported model's detections are meaningless (pass --weights)`);
  if (model.weights.unusedKeys.length > 0) warn(io, `rcnn export: warning: ${model.weights.unusedKeys.length} tensor(s) of the weights are not used: ${model.weights.unusedKeys.slice(0, 8).map((k) => printable(k)).join(', ')}`);
  return EXIT.ok;
}

/** The `export` command. */
export const exportCommand: Command = {
  name: 'export',
  summary: 'write the assembled model as one self-contained ONNX file',
  help: HELP,
  options: { ...MODEL_OPTIONS, out: { type: 'string', short: 'o' }, intermediates: { type: 'boolean' } },
  positionals: false,
  run,
};
