/**
 * Frozen normalisation layers and their folding into the preceding convolution.
 *
 * At inference a frozen norm is a per-channel affine map y = x * s + t (torchvision
 * FrozenBatchNorm2d: s = w * rsqrt(var + eps), t = b - mean * s; Detectron AffineChannel: s = w,
 * t = b). Following a bias-free conv it folds into the conv exactly: W' = W * s per output channel,
 * b' = t. Folding removes one full read/write of every activation map (and ORT never sees a
 * BatchNormalization node, whose eps handling differs from FrozenBatchNorm2d's). The fold is done
 * in float64 and rounded to float32 once, so it adds at most half an ulp per weight, well below the
 * difference between torchvision's own unfused float32 evaluation orders.
 */
import type { RandomInit, WeightStore } from '@rcnn/core';
import type { FrozenNormKind } from './conventions.js';

/** A frozen norm as a per-channel affine map y = x * scale + shift, in float64. */
export interface FrozenNormAffine {
  readonly scale: Float64Array;
  readonly shift: Float64Array;
}

/**
 * Random initialisation of norm parameters for {@link WeightStore.random}: scale and variance
 * around 1, bias and mean around 0, so a deep random network keeps finite, non-trivial activations.
 */
export const FROZEN_NORM_RANDOM_INIT: Readonly<Record<'weight' | 'bias' | 'running_mean' | 'running_var', RandomInit>> = {
  weight: { kind: 'uniform', low: 0.5, high: 1.5 },
  bias: { kind: 'normal', std: 0.1 },
  running_mean: { kind: 'normal', std: 0.1 },
  running_var: { kind: 'uniform', low: 0.5, high: 1.5 },
};

/**
 * Reads the norm layer `key` (`backbone.body.bn1`) with `channels` channels and returns its affine
 * map. FrozenBN reads `.weight`, `.bias`, `.running_mean`, `.running_var`; AffineChannel only
 * `.weight` (scale) and `.bias`. A `num_batches_tracked` buffer (saved by BatchNorm2d, dropped by
 * FrozenBatchNorm2d on load) is accepted and ignored.
 */
export function readFrozenNorm(weights: WeightStore, key: string, channels: number, kind: FrozenNormKind, eps: number): FrozenNormAffine {
  const w = weights.take(`${key}.weight`, [channels], FROZEN_NORM_RANDOM_INIT.weight);
  const b = weights.take(`${key}.bias`, [channels], FROZEN_NORM_RANDOM_INIT.bias);
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  if (kind === 'AffineChannel') {
    for (let c = 0; c < channels; c++) {
      scale[c] = w[c];
      shift[c] = b[c];
    }
    return { scale, shift };
  }
  const mean = weights.take(`${key}.running_mean`, [channels], FROZEN_NORM_RANDOM_INIT.running_mean);
  const variance = weights.take(`${key}.running_var`, [channels], FROZEN_NORM_RANDOM_INIT.running_var);
  const tracked = `${key}.num_batches_tracked`;
  if (!weights.isRandom && weights.has(tracked)) weights.markUsed(tracked);
  for (let c = 0; c < channels; c++) {
    scale[c] = w[c] / Math.sqrt(variance[c] + eps);
    shift[c] = b[c] - mean[c] * scale[c];
  }
  return { scale, shift };
}

/**
 * Folds `norm` into a bias-free conv weight [outChannels, …] (row-major, one row per output
 * channel): returns the float32 weight W * scale and bias shift, each rounded once from float64.
 */
export function foldFrozenNorm(weight: Float32Array, outChannels: number, norm: FrozenNormAffine): { weight: Float32Array; bias: Float32Array } {
  const perChannel = weight.length / outChannels;
  if (!Number.isInteger(perChannel) || norm.scale.length !== outChannels) {
    throw new RangeError(`foldFrozenNorm: weight of ${weight.length} values does not split into ${outChannels} output channels matching the norm (${norm.scale.length})`);
  }
  const folded = new Float32Array(weight.length);
  const bias = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    const s = norm.scale[o];
    const base = o * perChannel;
    for (let i = 0; i < perChannel; i++) folded[base + i] = weight[base + i] * s;
    bias[o] = norm.shift[o];
  }
  return { weight: folded, bias };
}
