/** Template of a RoI mask head (slot roi-mask-head): RoIAlign, convs, upsampling deconv, per-class logits. */
import type { TemplateVars } from '../vars.js';
import { type SlotTemplate, ids } from './slot-template.js';

function implementation(v: TemplateVars): string {
  const { C, p, K } = ids(v);
  return `/**
 * ${v.registryName}: a RoI mask head for rcnn-node (slot roi-mask-head, \`MRCNN.ROI_MASK_HEAD\`),
 * run on the final detections: RoIAlign (MRCNN.ROI_XFORM_*), ${C}.NUM_CONVS x (3x3 conv of
 * ${C}.CONV_DIM channels + ReLU), a ConvTranspose of kernel = stride = MRCNN.UPSAMPLE_RATIO + ReLU,
 * 1x1 logits per class (one class-agnostic mask without MRCNN.CLS_SPECIFIC_MASK), then the
 * channel of each detection's label and a sigmoid: [D, 1, MRCNN.RESOLUTION, MRCNN.RESOLUTION]
 * probabilities, which @rcnn/mask-head's \`paste_masks\` pastes into the image.
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
  type RoiMaskHead,
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
} from '@rcnn/core';
import { buildMaskTargets, projectMaskTargets } from '@rcnn/mask-head';
import { ${p}Settings } from './config.js';

/** Registry name (slot roi-mask-head). */
export const ${C}_NAME = '${v.registryName}';

/** State-dict prefixes of the head's weights (torchvision's places for a mask head and predictor). */
export const ${C}_WEIGHT_PREFIXES = ['roi_heads.mask_head.', 'roi_heads.mask_predictor.'] as const;

/** The host post-processor that pastes the masks (registered by @rcnn/mask-head). */
export const ${C}_POSTPROCESSOR = 'paste_masks';

/** The layers of the head. */
export interface ${K}Layers {
  readonly convs: readonly Conv2dSpec[];
  readonly upsample: ConvTransposeSpec;
  readonly logits: Conv2dSpec;
}

/** The layers the head is made of under \`config\`, for RoI features of \`inChannels\` channels. */
export function ${p}Layers(config: RcnnConfig, inChannels: number): ${K}Layers {
  const s = ${p}Settings(config);
  const m = config.MRCNN;
  const classes = m.CLS_SPECIFIC_MASK ? config.MODEL.NUM_CLASSES : 1;
  // torchvision's nn.Sequential layout: conv i is \`mask_head.<i>.0\`.
  const convs = Array.from({ length: s.NUM_CONVS }, (_, i): Conv2dSpec => ({
    key: sequentialKey('roi_heads.mask_head', i, 0),
    inChannels: i === 0 ? inChannels : s.CONV_DIM,
    outChannels: s.CONV_DIM,
    kernel: 3,
    activation: 'relu',
  }));
  const width = s.NUM_CONVS > 0 ? s.CONV_DIM : inChannels;
  return {
    convs,
    upsample: { key: 'roi_heads.mask_predictor.upsample', inChannels: width, outChannels: s.CONV_DIM, kernel: m.UPSAMPLE_RATIO, stride: m.UPSAMPLE_RATIO, activation: 'relu' },
    logits: { key: 'roi_heads.mask_predictor.logits', inChannels: s.CONV_DIM, outChannels: classes, kernel: 1, weightInit: { kind: 'normal', std: 0.001 } },
  };
}

/** The weight keys the head reads under \`config\`. */
export function ${p}WeightKeys(config: RcnnConfig, inChannels: number): string[] {
  const l = ${p}Layers(config, inChannels);
  return [...l.convs.flatMap(conv2dParameters), ...convTransposeParameters(l.upsample), ...conv2dParameters(l.logits)].map((t) => t.key);
}

/** Every class's mask logits [R, C, M, M] of \`rois\` (inference: the detections; training: the positive RoIs). */
function maskLogits(ctx: BuildContext, features: FeatureMaps, rois: Rois): Blob {
  const pooled = roiPooler(ctx, features, { boxes: rois.boxes, batchIndex: rois.batchIndex }, ctx.config.MRCNN, { what: '${v.registryName}' });
  const layers = ${p}Layers(ctx.config, pooled.channels);
  const x = layers.convs.reduce((h, layer) => conv2d(ctx, h, layer), pooled.features);
  return conv2d(ctx, convTranspose(ctx, x, layers.upsample), layers.logits);
}

function build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly maskProbs: Blob } {
  const g = ctx.graph;
  const logits = maskLogits(ctx, features, detections);
  const classes = ctx.config.MRCNN.CLS_SPECIFIC_MASK ? ctx.config.MODEL.NUM_CLASSES : 1;
  ctx.tap('roi.mask_logits', logits, 'float32', 'per-image-detections', [DIMS.detections, classes, DIMS.maskSize, DIMS.maskSize]);
  const maskProbs = g.withScope('mask_probs', () => {
    // The channel of each detection's label: GatherND with one batch axis gives [D, M, M].
    const selected = ctx.config.MRCNN.CLS_SPECIFIC_MASK
      ? ops.unsqueeze(g, ops.gatherND(g, logits, ops.unsqueeze(g, detections.labels, [1], 'label'), 1, 'select'), [1], 'selected')
      : logits;
    return ops.sigmoid(g, selected);
  });
  return { maskProbs };
}

/** Graph inputs of the training part (fed by its host \`targets\`, or built by \`buildTargets\`). */
export const ${C}_TRAINING_INPUTS = {
  /** [Rp] int64: flat index r * C + class of the logits channel each positive RoI's loss reads. */
  channelIndex: 'train.${v.propertyName}.channel_index',
  /** [Rp, M, M] float32: the matched GT mask RoIAligned into each positive RoI. */
  targets: 'train.${v.propertyName}.targets',
} as const;

/** The mask loss (torchvision maskrcnn_loss): BCE-with-logits of the GT class's channel, mean over RoIs x M x M. */
function buildLosses(ctx: TrainingBuildContext, features: FeatureMaps, positives: TrainingRois): LossTerm[] {
  const g = ctx.graph;
  const size = ctx.config.MRCNN.RESOLUTION;
  const logits = maskLogits(ctx, features, positives);
  return g.withScope('losses', () => {
    const index = ctx.input(${C}_TRAINING_INPUTS.channelIndex, 'int64', ['Rp']);
    const targets = ctx.input(${C}_TRAINING_INPUTS.targets, 'float32', ['Rp', size, size]);
    const selected = ops.gather(g, ops.reshape(g, logits, [-1, size, size], 'per_channel'), index, 0, 'selected');
    return [{ name: 'mask', blob: losses.safeMean(g, losses.bceWithLogitsSum(g, selected, targets), losses.elementCount(g, targets, 'elements'), 'mask') }];
  });
}

/** Host targets: each positive RoI's matched GT mask RoIAligned into it (torchvision project_masks_on_boxes, from @rcnn/mask-head), and its channel. */
function targets(input: RoiTargetInput, config: RcnnConfig): HostTargets {
  return projectMaskTargets(input, config, ${C}_TRAINING_INPUTS);
}

/** Training part (train mode, docs/training.md of rcnn-node): targets on the host or in the graph, the mask loss in the graph. */
/** The same targets built in the training graph (TRAIN.PROPOSALS_IN_GRAPH: one session run per step), from @rcnn/mask-head. */
function buildTargets(ctx: TrainingBuildContext, sample: RoiGraphSample): Readonly<Record<string, Blob>> {
  return buildMaskTargets(ctx, sample, ${C}_TRAINING_INPUTS);
}

export const ${p}Training: RoiHeadTraining = { targets, buildTargets, buildLosses };

/** The head as a {@link RoiMaskHead}. */
export const ${p}: RoiMaskHead = {
  build,
  weightPrefixes: ${C}_WEIGHT_PREFIXES,
  hostPostprocessor: ${C}_POSTPROCESSOR,
  training: ${p}Training,
};

/** Registry entry (slot roi-mask-head). */
export const ${C}_IMPLEMENTATION: Implementation<RoiMaskHead> = {
  name: ${C}_NAME,
  provider: '${v.importPath}',
  description: 'RoIAlign (MRCNN.ROI_XFORM_*), ${C}.NUM_CONVS 3x3 convs, deconv x MRCNN.UPSAMPLE_RATIO, per-class logits, sigmoid',
  value: ${p},
};
`;
}

