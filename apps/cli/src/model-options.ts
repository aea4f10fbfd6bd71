/** Turning the shared command-line options into runtime options. */
import { register as registerCoco } from '@rcnn/coco';
import { type NonFinitePolicy, createContainer } from '@rcnn/core';
import { type DetectorOptions, type ExportOptions, NON_FINITE_POLICIES, OPTION_BOUNDS } from '@rcnn/runtime';
import { type OptionValues, optFlag, optInt, optString, optStrings } from './command.js';
import { UsageError } from './errors.js';
import { type CliIO, warn } from './io.js';
import { loadPlugins } from './plugins.js';

/** Options shared by export and the run commands: config, weights, plugins. */
export async function modelSource(values: OptionValues, io: CliIO, defaults: { config?: string } = {}): Promise<ExportOptions> {
  const config = optString(values, 'config') ?? defaults.config;
  // Weights that know their conventions and architecture (Detectron2 / Detectron checkpoints, files
  // `rcnn convert` wrote) are a model on their own; anything else needs a config.
  if (config === undefined && optString(values, 'weights') === undefined) {
    throw new UsageError('--config is required', 'pass a preset (e.g. --config maskrcnn_resnet50_fpn), a YAML/JSON config or a case.json, or --weights of a Detectron2 checkpoint');
  }
  const container = createContainer();
  const plugins = await loadPlugins(container, optStrings(values, 'plugin'));
  if (optFlag(values, 'verbose')) {
    warn(io, `plugins: ${plugins.registered.join(', ') || 'none'}${plugins.unavailable.length ? `; not installed: ${plugins.unavailable.join(', ')}` : ''}`);
  }
  const weights = optString(values, 'weights');
  const seed = optInt(values, 'seed', OPTION_BOUNDS.seed.min, OPTION_BOUNDS.seed.max);
  const nonFinite = optString(values, 'non-finite');
  if (nonFinite !== undefined && !(NON_FINITE_POLICIES as readonly string[]).includes(nonFinite)) {
    throw new UsageError(`--non-finite must be one of ${NON_FINITE_POLICIES.join(', ')}, got "${nonFinite}"`);
  }
  return {
    ...(config === undefined ? {} : { config }),
    set: optStrings(values, 'set'),
    container,
    // The config file rcnn train was given (its DATALOADER.* keys included) serves every command.
    register: [registerCoco],
    ...(weights ? { weights } : {}),
    ...(seed === undefined ? {} : { seed }),
    ...(nonFinite === undefined ? {} : { nonFinite: nonFinite as NonFinitePolicy }),
    onWarning: (m) => warn(io, `rcnn: ${m}`),
  };
}

/** Detector options from the command line (`--device`, `--strict`, `--batch`, `--threads`, `--in-flight`). */
export async function detectorOptions(values: OptionValues, io: CliIO, defaults: { config?: string; devices?: string } = {}): Promise<DetectorOptions> {
  const source = await modelSource(values, io, defaults);
  const devices = optStrings(values, 'device');
  // The library's bounds (OPTION_BOUNDS): a flag and the option it sets accept the same values.
  const batchSize = optInt(values, 'batch', OPTION_BOUNDS.batchSize.min);
  const threads = optInt(values, 'threads', OPTION_BOUNDS.threads.min, OPTION_BOUNDS.threads.max);
  const maxInFlight = optInt(values, 'in-flight', OPTION_BOUNDS.maxInFlight.min, OPTION_BOUNDS.maxInFlight.max);
  return {
    ...source,
    devices: devices.length > 0 ? devices : (defaults.devices ?? 'cpu'),
    strict: optFlag(values, 'strict'),
    allowSpecialFiles: optFlag(values, 'allow-special-files'),
    ...(batchSize === undefined ? {} : { batchSize }),
    ...(threads === undefined ? {} : { threads: { intraOp: threads } }),
    ...(maxInFlight === undefined ? {} : { maxInFlight }),
    logLevel: optFlag(values, 'verbose') ? 'warning' : 'fatal',
    onWarning: (m) => warn(io, `rcnn: ${m}`),
  };
}
