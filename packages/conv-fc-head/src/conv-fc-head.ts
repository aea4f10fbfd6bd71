/**
 * torchvision's `FastRCNNConvFCHead` (the box head of `fasterrcnn_resnet50_fpn_v2`) as Detectron's
 * `fast_rcnn_heads.add_roi_Xconv1fc_head`: RoIAlign (FAST_RCNN.ROI_XFORM_*), CONV_FC_HEAD.NUM_STACKED_CONVS x
 * `Conv2dNormActivation` (3x3 conv, norm, ReLU), flatten, one fc of FAST_RCNN.MLP_HEAD_DIM + ReLU.
 * Weights are the Sequential's: `roi_heads.box_head.<i>.0.weight` (conv), `<i>.1.*` (norm), then
 * `roi_heads.box_head.<n+1>.*` for the fc (module n is the Flatten).
 *
 * Written only against @rcnn/core's public API: its layers (`roiPooler`, `convNorm`, `conv2d`,
 * `linear`, torchvision Sequential key helpers) and the registry.
 */
import {
  DIMS,
  type BoxHeadOutput,
  type BuildContext,
  type CaseContext,
  type CaseSection,
  type ConfigOverrides,
  type Conv2dSpec,
  type FeatureMaps,
  type Implementation,
  type LinearSpec,
  type NormSpec,
  type RcnnConfig,
  type RoiBoxHead,
  type Rois,
  conv2d,
  conv2dParameters,
  convNorm,
  convNormActivationKeys,
  linear,
  linearParameters,
  normParameters,
  ops,
  roiPooler,
  sequentialKey,
  xavierFill,
} from '@rcnn/core';
import { convFcHeadSettings } from './config.js';

/** Registry name (slot roi-box-head), Detectron's. */
export const CONV_FC_HEAD_NAME = 'fast_rcnn_heads.add_roi_Xconv1fc_head';

/** State-dict prefix of the head (torchvision `roi_heads.box_head`, an nn.Sequential). */
export const CONV_FC_HEAD_PREFIX = 'roi_heads.box_head';

/** The head's layers under `config` for RoI features of `inChannels` channels. */
export interface ConvFcHeadLayers {
  readonly convs: readonly (Conv2dSpec & { readonly norm?: NormSpec })[];
  readonly fc: LinearSpec;
}

/** The layers (key, shape, init) the head is made of. */
export function convFcHeadLayers(config: RcnnConfig, inChannels: number): ConvFcHeadLayers {
  const s = convFcHeadSettings(config);
  const resolution = config.FAST_RCNN.ROI_XFORM_RESOLUTION;
  const convs = Array.from({ length: s.NUM_STACKED_CONVS }, (_, i) => {
    const keys = convNormActivationKeys(CONV_FC_HEAD_PREFIX, i);
    const conv: Conv2dSpec = {
      key: keys.conv,
      name: `conv${i + 1}`,
      inChannels: i === 0 ? inChannels : s.CONV_HEAD_DIM,
      outChannels: s.CONV_HEAD_DIM,
      kernel: 3,
      // torchvision: kaiming_normal_(mode='fan_out', relu); Conv2dNormActivation has a bias only without a norm.
      bias: s.NORM === 'none',
      activation: 'relu',
    };
    return s.NORM === 'none' ? conv : { ...conv, norm: { kind: s.NORM, key: keys.norm, eps: s.NORM_EPS, numGroups: s.NUM_GROUPS } };
  });
  const channels = s.NUM_STACKED_CONVS > 0 ? s.CONV_HEAD_DIM : inChannels;
  const inFeatures = channels * resolution * resolution;
  // After the convs the Sequential has the Flatten (module n), then the Linear (n + 1) and its ReLU.
  const fc: LinearSpec = { key: sequentialKey(CONV_FC_HEAD_PREFIX, s.NUM_STACKED_CONVS + 1), name: 'fc', inFeatures, outFeatures: config.FAST_RCNN.MLP_HEAD_DIM, weightInit: xavierFill(inFeatures), activation: 'relu' };
  return { convs, fc };
}

