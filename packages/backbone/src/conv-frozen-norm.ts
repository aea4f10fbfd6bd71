/**
 * A bias-free conv followed by a frozen norm (and optionally ReLU), built as a single ONNX Conv
 * whose weight and bias have the norm folded in (see frozen-norm.ts for what is folded and why).
 */
import { type Blob, type BuildContext, ConfigError, ops } from '@rcnn/core';
import type { ResNetConventions } from './conventions.js';
import { foldFrozenNorm, readFrozenNorm } from './frozen-norm.js';

/** What {@link convFrozenNorm} builds. */
export interface ConvFrozenNormSpec {
  /** State-dict key of the conv without `.weight` (`backbone.body.layer1.0.conv1`). */
  readonly conv: string;
  /** State-dict key of the norm that follows it (`backbone.body.layer1.0.bn1`). */
  readonly norm: string;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: number;
  readonly stride?: number;
  /** Symmetric padding (default: `dilation * (kernel - 1) / 2`, i.e. "same" for odd kernels at stride 1). */
  readonly pad?: number;
  readonly dilation?: number;
  readonly groups?: number;
  /** Apply ReLU after the norm. */
  readonly relu?: boolean;
  /** Base name of the graph nodes and initializers (default: last segment of `conv`). */
  readonly name?: string;
}

/**
 * Builds conv → frozen norm (→ ReLU) on `x` [N, inChannels, H, W], reading the weight
 * `${conv}.weight` [out, in/groups, k, k] and the norm parameters under `norm` with the
 * normalisation kind and eps of `conventions`. Returns [N, outChannels, H', W'].
 */
export function convFrozenNorm(ctx: BuildContext, x: Blob, spec: ConvFrozenNormSpec, conventions: Pick<ResNetConventions, 'norm' | 'eps'>): Blob {
  const g = ctx.graph;
  const groups = spec.groups ?? 1;
  const dilation = spec.dilation ?? 1;
  const name = spec.name ?? spec.conv.slice(spec.conv.lastIndexOf('.') + 1);
  if (spec.inChannels % groups !== 0 || spec.outChannels % groups !== 0) {
    throw new ConfigError(`${spec.conv}: ${spec.inChannels} -> ${spec.outChannels} channels do not split into ${groups} groups`, { key: 'RESNETS.NUM_GROUPS' });
  }
  const dims = [spec.outChannels, spec.inChannels / groups, spec.kernel, spec.kernel];
  const weightKey = `${spec.conv}.weight`;
  const raw = ctx.weights.take(weightKey, dims, { kind: 'he' });
  const norm = readFrozenNorm(ctx.weights, spec.norm, spec.outChannels, conventions.norm, conventions.eps);
  const folded = foldFrozenNorm(raw, spec.outChannels, norm);
  let w: Blob;
  if (ctx.weights.isTrainable(weightKey)) {
    // Training: the conv weight itself is the parameter (an initializer holding the array the
    // store returned, so it can become a graph input); the frozen norm's scale is applied to it in
    // the graph, so the gradient reaching the weight is the folded weight's times the scale.
    const scale = Float32Array.from(norm.scale);
    const parameter = g.initializer(`${name}.weight_raw`, { dtype: 'float32', dims, data: raw });
    const channelScale = g.initializer(`${name}.norm_scale`, { dtype: 'float32', dims: [spec.outChannels, 1, 1, 1], data: scale });
    w = ops.mul(g, parameter, channelScale, `${name}.weight`);
  } else {
    w = g.initializer(`${name}.weight`, { dtype: 'float32', dims, data: folded.weight });
  }
  const b = g.initializer(`${name}.bias`, { dtype: 'float32', dims: [spec.outChannels], data: folded.bias });
  const y = ops.conv(g, x, w, b, {
    kernel: spec.kernel,
    stride: spec.stride ?? 1,
    pad: spec.pad ?? (dilation * (spec.kernel - 1)) / 2,
    dilation,
    group: groups,
    name,
  });
  return spec.relu ? ops.relu(g, y, `${name}.relu`) : y;
}
