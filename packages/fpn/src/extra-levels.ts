/**
 * Pyramid levels above the backbone's last stage (P6, P7): torchvision's LastLevelMaxPool or
 * Detectron's extra conv levels (`FPN.EXTRA_CONV_LEVELS`).
 */
import { type BuildContext, ConfigError, type FeatureMap, conv2d, ops } from '@rcnn/core';

/** State-dict prefix of the extra conv levels: torchvision's LastLevelP6P7 names. */
export const EXTRA_BLOCKS_PREFIX = 'backbone.fpn.extra_blocks.';

/** Kernel, stride and padding of the max-pool / convs that make an extra level (both variants halve the size). */
const MAX_POOL = { kernel: 1, stride: 2, pad: 0 } as const;
const EXTRA_CONV = { kernel: 3, stride: 2, pad: 1 } as const;

/**
 * torchvision's LastLevelMaxPool: P6 = max_pool2d(P5, kernel 1, stride 2), named 'pool'. Only
 * one level can be made this way (Detectron also stops at P6 without extra convs).
 */
export function maxPoolLevel(ctx: BuildContext, top: FeatureMap, level: number): FeatureMap {
  if (level !== top.level + 1) {
    throw new ConfigError(
      `FPN level ${level} is above P${top.level + 1}: without FPN.EXTRA_CONV_LEVELS only P${top.level + 1} can be made (max-pool of P${top.level})`,
      { key: 'FPN.RPN_MAX_LEVEL', hint: 'lower FPN.RPN_MAX_LEVEL / ROI_MAX_LEVEL or set FPN.EXTRA_CONV_LEVELS' },
    );
  }
  const blob = ops.maxPool(ctx.graph, top.blob, { ...MAX_POOL, name: 'p6_pool' });
  return { name: 'pool', blob, channels: top.channels, spatialScale: 2 ** -level, level };
}

/**
 * Detectron's extra conv levels: P6 = conv3x3/2(C5), P7 = conv3x3/2(ReLU(P6)), … with weights
 * `backbone.fpn.extra_blocks.p{level}.weight` / `.bias` (torchvision LastLevelP6P7's names; its
 * P6 reads C5 too when C5 and the FPN differ in width). Levels are named `p6`, `p7`.
 */
export function convLevels(ctx: BuildContext, c5: FeatureMap, fromLevel: number, toLevel: number, dim: number): FeatureMap[] {
  const g = ctx.graph;
  const out: FeatureMap[] = [];
  let inChannels = c5.channels;
  for (let level = fromLevel; level <= toLevel; level++) {
    // P6 reads C5; each later level reads ReLU of the previous one (Detectron's extra conv levels).
    const input = out.length === 0 ? c5.blob : ops.relu(g, out[out.length - 1]!.blob, `p${level - 1}_relu`);
    // kaiming_uniform_(a=1) in torchvision: std 1/sqrt(fan_in), bias 0.
    const blob = conv2d(ctx, input, { key: `${EXTRA_BLOCKS_PREFIX}p${level}`, inChannels, outChannels: dim, ...EXTRA_CONV, weightInit: { kind: 'he', gain: 1 } });
    out.push({ name: `p${level}`, blob, channels: dim, spatialScale: 2 ** -level, level });
    inChannels = dim;
  }
  return out;
}
