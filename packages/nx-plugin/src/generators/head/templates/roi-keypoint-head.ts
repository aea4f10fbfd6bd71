/** Template of a RoI keypoint head (slot roi-keypoint-head): RoIAlign, convs, deconv, bilinear upsampling. */
import type { TemplateVars } from '../vars.js';
import { type SlotTemplate, ids } from './slot-template.js';

function implementation(v: TemplateVars): string {
  const { C, p, K } = ids(v);
  return `/**
 * ${v.registryName}: a RoI keypoint head for rcnn-node (slot roi-keypoint-head,
 * \`KRCNN.ROI_KEYPOINTS_HEAD\`), run on the final detections: RoIAlign (KRCNN.ROI_XFORM_*),
 * ${C}.NUM_CONVS x (3x3 conv of ${C}.CONV_DIM channels + ReLU), a stride-2 ConvTranspose
 * (KRCNN.DECONV_KERNEL, padding kernel / 2 - 1) to KRCNN.NUM_KEYPOINTS channels, then bilinear
 * upsampling by KRCNN.UP_SCALE: [D, K, KRCNN.HEATMAP_SIZE, KRCNN.HEATMAP_SIZE] heatmap logits,
 * which @rcnn/keypoint-head's \`heatmaps_to_keypoints\` decodes.
 *
 * Training (train mode): the same layers on the positive sampled RoIs; each valid (RoI, keypoint)
 * pair's GT keypoint as a heatmap cell (torchvision keypoints_to_heatmap, from @rcnn/keypoint-head)
 * and cross-entropy over the KRCNN.HEATMAP_SIZE^2 cells, mean over the valid pairs.
 */
import {
  type Blob,
  type BuildContext,
  type Conv2dSpec,
  type ConvTransposeSpec,
  DIMS,
  type Detections,
  type FeatureMaps,
  type HostTargets,
  type Implementation,
  type LossTerm,
  type RcnnConfig,
  type RoiHeadTraining,
  type RoiKeypointHead,
  type RoiGraphSample,
  type RoiTargetInput,
  type Rois,
  type TrainingBuildContext,
  type TrainingRois,
  conv2d,
  conv2dParameters,
  convTranspose,
  convTransposeParameters,
  losses,
  ops,
  roiPooler,
  sequentialKey,
  upsampleBilinear,
} from '@rcnn/core';
import { buildKeypointHeatmapTargets, keypointHeatmapTargets } from '@rcnn/keypoint-head';
import { ${p}Settings } from './config.js';

/** Registry name (slot roi-keypoint-head). */
export const ${C}_NAME = '${v.registryName}';

/** State-dict prefixes of the head's weights (torchvision's places for a keypoint head and predictor). */
export const ${C}_WEIGHT_PREFIXES = ['roi_heads.keypoint_head.', 'roi_heads.keypoint_predictor.'] as const;

/** The host post-processor that decodes the heatmaps (registered by @rcnn/keypoint-head). */
export const ${C}_POSTPROCESSOR = 'heatmaps_to_keypoints';

/** Stride of the transposed conv (KRCNN.DECONV_KERNEL is the kernel of a stride-2 deconv). */
const DECONV_STRIDE = 2;

/** The layers of the head. */
export interface ${K}Layers {
  readonly convs: readonly Conv2dSpec[];
  readonly deconv: ConvTransposeSpec;
}

/** The layers the head is made of under \`config\`, for RoI features of \`inChannels\` channels. */
export function ${p}Layers(config: RcnnConfig, inChannels: number): ${K}Layers {
  const s = ${p}Settings(config);
  const k = config.KRCNN;
  // torchvision's nn.Sequential(Conv2d, ReLU, …) layout: conv i is module 2i.
  const convs = Array.from({ length: s.NUM_CONVS }, (_, i): Conv2dSpec => ({
    key: sequentialKey('roi_heads.keypoint_head', 2 * i),
    inChannels: i === 0 ? inChannels : s.CONV_DIM,
    outChannels: s.CONV_DIM,
    kernel: 3,
    activation: 'relu',
  }));
  const width = s.NUM_CONVS > 0 ? s.CONV_DIM : inChannels;
  return {
    convs,
    deconv: { key: 'roi_heads.keypoint_predictor.deconv', inChannels: width, outChannels: k.NUM_KEYPOINTS, kernel: k.DECONV_KERNEL, stride: DECONV_STRIDE, pad: k.DECONV_KERNEL / 2 - 1 },
  };
}

/** The weight keys the head reads under \`config\`. */
export function ${p}WeightKeys(config: RcnnConfig, inChannels: number): string[] {
  const l = ${p}Layers(config, inChannels);
  return [...l.convs.flatMap(conv2dParameters), ...convTransposeParameters(l.deconv)].map((t) => t.key);
}

/** Heatmap logits [R, K, S, S] of \`rois\` (inference: the detections; training: the positive RoIs). */
function heatmapLogits(ctx: BuildContext, features: FeatureMaps, rois: Rois): Blob {
  const k = ctx.config.KRCNN;
  const pooled = roiPooler(ctx, features, { boxes: rois.boxes, batchIndex: rois.batchIndex }, k, { what: '${v.registryName}' });
  const layers = ${p}Layers(ctx.config, pooled.channels);
  const lowres = convTranspose(ctx, layers.convs.reduce((h, layer) => conv2d(ctx, h, layer), pooled.features), layers.deconv);
  // Bilinear, align_corners=False (PyTorch interpolate with a scale factor).
  return upsampleBilinear(ctx, lowres, k.UP_SCALE);
}

function build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly heatmaps: Blob } {
  const heatmaps = heatmapLogits(ctx, features, detections);
  ctx.tap('roi.keypoint_logits', heatmaps, 'float32', 'per-image-detections', [DIMS.detections, DIMS.keypoints, DIMS.heatmapSize, DIMS.heatmapSize]);
  return { heatmaps };
}

/** Graph inputs of the training part (fed by its host \`targets\`, or built by \`buildTargets\`). */
export const ${C}_TRAINING_INPUTS = {
  /** [V] int64: flat index r * K + k of every valid (positive RoI, keypoint) pair. */
  validRows: 'train.${v.propertyName}.valid_rows',
  /** [V] int64: heatmap cell y * S + x of each valid pair's GT keypoint. */
  targetIndex: 'train.${v.propertyName}.target_index',
} as const;

/** The keypoint loss (torchvision keypointrcnn_loss): cross-entropy of each valid pair's heatmap row against its cell, mean over valid pairs. */
function buildLosses(ctx: TrainingBuildContext, features: FeatureMaps, positives: TrainingRois): LossTerm[] {
  const g = ctx.graph;
  const size = ctx.config.KRCNN.HEATMAP_SIZE;
  const heatmaps = heatmapLogits(ctx, features, positives);
  return g.withScope('losses', () => {
    const rows = ctx.input(${C}_TRAINING_INPUTS.validRows, 'int64', ['V']);
    const cells = ctx.input(${C}_TRAINING_INPUTS.targetIndex, 'int64', ['V']);
    const logits = ops.gather(g, ops.reshape(g, heatmaps, [-1, size * size], 'rows'), rows, 0, 'valid_logits');
    return [{ name: 'keypoint', blob: losses.safeMean(g, losses.crossEntropySum(g, logits, cells), losses.elementCount(g, cells, 'valid'), 'keypoint') }];
  });
}

/** Host targets: each positive RoI's matched GT keypoints as heatmap cells (torchvision keypoints_to_heatmap, from @rcnn/keypoint-head). */
function targets(input: RoiTargetInput, config: RcnnConfig): HostTargets {
  return keypointHeatmapTargets(input, config, ${C}_TRAINING_INPUTS);
}

/** Training part (train mode, docs/training.md of rcnn-node): targets on the host or in the graph, the keypoint loss in the graph. */
/** The same targets built in the training graph (TRAIN.PROPOSALS_IN_GRAPH: one session run per step), from @rcnn/keypoint-head. */
function buildTargets(ctx: TrainingBuildContext, sample: RoiGraphSample): Readonly<Record<string, Blob>> {
  return buildKeypointHeatmapTargets(ctx, sample, ${C}_TRAINING_INPUTS);
}

export const ${p}Training: RoiHeadTraining = { targets, buildTargets, buildLosses };

/** The head as a {@link RoiKeypointHead}. */
export const ${p}: RoiKeypointHead = {
  build,
  weightPrefixes: ${C}_WEIGHT_PREFIXES,
  hostPostprocessor: ${C}_POSTPROCESSOR,
  training: ${p}Training,
};

/** Registry entry (slot roi-keypoint-head). */
export const ${C}_IMPLEMENTATION: Implementation<RoiKeypointHead> = {
  name: ${C}_NAME,
  provider: '${v.importPath}',
  description: 'RoIAlign (KRCNN.ROI_XFORM_*), ${C}.NUM_CONVS 3x3 convs, stride-2 deconv to KRCNN.NUM_KEYPOINTS heatmaps, bilinear x KRCNN.UP_SCALE',
  value: ${p},
};
`;
}

