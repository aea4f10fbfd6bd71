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
  type Detections,
  type FeatureMaps,
  type Implementation,
  type RcnnConfig,
  type RoiMaskHead,
  conv2d,
  conv2dParameters,
  convTranspose,
  convTransposeParameters,
  ops,
  roiPooler,
  sequentialKey,
} from '@rcnn/core';
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

function build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly maskProbs: Blob } {
  const g = ctx.graph;
  const pooled = roiPooler(ctx, features, { boxes: detections.boxes, batchIndex: detections.batchIndex }, ctx.config.MRCNN, { what: '${v.registryName}' });
  const layers = ${p}Layers(ctx.config, pooled.channels);
  const x = layers.convs.reduce((h, layer) => conv2d(ctx, h, layer), pooled.features);
  const logits = conv2d(ctx, convTranspose(ctx, x, layers.upsample), layers.logits);
  ctx.tap('roi.mask_logits', logits, 'float32', 'per-image-detections');
  const maskProbs = g.withScope('mask_probs', () => {
    // The channel of each detection's label: GatherND with one batch axis gives [D, M, M].
    const selected = ctx.config.MRCNN.CLS_SPECIFIC_MASK
      ? ops.unsqueeze(g, ops.gatherND(g, logits, ops.unsqueeze(g, detections.labels, [1], 'label'), 1, 'select'), [1], 'selected')
      : logits;
    return ops.sigmoid(g, selected);
  });
  return { maskProbs };
}

/** The head as a {@link RoiMaskHead}. */
export const ${p}: RoiMaskHead = {
  build,
  weightPrefixes: ${C}_WEIGHT_PREFIXES,
  hostPostprocessor: ${C}_POSTPROCESSOR,
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
  testLayer: (v) => `{ MODEL: { MASK_ON: true, NUM_CLASSES: 5 }, MRCNN: { ROI_MASK_HEAD: ${v.constantName}_NAME }, FPN: { DIM: 16 }, ${v.constantName}: { CONV_DIM: 16 } }`,
  keysArgs: "defaultFeatures(config, 'roi')[0].channels",
  keysImports: ['defaultFeatures'],
  badValue: { layer: (v) => `{ ${v.constantName}: { NUM_CONVS: -1 } }`, key: (v) => `${v.constantName}.NUM_CONVS`, what: 'a negative layer count' },
  badCombination: { layer: () => '{ MRCNN: { RESOLUTION: 30 } }', key: () => 'MRCNN.RESOLUTION', what: 'a mask size the head does not make' },
};
