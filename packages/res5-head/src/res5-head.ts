/**
 * Detectron's C4 RoI box head, `ResNet.add_ResNet_roi_conv5_head` (torchvision-style
 * `ResNetRes5Head`): RoIAlign of every proposal on the single C4 feature map, the ResNet res5
 * stage on the pooled features, then a global average pool to one vector per RoI.
 *
 * Written as a plugin against the public APIs of @rcnn/core (the slot contract, RoIAlign) and
 * @rcnn/backbone (the bottleneck stage with frozen norms folded in), so the res5 blocks are built
 * exactly like the backbone's own stages and read the same torchvision state-dict layout under
 * `roi_heads.box_head.res5.<block>.*`.
 */
import { RESNET_CUSTOM_C4_BODY, RESNET_DEPTHS, RESNET_STAGE_PLANES, type ResNetConventions, ResNetBody, buildResNetStage, resnetConventions } from '@rcnn/backbone';
import {
  DIMS,
  type BoxHeadOutput,
  type BuildContext,
  type CaseContext,
  type CaseSection,
  type ConfigOverrides,
  ConfigError,
  type DependencyContainer,
  type FeatureMaps,
  type Implementation,
  type RcnnConfig,
  type RoiBoxHead,
  type Rois,
  SLOTS,
  listImplementations,
  ops,
  roiPooler,
} from '@rcnn/core';

/** State-dict prefix of the head's weights (torchvision `roi_heads.box_head.res5.`). */
export const RES5_HEAD_PREFIX = 'roi_heads.box_head.res5.';

/** Registry name of the head (slot roi-box-head), Detectron's; what a C4 parity case maps to. */
export const RES5_HEAD_NAME = 'ResNet.add_ResNet_roi_conv5_head';

/** npm package that provides the head. */
export const RES5_HEAD_PROVIDER = '@rcnn/res5-head';

/** Stride of res5 without dilation: it halves the 14x14 RoI features to 7x7. */
const RES5_STRIDE = 2;

/** What the res5 stage is built from. */
export interface Res5Architecture {
  /** Bottleneck planes; the head outputs `planes * 4` features per RoI. */
  readonly planes: number;
  readonly blocks: number;
  /** Stride of the first block: 2 / RESNETS.RES5_DILATION. */
  readonly stride: number;
  /** Dilation of every 3x3 conv (RESNETS.RES5_DILATION). */
  readonly dilation: number;
  readonly conventions: ResNetConventions;
}

/**
 * The res5 stage that continues the configured conv body:
 *
 * - after the configurable C4 body (`ResNet.add_ResNet_custom_conv4_body`, whose stages come
 *   from RESNETS.STAGE_PLANES / STAGE_BLOCKS) the 4th entries of those lists;
 * - after any other body, the standard res5 of ResNet-50/101/152 (planes 512, 3 blocks; the
 *   depths differ only before res5), as Detectron's `add_ResNet_roi_conv5_head`;
 * - block conventions (groups, width, stride in 1x1, norm) of the body itself when it is one of
 *   @rcnn/backbone's ResNet bodies (so an `X-101-32x8d-C4` body gets its fixed 32x8d), else of
 *   RESNETS.*.
 */
export function res5Architecture(config: RcnnConfig, container: DependencyContainer): Res5Architecture {
  const r = config.RESNETS;
  const bodyName = config.MODEL.CONV_BODY;
  const body = listImplementations(container, SLOTS.convBody).find((i) => i.name === bodyName || (i.aliases ?? []).includes(bodyName));
  const conventions = body?.value instanceof ResNetBody ? body.value.architecture(config).conventions : resnetConventions(config);
  const custom = (body?.name ?? bodyName) === RESNET_CUSTOM_C4_BODY;
  let planes: number = RESNET_STAGE_PLANES[3];
  let blocks: number = RESNET_DEPTHS[50][3];
  if (custom) {
    for (const key of ['STAGE_PLANES', 'STAGE_BLOCKS'] as const) {
      const value = r[key][3];
      if (value === undefined || !Number.isInteger(value) || value < 1) {
        throw new ConfigError(
          `the res5 RoI head after ${bodyName} takes its stage from the 4th entry of RESNETS.${key}, which has [${r[key].join(', ')}]`,
          { key: `RESNETS.${key}`, hint: `add the res5 ${key === 'STAGE_PLANES' ? 'planes' : 'block count'} as a 4th entry` },
        );
      }
    }
    planes = r.STAGE_PLANES[3]!;
    blocks = r.STAGE_BLOCKS[3]!;
  }
  const dilation = r.RES5_DILATION;
  if (RES5_STRIDE % dilation !== 0) {
    throw new ConfigError(`RESNETS.RES5_DILATION is ${dilation}: the res5 RoI head has stride ${RES5_STRIDE} / dilation, so the dilation must be 1 or 2`, {
      key: 'RESNETS.RES5_DILATION',
    });
  }
  return { planes, blocks, stride: RES5_STRIDE / dilation, dilation, conventions };
}