/** The roi-mask-head slot. */
export const ROI_MASK_HEAD_TEMPLATE: SlotTemplate = {
  slotConst: 'roiMaskHead',
  contract: 'RoiMaskHead',
  configKey: 'MRCNN.ROI_MASK_HEAD',
  title: 'RoI mask head',
  summary: 'RoIAlign, 3x3 convs, upsampling deconv and per-class mask logits on the detections',
  prefixes: ['roi_heads.mask_head.', 'roi_heads.mask_predictor.'],
  host: { packageName: '@rcnn/mask-head', dir: 'mask-head', postprocessor: 'paste_masks' },
  fields: [
    { key: 'NUM_CONVS', source: "field.int(2, 'Number of 3x3 conv + ReLU layers before the upsampling.', { min: 0, max: 16 })", shown: '2', meaning: 'number of 3x3 conv + ReLU layers' },
    { key: 'CONV_DIM', source: "field.int(256, 'Channels of the conv layers and the upsampling deconv.', { min: 1 })", shown: '256', meaning: 'channels of the convs and the deconv' },
  ],
  checks: () => `  const m = config.MRCNN;
  if (m.RESOLUTION !== m.ROI_XFORM_RESOLUTION * m.UPSAMPLE_RATIO) {
    throw new ConfigError(\`MRCNN.RESOLUTION is \${m.RESOLUTION}, but the head makes ROI_XFORM_RESOLUTION x UPSAMPLE_RATIO = \${m.ROI_XFORM_RESOLUTION * m.UPSAMPLE_RATIO}\`, {
      key: 'MRCNN.RESOLUTION',
      hint: \`set MRCNN.RESOLUTION=\${m.ROI_XFORM_RESOLUTION * m.UPSAMPLE_RATIO}\`,
    });
  }`,
  coreKeys: ['MRCNN.ROI_MASK_HEAD', 'MRCNN.ROI_XFORM_RESOLUTION', 'MRCNN.ROI_XFORM_SAMPLING_RATIO', 'MRCNN.ROI_XFORM_ALIGNED', 'MRCNN.UPSAMPLE_RATIO', 'MRCNN.RESOLUTION', 'MRCNN.CLS_SPECIFIC_MASK', 'MODEL.NUM_CLASSES', 'FPN.ROI_CANONICAL_*'],
  implementation,
  training: true,
  testLayer: (v) => `{ MODEL: { MASK_ON: true, NUM_CLASSES: 5 }, MRCNN: { ROI_MASK_HEAD: ${v.constantName}_NAME }, FPN: { DIM: 16 }, ${v.constantName}: { CONV_DIM: 16 } }`,
  keysArgs: "defaultFeatures(config, 'roi')[0]!.channels",
  keysImports: ['defaultFeatures'],
  badValue: { layer: (v) => `{ ${v.constantName}: { NUM_CONVS: -1 } }`, key: (v) => `${v.constantName}.NUM_CONVS`, what: 'a negative layer count' },
  badCombination: { layer: () => '{ MRCNN: { RESOLUTION: 30 } }', key: () => 'MRCNN.RESOLUTION', what: 'a mask size the head does not make' },
};
