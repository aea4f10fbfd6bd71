/** `rcnn convert`: a PyTorch / Detectron2 / Detectron checkpoint to safetensors in torchvision names. */
import { type CheckpointResult, convertCheckpointFile, formatReport } from '@rcnn/checkpoint';
import { type Command, optFlag, optString } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { type CliIO, say, warn } from '../io.js';

const FORMATS = ['auto', 'torchvision', 'detectron2', 'detectron'] as const;
type SourceFormat = (typeof FORMATS)[number];

const HELP = `Usage: rcnn convert <in.pth|in.pkl|in.safetensors> <out.safetensors> [--from <format>]

Reads a checkpoint without executing anything from it (restricted unpickler, docs/weights.md) and
writes its tensors as safetensors in torchvision state-dict names, ready for --weights.

  --from <format>   naming of the input: ${FORMATS.join(', ')} (default auto: detected from
                    the names); torchvision also applies torchvision's legacy key renames
  --verbose, -v     list every renamed, unmapped and ignored key
  -h, --help        this help

The report lists keys no map knows (kept under their own names, so a model build reports them as
unused) and entries deliberately skipped (optimizer state, num_batches_tracked, …). The config that
matches the checkpoint's conventions (e.g. Detectron's BGR input and +1 box widths) and the
architecture inferred from its tensors are printed and stored in the file's metadata; rcnn predict
--weights <out.safetensors> applies them under --config / --set.`;

function isFormat(v: string): v is SourceFormat {
  return (FORMATS as readonly string[]).includes(v);
}

function configLines(layer: CheckpointResult['suggestedConfig']): string[] {
  const lines: string[] = [];
  for (const [section, keys] of Object.entries(layer)) {
    for (const [key, value] of Object.entries(keys as Record<string, unknown>)) lines.push(`--set ${section}.${key}=${JSON.stringify(value)}`);
  }
  return lines;
}

async function run(values: Parameters<Command['run']>[0], positionals: readonly string[], io: CliIO): Promise<number> {
  if (positionals.length !== 2) throw new UsageError(`convert takes an input and an output file, got ${positionals.length} argument(s)`, 'rcnn convert model.pth model.safetensors');
  const [input, output] = positionals as readonly [string, string]; // length checked just above
  if (!output.endsWith('.safetensors')) throw new UsageError(`the output ${output} must end in .safetensors`);
  const from = optString(values, 'from') ?? 'auto';
  if (!isFormat(from)) throw new UsageError(`unknown --from "${from}"`, `one of ${FORMATS.join(', ')}`);
  const result = convertCheckpointFile(input, output, { from });
  say(io, formatReport(result.report, optFlag(values, 'verbose')));
  const suggested = configLines(result.suggestedConfig);
  if (suggested.length > 0) say(io, `config matching this checkpoint's conventions:\n  ${suggested.join('\n  ')}`);
  const inferred = configLines(result.inferredConfig);
  if (inferred.length > 0) say(io, `architecture inferred from its tensors:\n  ${inferred.join('\n  ')}`);
  say(io, `both are stored in ${output}'s metadata: rcnn predict --weights ${output} applies them (--config and --set override them)`);
  if (result.report.unmapped.length > 0) warn(io, `rcnn convert: ${result.report.unmapped.length} key(s) have no torchvision name and were kept as they are (a build will report them as unused)`);
  say(io, `wrote ${output} (${result.tensors.size} tensors)`);
  return EXIT.ok;
}

/** The `convert` command. */
export const convert: Command = {
  name: 'convert',
  summary: 'convert a .pth / Detectron2 / Detectron checkpoint to safetensors (torchvision names)',
  help: HELP,
  options: { from: { type: 'string' }, verbose: { type: 'boolean', short: 'v' }, help: { type: 'boolean', short: 'h' } },
  positionals: true,
  run,
};