function buildRes5Head(ctx: BuildContext, features: FeatureMaps, rois: Rois): BoxHeadOutput {
  const g = ctx.graph;
  if (features.length !== 1) {
    throw new ConfigError(
      `the res5 RoI head pools from the single C4 feature map, but got ${features.length} levels (${features.map((m) => `'${m.name}'`).join(', ')}); use it with a C4 conv body and FPN.FPN_ON false`,
      { key: 'FAST_RCNN.ROI_BOX_HEAD' },
    );
  }
  const arch = res5Architecture(ctx.config, ctx.container);
  // With one feature map the pooler is plain RoIAlign at that map's scale (no level mapping).
  const pooled = roiPooler(ctx, features, rois, ctx.config.FAST_RCNN, { what: 'res5 RoI head' });
  // One row per proposal slot, padding included; a dump keeps each image's valid rows.
  ctx.tap('roi.box_features', pooled.features, 'float32', 'proposal-rows', [DIMS.rois, pooled.channels, pooled.resolution, pooled.resolution]);
  const res5 = g.withScope('res5', () =>
    buildResNetStage(ctx, pooled.features, {
      prefix: RES5_HEAD_PREFIX,
      inChannels: pooled.channels,
      planes: arch.planes,
      blocks: arch.blocks,
      stride: arch.stride,
      dilation: arch.dilation,
      conventions: arch.conventions,
    }),
  );
  // torchvision AdaptiveAvgPool2d(1) + flatten; Detectron's AveragePool(kernel 7) on the 7x7 map is the same.
  const pooledVector = ops.flatten(g, ops.globalAveragePool(g, res5.blob, 'avgpool'), 1, 'flatten');
  return { features: pooledVector, dim: res5.channels };
}

/** The res5 head as a {@link RoiBoxHead}. */
export const res5Head: RoiBoxHead = {
  build: buildRes5Head,
  weightPrefixes: [RES5_HEAD_PREFIX],
};

/**
 * Maps a parity case's `model.box.head` of type `ResNetRes5Head` (torchvision's C4 box head in the
 * fixture format): the head must continue the backbone with its conventions; its planes and
 * blocks become the 4th entry of RESNETS.STAGE_PLANES / STAGE_BLOCKS.
 */
export function res5FromCase(section: CaseSection, context: CaseContext): ConfigOverrides {
  const h = section as unknown as { planes: number; blocks: number; stride: number; groups: number; width_per_group: number; stride_in_3x3: boolean; frozen_bn_eps: number; pool: string; state_dict_prefix?: string };
  const b = context.model.backbone as { groups: number; width_per_group: number; stride_in_3x3: boolean; frozen_bn_eps: number };
  context.need(h.stride === RES5_STRIDE, `res5 head stride ${h.stride} is not ${RES5_STRIDE}`);
  context.need(h.groups === b.groups && h.width_per_group === b.width_per_group, 'res5 head groups/width differ from the backbone');
  context.need(h.stride_in_3x3 === b.stride_in_3x3 && h.frozen_bn_eps === b.frozen_bn_eps, 'res5 head conventions differ from the backbone');
  context.need(h.pool === 'avg', `res5 head pool "${h.pool}" is not avg`);
  context.need(h.state_dict_prefix === undefined || h.state_dict_prefix === RES5_HEAD_PREFIX, `res5 head prefix "${h.state_dict_prefix}" is not ${RES5_HEAD_PREFIX}`);
  const resnets = context.layer.RESNETS as { STAGE_PLANES: number[]; STAGE_BLOCKS: number[] };
  return {
    RESNETS: { STAGE_PLANES: [...resnets.STAGE_PLANES, h.planes], STAGE_BLOCKS: [...resnets.STAGE_BLOCKS, h.blocks] },
    FAST_RCNN: { ROI_BOX_HEAD: RES5_HEAD_NAME },
  };
}

/** Registry entry of the res5 head (slot roi-box-head). */
export const RES5_HEAD: Implementation<RoiBoxHead> = {
  name: RES5_HEAD_NAME,
  aliases: ['ResNetRes5Head'],
  provider: RES5_HEAD_PROVIDER,
  description:
    'C4 box head: RoIAlign (FAST_RCNN.ROI_XFORM_*) on the single C4 map, ResNet res5 (stride 2 / RESNETS.RES5_DILATION, frozen norms folded), global average pool',
  value: res5Head,
  caseTypes: ['ResNetRes5Head'],
  fromCase: res5FromCase,
};
