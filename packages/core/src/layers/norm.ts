/**
 * Conv + normalisation (+ activation), torchvision's `Conv2dNormActivation` / Detectron2's
 * `Conv2d(norm=…)`.
 *
 * At inference an eval-mode `BatchNorm2d`, a `FrozenBatchNorm2d` or Detectron's `AffineChannel`
 * is a per-channel affine map y = x * s + t (BN: s = w / sqrt(var + eps), t = b - mean * s;
 * AffineChannel: s = w, t = b). After a conv it folds into the conv exactly: W' = W * s per output
 * channel, b' = b * s + t. Folding removes a full read/write of every activation map, and
 * onnxruntime never sees a BatchNormalization node (whose eps handling differs from
 * FrozenBatchNorm2d's). The fold is done in float64 and rounded to float32 once: at most half an
 * ulp per weight. `GroupNorm` depends on the activations, so it cannot fold: it is built as graph
 * nodes after the conv (opset 17 has no GroupNormalization).
 */
import type { Blob } from '../graph/builder.js';
import * as ops from '../graph/onnx-ops.js';
import type { BuildContext } from '../model/contracts.js';
import type { RandomInit, WeightStore } from '../weights/store.js';
import { type Conv2dSpec, activate, conv2dOptions, conv2dParameters, layerName } from './conv.js';
import { type ParameterSpec, ZERO_INIT, readParameter, resolveKey } from './weights.js';

/** Normalisation layers {@link convNorm} supports (torchvision / Detectron class names). */
export type NormKind = 'BatchNorm2d' | 'FrozenBatchNorm2d' | 'AffineChannel' | 'GroupNorm';

/** A norm layer after a conv. */
export interface NormSpec {
  readonly kind: NormKind;
  /** Module key: `roi_heads.box_head.0.1`. */
  readonly key: string;
  /** The eps the layer was trained with (BatchNorm2d 1e-5, FrozenBatchNorm2d 1e-5 in torchvision, 0 in Detectron's pkl models; ignored by AffineChannel). */
  readonly eps: number;
  /** Groups of a GroupNorm. */
  readonly numGroups?: number;
}

/** A conv followed by a norm. The conv has no bias unless `bias: true` (torchvision's `bias=norm is None`). */
export interface ConvNormSpec extends Conv2dSpec {
  readonly norm: NormSpec;
}

/**
 * Random init of norm parameters (for `WeightStore.random`): scale and variance around 1, bias and
 * mean around 0, so a deep random network keeps finite, non-trivial activations.
 */
export const NORM_RANDOM_INIT: Readonly<Record<'weight' | 'bias' | 'running_mean' | 'running_var', RandomInit>> = {
  weight: { kind: 'uniform', low: 0.5, high: 1.5 },
  bias: { kind: 'normal', std: 0.1 },
  running_mean: { kind: 'normal', std: 0.1 },
  running_var: { kind: 'uniform', low: 0.5, high: 1.5 },
};

/** A folded norm: y = x * scale + shift per channel, in float64. */
export interface NormAffine {
  readonly scale: Float64Array;
  readonly shift: Float64Array;
}

/** The tensors a norm of `channels` channels reads (BN kinds: weight, bias, running stats; AffineChannel / GroupNorm: weight, bias). */
export function normParameters(norm: NormSpec, channels: number): ParameterSpec[] {
  const names = norm.kind === 'BatchNorm2d' || norm.kind === 'FrozenBatchNorm2d' ? (['weight', 'bias', 'running_mean', 'running_var'] as const) : (['weight', 'bias'] as const);
  return names.map((n) => ({ key: `${norm.key}.${n}`, shape: [channels], init: NORM_RANDOM_INIT[n] }));
}

/**
 * Reads a BatchNorm2d / FrozenBatchNorm2d / AffineChannel `norm` with `channels` channels as its
 * affine map. BatchNorm2d's int64 `num_batches_tracked` buffer is accepted and ignored.
 */
export function readNormAffine(weights: WeightStore, norm: NormSpec, channels: number): NormAffine {
  if (norm.kind === 'GroupNorm') throw new RangeError(`${norm.key}: GroupNorm is not an affine map of its input and does not fold`);
  const [w, b, mean, variance] = normParameters(norm, channels).map((p) => readParameter({ weights }, p));
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  if (norm.kind === 'AffineChannel') {
    for (let c = 0; c < channels; c++) {
      scale[c] = w![c]!;
      shift[c] = b![c]!;
    }
    return { scale, shift };
  }
  const tracked = `${norm.key}.num_batches_tracked`;
  if (!weights.isRandom && weights.has(tracked)) weights.markUsed(tracked);
  for (let c = 0; c < channels; c++) {
    scale[c] = w![c]! / Math.sqrt(variance![c]! + norm.eps);
    shift[c] = b![c]! - mean![c]! * scale[c]!;
  }
  return { scale, shift };
}

/**
 * Folds `affine` into a conv weight [outChannels, …] (one row per output channel) and optional
 * bias: returns W * scale and bias * scale + shift, each rounded once from float64.
 */