/** The weight keys the head reads under `config` (BatchNorm2d's `num_batches_tracked` is accepted too). */
export function convFcHeadWeightKeys(config: RcnnConfig, inChannels: number): string[] {
  const l = convFcHeadLayers(config, inChannels);
  const convKeys = l.convs.flatMap((c) => [...conv2dParameters(c), ...(c.norm ? normParameters(c.norm, c.outChannels) : [])]);
  return [...convKeys, ...linearParameters(l.fc)].map((t) => t.key);
}

function build(ctx: BuildContext, features: FeatureMaps, rois: Rois): BoxHeadOutput {
  const pooled = roiPooler(ctx, features, rois, ctx.config.FAST_RCNN, { what: 'conv-fc box head' });
  ctx.tap('roi.box_features', pooled.features, 'float32', 'proposal-rows', [DIMS.rois, pooled.channels, pooled.resolution, pooled.resolution]);
  const layers = convFcHeadLayers(ctx.config, pooled.channels);
  const x = layers.convs.reduce((h, c) => (c.norm ? convNorm(ctx, h, { ...c, norm: c.norm }) : conv2d(ctx, h, c)), pooled.features);
  const fc = linear(ctx, ops.flatten(ctx.graph, x, 1, 'flatten'), layers.fc);
  return { features: fc, dim: layers.fc.outFeatures };
}

/** The head as a {@link RoiBoxHead}. */
export const convFcHead: RoiBoxHead = {
  build,
  weightPrefixes: [`${CONV_FC_HEAD_PREFIX}.`],
};

/**
 * Maps a parity case's `model.box.head` of type `FastRCNNConvFCHead` (`conv_layers`, `fc_layers`,
 * `norm`, `eps`; written by this package's generator extension, fixtures/gen_conv_fc_head.py).
 */
export function convFcHeadFromCase(section: CaseSection, context: CaseContext): ConfigOverrides {
  const h = section as unknown as { conv_layers: number[]; fc_layers: number[]; norm: string | null; eps?: number; num_groups?: number };
  context.need(h.fc_layers.length === 1, `FastRCNNConvFCHead with ${h.fc_layers.length} fc layers (this head has one)`);
  context.need(h.conv_layers.every((c) => c === h.conv_layers[0]), `FastRCNNConvFCHead conv widths differ (${h.conv_layers.join(', ')})`);
  const norm = h.norm ?? 'none';
  context.need(norm === 'BatchNorm2d' || norm === 'GroupNorm' || norm === 'none', `FastRCNNConvFCHead norm ${norm} is not BatchNorm2d, GroupNorm or none`);
  return {
    FAST_RCNN: { ROI_BOX_HEAD: CONV_FC_HEAD_NAME, MLP_HEAD_DIM: h.fc_layers[0] },
    CONV_FC_HEAD: {
      NUM_STACKED_CONVS: h.conv_layers.length,
      ...(h.conv_layers.length > 0 ? { CONV_HEAD_DIM: h.conv_layers[0] } : {}),
      NORM: norm,
      ...(h.eps === undefined ? {} : { NORM_EPS: h.eps }),
      ...(h.num_groups === undefined ? {} : { NUM_GROUPS: h.num_groups }),
    },
  };
}

/** Registry entry (slot roi-box-head), with the case type it maps. */
export const CONV_FC_HEAD: Implementation<RoiBoxHead> = {
  name: CONV_FC_HEAD_NAME,
  aliases: ['FastRCNNConvFCHead'],
  provider: '@rcnn/conv-fc-head',
  description: 'RoIAlign (FAST_RCNN.ROI_XFORM_*), CONV_FC_HEAD.NUM_STACKED_CONVS x (3x3 conv + norm + ReLU), fc FAST_RCNN.MLP_HEAD_DIM + ReLU (torchvision FastRCNNConvFCHead)',
  value: convFcHead,
  caseTypes: ['FastRCNNConvFCHead'],
  fromCase: convFcHeadFromCase,
};
