/** What a detector and an export share: the container with the packages registered, the config and the weights. */
import { type ConfigOverrides, ConfigError, type DependencyContainer, type NonFinitePolicy, WeightStore, caseMappers, configSections, createContainer } from '@rcnn/core';
import type { ModelLabels } from './categories.js';
import { type ResolvedConfig, resolveConfig } from './presets.js';
import { calibratedRandomWeights, loadWeights } from './weights.js';

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
  const resolved = resolveConfig(options.config, { sections: configSections(container), set: options.set, caseMappers: caseMappers(container) });
  if (options.nonFinite !== undefined && !NON_FINITE_POLICIES.includes(options.nonFinite)) {
    throw new ConfigError(`nonFinite must be one of ${NON_FINITE_POLICIES.join(', ')}, got ${JSON.stringify(options.nonFinite)}`, { key: 'nonFinite' });
  }
  let weights: WeightStore;
  if (options.weights instanceof WeightStore) weights = options.weights;
  else if (typeof options.weights === 'string') {
    weights = await loadWeights(options.weights, container, {
      ...(options.nonFinite === undefined ? {} : { nonFinite: options.nonFinite }),
      ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
    });
  } else if (options.calibrateRandomWeights === false) weights = WeightStore.random(options.seed ?? 0);
  else {
    // 'N/A' entries of torchvision's COCO list are gaps, never a class worth raising.
    const skip = new Set(resolved.labels.categories.flatMap((n, i) => (n === 'N/A' ? [i] : [])));
    weights = calibratedRandomWeights(options.seed ?? 0, resolved.config, { skipClasses: skip });
  }
  return { container, resolved, labels: options.labels ?? resolved.labels, weights };
}
