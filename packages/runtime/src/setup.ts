/** What a detector and an export share: the container with the packages registered, the config and the weights. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import {
  type ConfigOverrides,
  ConfigError,
  type DependencyContainer,
  type NonFinitePolicy,
  type RcnnConfig,
  type WeightConventions,
  WeightStore,
  configSections,
  caseMappers,
  createContainer,
  isCaseDocument,
} from '@rcnn/core';
import type { ModelLabels } from './categories.js';
import { type ResolvedConfig, findPreset, resolveConfig } from './presets.js';
import { checkpointCategories, readSafetensorsMetadata } from './training/checkpoint.js';
import { calibratedRandomWeights, loadWeights } from './weights.js';

/**
 * The class names and COCO category ids a `rcnn train` checkpoint records (`rcnn.categories`), when
 * `weights` is such a safetensors file and its map fits MODEL.NUM_CLASSES: results and drawings then
 * name the dataset's categories.
 */
async function checkpointLabels(weights: ModelSourceOptions['weights'], config: RcnnConfig, base: ModelLabels): Promise<ModelLabels | undefined> {
  if (typeof weights !== 'string' || !weights.toLowerCase().endsWith('.safetensors')) return undefined;
  const map = checkpointCategories(await readSafetensorsMetadata(weights));
  if (!map || map.names.length + 1 !== config.MODEL.NUM_CLASSES) return undefined;
  return { ...base, categories: ['__background__', ...map.names], categoryIds: [0, ...map.categoryIds] };
}

/** The values of {@link ModelSourceOptions.nonFinite} (core's `NonFinitePolicy`). */
export const NON_FINITE_POLICIES: readonly NonFinitePolicy[] = ['error', 'warn', 'ignore'];

/** Where a model comes from (the options {@link createDetector} and {@link exportModel} share). */
export interface ModelSourceOptions {
  /** Preset name, YAML/JSON config file or parity `case.json`, or a config layer (default: the core defaults). */
  readonly config?: string | ConfigOverrides;
  /** `SECTION.KEY=VALUE` overrides applied after `config`. */
  readonly set?: readonly string[];
  /** A weights file (reader chosen by extension), a {@link WeightStore}, or nothing for seeded random weights. */
  readonly weights?: string | WeightStore;
  /**
   * NaN / Inf in a weights file: refuse with a WeightsError naming the tensor (`error`, default),
   * warn once per tensor and go on (`warn`), or say nothing (`ignore`). Not used for a WeightStore
   * passed in (it has its own policy).
   */
  readonly nonFinite?: NonFinitePolicy;
  /** Receives warnings (default: `console.warn`). */
  readonly onWarning?: (message: string) => void;
  /** Seed of the random weights (default 0). */
  readonly seed?: number;
  /** Calibrate random weights so every stage runs (default true; see {@link calibratedRandomWeights}). */
  readonly calibrateRandomWeights?: boolean;
  /** Container with the model packages registered; default: a fresh one passed to `register`. */
  readonly container?: DependencyContainer;
  /** Registration functions (each package's `register`) applied to the container. */
  readonly register?: readonly ((container: DependencyContainer) => void)[];
  /** Class / keypoint names (default: the preset's, else derived from MODEL.NUM_CLASSES). */
  readonly labels?: ModelLabels;
  /**
   * Apply the convention and architecture a weights file brings (a Detectron2 / Detectron checkpoint,
   * a file `rcnn convert` wrote) under `config` and `set`, which win (default true).
   */
  readonly weightConventions?: boolean;
}

/** A config source that states its own conventions (a preset, a parity case), and their family if known. */
export interface ConventionSource {
  /** What it is, for messages (`preset mask_rcnn_R_50_FPN_3x`, `parity case …/case.json`). */
  readonly what: string;
  /** The preset's family (`torchvision`, `detectron`, `detectron2`); undefined for a parity case. */
  readonly family?: string;
}

/**
 * Whether `config` states its own conventions: a preset (its family's) or a parity `case.json`
 * (the reference model's, complete). Then the weights' conventions are not applied under it, only
 * their architecture. A Detectron2 config, an rcnn-node YAML/JSON file or a layer object does not:
 * the weights' conventions go under it.
 */
export function conventionSource(config: string | ConfigOverrides | undefined): ConventionSource | undefined {
  if (typeof config !== 'string') return undefined;
  if (existsSync(config) && statSync(config).isFile()) {
    if (extname(config).toLowerCase() !== '.json') return undefined;
    try {
      return isCaseDocument(JSON.parse(readFileSync(config, 'utf8'))) ? { what: `parity case ${config}` } : undefined;
    } catch {
      return undefined; // loading the config reports the bad JSON
    }
  }
  const preset = findPreset(config);
  return preset ? { what: `preset ${preset.name}`, family: preset.family } : undefined;
}

