/**
 * Parameters by state-dict key: every layer of `@rcnn/core/layers` reads its tensors through
 * {@link parameter}, so a head never builds an initializer by hand. A key is the torchvision
 * module path plus the tensor name (`roi_heads.mask_head.0.0.weight`); `aliases` are the names
 * older checkpoints used for the same tensor (torchvision renames them on load, so do we).
 */
import type { Blob } from '../graph/builder.js';
import type { BuildContext } from '../model/contracts.js';
import type { RandomInit, WeightStore } from '../weights/store.js';

/** One tensor a layer reads: state-dict key, exact shape, random init (for `WeightStore.random`), legacy names. */
export interface ParameterSpec {
  readonly key: string;
  readonly shape: readonly number[];
  readonly init: RandomInit;
  /** Keys older checkpoints store the same tensor under, tried in order when `key` is absent. */
  readonly aliases?: readonly string[];
}

/** Zero (biases; BN running means). */
export const ZERO_INIT: RandomInit = { kind: 'constant', value: 0 };
/** One (norm scales). */
export const ONE_INIT: RandomInit = { kind: 'constant', value: 1 };
/** He (Kaiming) normal with ReLU gain: torchvision's `kaiming_normal_(mode='fan_out', nonlinearity='relu')` family for conv + ReLU stacks. */
export const HE_INIT: RandomInit = { kind: 'he' };

/**
 * Caffe2's XavierFill, U(±sqrt(3 / fan_in)): Detectron's init of hidden fc layers, which keeps
 * activations at scale through fc + ReLU stacks.
 */
export function xavierFill(fanIn: number): RandomInit {
  const bound = Math.sqrt(3 / fanIn);
  return { kind: 'uniform', low: -bound, high: bound };
}

/**
 * The key `weights` holds the tensor under: `key` itself, or the first of `aliases` that the
 * store has when `key` is missing. Random stores (and stores with neither) use `key`, so a
 * missing tensor is reported under its current name.
 */
export function resolveKey(weights: WeightStore, key: string, aliases: readonly string[] = []): string {
  if (weights.isRandom || aliases.length === 0 || weights.has(key)) return key;
  return aliases.find((a) => weights.has(a)) ?? key;
}

/**
 * Reads `spec` from the build's store (marking it used; a missing or mis-shaped key fails with a
 * WeightsError naming it) as float32 values.
 */
export function readParameter(ctx: Pick<BuildContext, 'weights'>, spec: ParameterSpec): Float32Array {
  return ctx.weights.take(resolveKey(ctx.weights, spec.key, spec.aliases), spec.shape, spec.init);
}

/**
 * {@link readParameter} as an initializer of the current graph scope, named `name` (default: the
 * last segment of the key, `weight` / `bias`).
 */
export function parameter(ctx: Pick<BuildContext, 'weights' | 'graph'>, spec: ParameterSpec, name?: string): Blob {
  const data = readParameter(ctx, spec);
  return ctx.graph.initializer(name ?? spec.key.slice(spec.key.lastIndexOf('.') + 1), { dtype: 'float32', dims: [...spec.shape], data });
}

/** `<module>.<tensor>` for each of `aliases` (legacy module paths → legacy tensor keys). */
export function aliasKeys(aliases: readonly string[] | undefined, tensor: string): readonly string[] | undefined {
  return aliases?.map((a) => `${a}.${tensor}`);
}

/**
 * Key of a module inside torchvision `nn.Sequential` containers: `sequentialKey('roi_heads.mask_head', 2, 0)`
 * is `roi_heads.mask_head.2.0` (layer 2 of the head, its conv inside a `Conv2dNormActivation`).
 */
export function sequentialKey(prefix: string, ...indices: readonly (number | string)[]): string {
  const base = prefix.endsWith('.') ? prefix.slice(0, -1) : prefix;
  return [base, ...indices.map(String)].join('.');
}

/**
 * Module keys of torchvision's `Conv2dNormActivation` at position `index` of a Sequential under
 * `prefix`: the conv is `<prefix>.<index>.0`, the norm `<prefix>.<index>.1`.
 */
export function convNormActivationKeys(prefix: string, index: number): { readonly conv: string; readonly norm: string } {
  return { conv: sequentialKey(prefix, index, 0), norm: sequentialKey(prefix, index, 1) };
}
