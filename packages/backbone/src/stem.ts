/** The ResNet stem: conv1 7x7/2 (pad 3) + frozen norm + ReLU, then max-pool 3x3/2 (pad 1). */
import { type Blob, type BuildContext, convNorm, ops } from '@rcnn/core';
import { type ResNetConventions, resnetNorm } from './conventions.js';

/** The stem's fixed geometry (torchvision and Detectron agree). */
export const STEM = { kernel: 7, stride: 2, pad: 3, poolKernel: 3, poolStride: 2, poolPad: 1 } as const;

/**
 * Builds the stem on `images` [N,3,H,W] with weights `${prefix}conv1.weight` and `${prefix}bn1.*`;
 * returns [N, outChannels, ~H/4, ~W/4].
 */
export function buildResNetStem(ctx: BuildContext, images: Blob, prefix: string, outChannels: number, conventions: ResNetConventions): Blob {
  const g = ctx.graph;
  const y = convNorm(ctx, images, {
    key: `${prefix}conv1`,
    norm: resnetNorm(conventions, `${prefix}bn1`),
    inChannels: 3,
    outChannels,
    kernel: STEM.kernel,
    stride: STEM.stride,
    pad: STEM.pad,
    activation: 'relu',
  });
  return ops.maxPool(g, y, { kernel: STEM.poolKernel, stride: STEM.poolStride, pad: STEM.poolPad, name: 'maxpool' });
}