/**
 * The config layers of weights that know their conventions (under the user's config), and one line
 * saying what they set. Under a config that states its own conventions (`statedBy`) only the
 * architecture applies, and the line says so when the two conventions differ.
 */
export function weightConventionLayers(
  conventions: WeightConventions | undefined,
  description: string,
  statedBy?: ConventionSource,
): { layers: ConfigOverrides[]; note?: string } {
  if (!conventions) return { layers: [] };
  const keys = (layer: ConfigOverrides): string[] => Object.entries(layer).flatMap(([s, k]) => Object.keys(k).map((key) => `${s}.${key}`));
  const arch = conventions.architecture as Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  const shown = ['MODEL.CONV_BODY', 'MODEL.NUM_CLASSES', 'MODEL.MASK_ON', 'MODEL.KEYPOINTS_ON']
    .map((k) => [k, arch[k.split('.')[0]!]?.[k.split('.')[1]!]] as const)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  const architecture = `the architecture inferred from its tensors (${[...shown, `${Math.max(0, keys(conventions.architecture).length - shown.length)} more`].join(', ')})`;
  // torchvision's conventions are the defaults: nothing worth a line on stderr.
  const quiet = conventions.convention === 'torchvision';
  if (statedBy) {
    const differ = !quiet && statedBy.family !== conventions.convention;
    const note =
      `weights ${description} are a ${conventions.convention} checkpoint, but ${statedBy.what} states its own conventions: those are used, ` +
      `with ${architecture} under them (omit --config, or pass a ${conventions.convention} config, to use the checkpoint's conventions)`;
    return { layers: [conventions.architecture], ...(differ ? { note } : {}) };
  }
  const note =
    `weights ${description} are a ${conventions.convention} checkpoint: applying its conventions (${keys(conventions.conventions).length} keys) ` +
    `and ${architecture}; --config and --set override them`;
  return { layers: [conventions.conventions, conventions.architecture], ...(quiet ? {} : { note }) };
}

/** The resolved sources of a model. */
export interface ModelSources {
  readonly container: DependencyContainer;
  readonly resolved: ResolvedConfig;
  readonly labels: ModelLabels;
  readonly weights: WeightStore;
}

/** Registers the packages, loads the config (with their sections) and the weights. */
export async function resolveModelSources(options: ModelSourceOptions): Promise<ModelSources> {
  const container = options.container ?? createContainer();
  for (const register of options.register ?? []) register(container);
  if (options.nonFinite !== undefined && !NON_FINITE_POLICIES.includes(options.nonFinite)) {
    throw new ConfigError(`nonFinite must be one of ${NON_FINITE_POLICIES.join(', ')}, got ${JSON.stringify(options.nonFinite)}`, { key: 'nonFinite' });
  }
  // Weights are read first: a checkpoint that knows its conventions and architecture brings them as
  // config layers under the user's config.
  let loaded: WeightStore | undefined;
  if (options.weights instanceof WeightStore) loaded = options.weights;
  else if (typeof options.weights === 'string') {
    loaded = await loadWeights(options.weights, container, {
      ...(options.nonFinite === undefined ? {} : { nonFinite: options.nonFinite }),
      ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
    });
  }
  const brought =
    options.weightConventions === false || !loaded ? { layers: [] } : weightConventionLayers(loaded.conventions, loaded.description, conventionSource(options.config));
  const resolved = resolveConfig(options.config, { sections: configSections(container), set: options.set, base: brought.layers, caseMappers: caseMappers(container) });
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  if (brought.note) warn(brought.note);
  for (const note of resolved.notes) warn(note);
  let weights: WeightStore;
  if (loaded) weights = loaded;
  else if (options.calibrateRandomWeights === false) weights = WeightStore.random(options.seed ?? 0);
  else {
    // 'N/A' entries of torchvision's COCO list are gaps, never a class worth raising.
    const skip = new Set(resolved.labels.categories.flatMap((n, i) => (n === 'N/A' ? [i] : [])));
    weights = calibratedRandomWeights(options.seed ?? 0, resolved.config, { skipClasses: skip });
  }
  return { container, resolved, labels: options.labels ?? (await checkpointLabels(options.weights, resolved.config, resolved.labels)) ?? resolved.labels, weights };
}
