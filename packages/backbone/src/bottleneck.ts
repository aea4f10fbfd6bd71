/**
 * The ResNet / ResNeXt bottleneck block and the stage (`layerN`) made of them, in torchvision's
 * state-dict layout: `{prefix}{j}.conv{1,2,3}.weight`, `{prefix}{j}.bn{1,2,3}.*` and, where the
 * block changes resolution or width, the projection shortcut `{prefix}{j}.downsample.{0,1}.*`.
 * Exported so other stages (the C4 res5 RoI head `roi_heads.box_head.res5.*`) build the very
 * same blocks.
 */
import { type Blob, type BuildContext, convNorm, ops } from '@rcnn/core';
import { BOTTLENECK_EXPANSION, type ResNetConventions, bottleneckWidth, resnetConventions, resnetNorm } from './conventions.js';

/** One bottleneck block. */
export interface BottleneckSpec {
  /** State-dict prefix of the block, with the trailing dot (`backbone.body.layer2.0.`). */
  readonly prefix: string;
  readonly inChannels: number;
  /** Planes; the block outputs `planes * 4` channels. */
  readonly planes: number;
  readonly stride: number;
  /** Dilation (and padding) of the 3x3 conv. */
  readonly dilation: number;
}

/**
 * Builds one bottleneck on `x`: 1x1 → 3x3 (grouped, dilated) → 1x1, each with its frozen norm
 * folded in, plus the identity or projection shortcut, then ReLU. The stride sits in the 3x3
 * (torchvision) or the first 1x1 (`stride1x1`, Detectron). Returns [N, planes*4, H/stride, W/stride].
 */
export function buildBottleneck(ctx: BuildContext, x: Blob, spec: BottleneckSpec, conventions: ResNetConventions): Blob {
  const g = ctx.graph;
  const { prefix, inChannels, planes, stride, dilation } = spec;
  const width = bottleneckWidth(planes, conventions);
  const outChannels = planes * BOTTLENECK_EXPANSION;
  const [stride1, stride3] = conventions.stride1x1 ? [stride, 1] : [1, stride];
  const layer = (i: number, inCh: number, outCh: number, kernel: number, layerStride: number, relu: boolean, groups = 1) => ({
    key: `${prefix}conv${i}`,
    norm: resnetNorm(conventions, `${prefix}bn${i}`),
    inChannels: inCh,
    outChannels: outCh,
    kernel,
    stride: layerStride,
    dilation: kernel === 3 ? dilation : 1,
    groups,
    activation: relu ? ('relu' as const) : ('none' as const),
  });
  let y = convNorm(ctx, x, layer(1, inChannels, width, 1, stride1, true));
  y = convNorm(ctx, y, layer(2, width, width, 3, stride3, true, conventions.groups));
  y = convNorm(ctx, y, layer(3, width, outChannels, 1, 1, false));
  // torchvision adds a projection only where the shape changes, so checkpoints have no
  // `downsample` keys elsewhere (e.g. layer1 when the stem already has planes*4 channels).
  const shortcut =
    stride !== 1 || inChannels !== outChannels
      ? convNorm(ctx, x, { key: `${prefix}downsample.0`, norm: resnetNorm(conventions, `${prefix}downsample.1`), name: 'downsample', inChannels, outChannels, kernel: 1, stride })
      : x;
  return ops.relu(g, ops.addSameShape(g, y, shortcut, 'sum'), 'out');
}

/** One stage (`layerN`) of bottleneck blocks. */
export interface ResNetStageSpec {
  /** State-dict prefix of the stage, with the trailing dot (`backbone.body.layer3.`, `roi_heads.box_head.res5.`). */
  readonly prefix: string;
  readonly inChannels: number;
  readonly planes: number;
  readonly blocks: number;
  /** Stride of the first block. */
  readonly stride: number;
  /** Dilation of every block's 3x3 conv (Detectron `RES5_DILATION` semantics; default 1). */
  readonly dilation?: number;
  /** Conventions (default: from `ctx.config.RESNETS`). */
  readonly conventions?: ResNetConventions;
}

/** Output of {@link buildResNetStage}. */
export interface ResNetStageOutput {
  readonly blob: Blob;
  /** `planes * 4`. */
  readonly channels: number;
}

/**
 * Builds a stage of `blocks` bottlenecks on `x`: the first has the stride (and the projection
 * shortcut), the others stride 1. Graph nodes are scoped by block index (`0/conv1`, …); put the
 * call inside `ctx.graph.withScope('layer3', …)` to name the stage.
 */
export function buildResNetStage(ctx: BuildContext, x: Blob, spec: ResNetStageSpec): ResNetStageOutput {
  const conventions = spec.conventions ?? resnetConventions(ctx.config);
  const dilation = spec.dilation ?? 1;
  let y = x;
  let inChannels = spec.inChannels;
  for (let j = 0; j < spec.blocks; j++) {
    const block: BottleneckSpec = { prefix: `${spec.prefix}${j}.`, inChannels, planes: spec.planes, stride: j === 0 ? spec.stride : 1, dilation };
    y = ctx.graph.withScope(String(j), () => buildBottleneck(ctx, y, block, conventions));
    inChannels = spec.planes * BOTTLENECK_EXPANSION;
  }
  return { blob: y, channels: spec.planes * BOTTLENECK_EXPANSION };
}
