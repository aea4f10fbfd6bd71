/**
 * The shape of an `rcnn` command and the option parsing they share. A command is a name, a help
 * text, its `node:util` parseArgs options and a `run`; adding one (e.g. `rcnn convert`) is one
 * module and one entry in `commands/index.ts`.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { DEVICE_FORMS, PRESET_NAMES } from '@rcnn/runtime';
import { UsageError } from './errors.js';
import type { CliIO } from './io.js';

/** parseArgs option specs. */
export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

/** Parsed options of a command. */
export type OptionValues = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

/** One `rcnn` command. */
export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The whole `--help` text. */
  readonly help: string;
  readonly options: OptionSpecs;
  /** Whether the command takes positional arguments (images). */
  readonly positionals: boolean;
  run(values: OptionValues, positionals: readonly string[], io: CliIO): Promise<number>;
}

/** Options every model-loading command accepts. */
export const MODEL_OPTIONS: OptionSpecs = {
  config: { type: 'string', short: 'c' },
  weights: { type: 'string', short: 'w' },
  set: { type: 'string', multiple: true },
  plugin: { type: 'string', multiple: true },
  seed: { type: 'string' },
  'non-finite': { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
};

/** Options of commands that run the model on devices. */
export const RUN_OPTIONS: OptionSpecs = {
  device: { type: 'string', short: 'd', multiple: true },
  strict: { type: 'boolean' },
  batch: { type: 'string', short: 'b' },
  threads: { type: 'string' },
  'in-flight': { type: 'string' },
  'allow-special-files': { type: 'boolean' },
};

/** Help lines of {@link MODEL_OPTIONS}. */
export const MODEL_OPTIONS_HELP = `Model:
  -c, --config <name|file>  preset (${PRESET_NAMES.join(', ')}),
                            or a YAML/JSON config file, a Detectron2 config.yaml, or a parity case.json
  -w, --weights <file>      weights: .safetensors (torchvision names); .pth/.pkl with @rcnn/checkpoint.
                            A Detectron2/Detectron checkpoint (or a file rcnn convert wrote) brings
                            its conventions and architecture (then --config is optional; --config
                            and --set override them). Without weights the model gets seeded random
                            weights and every result says so: its detections are meaningless
      --set KEY=VALUE       config override, repeatable (e.g. --set TEST.SCORE_THRESH=0.5)
      --plugin <module>     package or ES module exporting register(container), repeatable
                            (also RCNN_PLUGINS=a,b)
      --seed <n>            seed of the random weights (default 0)
      --non-finite <policy> NaN/Inf in the weights: error (default: refuse, naming the tensor),
                            warn (say so once per tensor and go on) or ignore
  -v, --verbose             onnxruntime logs and stack traces
  -h, --help                this help`;

/** Help lines of {@link RUN_OPTIONS}. */
export const RUN_OPTIONS_HELP = `Devices:
  -d, --device <device>     ${DEVICE_FORMS}; repeatable or comma-separated,
                            one model replica per device (default cpu)
      --strict              fail if CUDA cannot be used instead of falling back to CPU
  -b, --batch <n>           images per forward pass (default 1, at most LIMITS.MAX_BATCH)
      --threads <n>         onnxruntime intra-op threads per replica (default: cores / CPU replicas)
      --in-flight <n>       batches running at once per replica (default 1 on CPU, 2 on GPU)
      --allow-special-files read images from pipes and devices too (e.g. <(curl -s URL)), within
                            LIMITS.MAX_IMAGE_BYTES and LIMITS.READ_TIMEOUT_MS; default: refused, and
                            skipped inside directories (a FIFO without a writer never delivers)`;

/** Parses `argv` against a command's options (unknown options are usage errors). */
export function parseCommand(command: Command, argv: readonly string[]): { values: OptionValues; positionals: string[] } {
  const { values, positionals } = parseArgs({ args: [...argv], options: command.options, allowPositionals: command.positionals, strict: true });
  return { values: values as OptionValues, positionals };
}

/** A string option, if given. */
export function optString(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A repeatable string option (each value may also be comma-separated when `split`). */
export function optStrings(values: OptionValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

/** A boolean flag. */
export function optFlag(values: OptionValues, name: string): boolean {
  return values[name] === true;
}

/** An integer option within bounds, or undefined when absent. */
export function optInt(values: OptionValues, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = optString(values, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer${max === Number.MAX_SAFE_INTEGER ? ` >= ${min}` : ` in [${min}, ${max}]`}, got "${raw}"`);
  }
  return n;
}

/** A number option within bounds, or undefined when absent. */
export function optNumber(values: OptionValues, name: string, min: number, max: number): number | undefined {
  const raw = optString(values, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number in [${min}, ${max}], got "${raw}"`);
  return n;
}