export function foldNorm(weight: Float32Array, outChannels: number, affine: NormAffine, bias?: Float32Array): { weight: Float32Array; bias: Float32Array } {
  const perChannel = weight.length / outChannels;
  if (!Number.isInteger(perChannel) || affine.scale.length !== outChannels) {
    throw new RangeError(`foldNorm: weight of ${weight.length} values does not split into ${outChannels} output channels matching the norm (${affine.scale.length})`);
  }
  const folded = new Float32Array(weight.length);
  const foldedBias = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    const s = affine.scale[o]!;
    const base = o * perChannel;
    for (let i = 0; i < perChannel; i++) folded[base + i] = weight[base + i]! * s;
    foldedBias[o] = bias ? bias[o]! * s + affine.shift[o]! : affine.shift[o]!;
  }
  return { weight: folded, bias: foldedBias };
}

/** GroupNorm over `x` [N, C, H, W] with `groups` groups, then the per-channel affine `weight`, `bias`. */
function groupNorm(ctx: BuildContext, x: Blob, norm: NormSpec, channels: number): Blob {
  const g = ctx.graph;
  const groups = norm.numGroups ?? 0;
  if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) {
    throw new RangeError(`${norm.key}: GroupNorm needs numGroups dividing ${channels} channels, got ${norm.numGroups}`);
  }
  return g.withScope('gn', () => {
    const grouped = ops.reshape(g, x, [0, groups, -1], 'grouped');
    const mean = g.op('ReduceMean', [grouped], { axes: [2], keepdims: 1 }, 'mean');
    const centred = ops.sub(g, grouped, mean, 'centred');
    const variance = g.op('ReduceMean', [ops.mul(g, centred, centred, 'sq')], { axes: [2], keepdims: 1 }, 'var');
    const normed = ops.div(g, centred, ops.sqrt(g, ops.add(g, variance, g.constFloat32(norm.eps), 'var_eps')), 'normed');
    const restored = ops.reshape(g, normed, ops.shape(g, x, undefined, undefined, 'x_shape'), 'restored');
    const [w, b] = normParameters(norm, channels).map((p) => readParameter(ctx, p));
    const weight = g.initializer('weight', { dtype: 'float32', dims: [channels, 1, 1], data: w! });
    const bias = g.initializer('bias', { dtype: 'float32', dims: [channels, 1, 1], data: b! });
    return ops.add(g, ops.mul(g, restored, weight, 'scaled'), bias, 'affine');
  });
}

/**
 * Conv → norm (→ activation) on `x`: one Conv with the norm folded in for BatchNorm2d (eval),
 * FrozenBatchNorm2d and AffineChannel; Conv then GroupNorm nodes for GroupNorm.
 */
export function convNorm(ctx: BuildContext, x: Blob, spec: ConvNormSpec): Blob {
  const g = ctx.graph;
  const conv: Conv2dSpec = { ...spec, bias: spec.bias ?? false };
  return g.withScope(layerName(spec), () => {
    const [weightSpec, biasSpec] = conv2dParameters(conv);
    const raw = readParameter(ctx, weightSpec!);
    const rawBias = biasSpec ? readParameter(ctx, { ...biasSpec, init: biasSpec.init ?? ZERO_INIT }) : undefined;
    if (spec.norm.kind === 'GroupNorm') {
      const w = g.initializer('weight', { dtype: 'float32', dims: [...weightSpec!.shape], data: raw });
      const b = rawBias ? g.initializer('bias', { dtype: 'float32', dims: [spec.outChannels], data: rawBias }) : null;
      const y = ops.conv(g, x, w, b, { ...conv2dOptions(conv), name: 'conv' });
      return activate(ctx, groupNorm(ctx, y, spec.norm, spec.outChannels), spec.activation);
    }
    const affine = readNormAffine(ctx.weights, spec.norm, spec.outChannels);
    const folded = foldNorm(raw, spec.outChannels, affine, rawBias);
    let w: Blob;
    if (ctx.weights.isTrainable(resolveKey(ctx.weights, weightSpec!.key, weightSpec!.aliases))) {
      // Training: the conv weight itself is the parameter (an initializer holding the array the
      // store returned, so it can become a graph input); the frozen norm's scale is applied to it in
      // the graph, so the gradient reaching the weight is the folded weight's times the scale.
      const parameter = g.initializer('weight_raw', { dtype: 'float32', dims: [...weightSpec!.shape], data: raw });
      const channelScale = g.initializer('norm_scale', { dtype: 'float32', dims: [spec.outChannels, 1, 1, 1], data: Float32Array.from(affine.scale) });
      w = ops.mul(g, parameter, channelScale, 'weight');
    } else {
      // The folded arrays are this graph's own (made here from the store's), so a detector may free
      // them as soon as the model is serialised.
      w = g.initializer('weight', { dtype: 'float32', dims: [...weightSpec!.shape], data: folded.weight }, { owned: true });
    }
    const b = g.initializer('bias', { dtype: 'float32', dims: [spec.outChannels], data: folded.bias }, { owned: true });
    return activate(ctx, ops.conv(g, x, w, b, { ...conv2dOptions(conv), name: 'conv' }), spec.activation);
  });
}