/** The roi-keypoint-head slot. */
export const ROI_KEYPOINT_HEAD_TEMPLATE: SlotTemplate = {
  slotConst: 'roiKeypointHead',
  contract: 'RoiKeypointHead',
  configKey: 'KRCNN.ROI_KEYPOINTS_HEAD',
  title: 'RoI keypoint head',
  summary: 'RoIAlign, 3x3 convs, a stride-2 deconv and bilinear upsampling to keypoint heatmaps on the detections',
  prefixes: ['roi_heads.keypoint_head.', 'roi_heads.keypoint_predictor.'],
  host: { packageName: '@rcnn/keypoint-head', dir: 'keypoint-head', postprocessor: 'heatmaps_to_keypoints' },
  fields: [
    { key: 'NUM_CONVS', source: "field.int(2, 'Number of 3x3 conv + ReLU layers before the deconv.', { min: 0, max: 16 })", shown: '2', meaning: 'number of 3x3 conv + ReLU layers' },
    { key: 'CONV_DIM', source: "field.int(256, 'Channels of the conv layers.', { min: 1 })", shown: '256', meaning: 'channels of the convs' },
  ],
  checks: () => `  const k = config.KRCNN;
  if (k.DECONV_KERNEL % 2 !== 0) {
    throw new ConfigError(\`KRCNN.DECONV_KERNEL is \${k.DECONV_KERNEL}; the stride-2 deconv with padding kernel / 2 - 1 doubles the size only for an even kernel\`, {
      key: 'KRCNN.DECONV_KERNEL',
    });
  }
  const size = 2 * k.ROI_XFORM_RESOLUTION * k.UP_SCALE;
  if (k.HEATMAP_SIZE !== size) {
    throw new ConfigError(\`KRCNN.HEATMAP_SIZE is \${k.HEATMAP_SIZE}, but the head makes 2 x ROI_XFORM_RESOLUTION x UP_SCALE = \${size}\`, {
      key: 'KRCNN.HEATMAP_SIZE',
      hint: \`set KRCNN.HEATMAP_SIZE=\${size}\`,
    });
  }`,
  coreKeys: ['KRCNN.ROI_KEYPOINTS_HEAD', 'KRCNN.ROI_XFORM_RESOLUTION', 'KRCNN.ROI_XFORM_SAMPLING_RATIO', 'KRCNN.ROI_XFORM_ALIGNED', 'KRCNN.NUM_KEYPOINTS', 'KRCNN.DECONV_KERNEL', 'KRCNN.UP_SCALE', 'KRCNN.HEATMAP_SIZE', 'FPN.ROI_CANONICAL_*'],
  implementation,
  training: true,
  testLayer: (v) => `{ MODEL: { KEYPOINTS_ON: true, NUM_CLASSES: 2 }, KRCNN: { ROI_KEYPOINTS_HEAD: ${v.constantName}_NAME }, FPN: { DIM: 16 }, ${v.constantName}: { CONV_DIM: 16 } }`,
  keysArgs: "defaultFeatures(config, 'roi')[0]!.channels",
  keysImports: ['defaultFeatures'],
  badValue: { layer: (v) => `{ ${v.constantName}: { NUM_CONVS: -1 } }`, key: (v) => `${v.constantName}.NUM_CONVS`, what: 'a negative layer count' },
  badCombination: { layer: () => '{ KRCNN: { HEATMAP_SIZE: 50 } }', key: () => 'KRCNN.HEATMAP_SIZE', what: 'a heatmap size the head does not make' },
};
