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
 */
import { type Blob, type BuildContext, ConfigError, DIMS, type Detections, type FeatureMaps, type Implementation, type RcnnConfig, type RoiKeypointHead, multiScaleRoiAlign, ops } from '@rcnn/core';
import { ${p}Settings } from './config.js';
import { type LayerWeights, convLayer, layerKeys, readLayer } from './weights.js';

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
  readonly convs: readonly LayerWeights[];
  readonly deconv: LayerWeights;
}

/** The layers the head reads under \`config\` for RoI features of \`inChannels\` channels. */
export function ${p}Weights(config: RcnnConfig, inChannels: number): ${K}Layers {
  const s = ${p}Settings(config);
  const k = config.KRCNN;
  const convs = Array.from({ length: s.NUM_CONVS }, (_, i) => convLayer(\`roi_heads.keypoint_head.conv\${i + 1}\`, s.CONV_DIM, i === 0 ? inChannels : s.CONV_DIM, 3));
  const width = s.NUM_CONVS > 0 ? s.CONV_DIM : inChannels;
  // ConvTranspose weights are [in, out, k, k] in both PyTorch and ONNX.
  return { convs, deconv: convLayer('roi_heads.keypoint_predictor.deconv', k.NUM_KEYPOINTS, width, k.DECONV_KERNEL, { kind: 'he' }, true) };
}

/** The weight keys the head reads under \`config\`. */
export function ${p}WeightKeys(config: RcnnConfig, inChannels: number): string[] {
  const l = ${p}Weights(config, inChannels);
  return layerKeys([...l.convs, l.deconv]);
}

function build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly heatmaps: Blob } {
  const g = ctx.graph;
  const { KRCNN: k, FPN: fpn } = ctx.config;
  const channels = features[0]?.channels;
  if (channels === undefined || features.some((f) => f.channels !== channels)) {
    throw new ConfigError(\`${v.registryName} pools from levels with different channel counts: \${features.map((f) => \`'\${f.name}': \${f.channels}\`).join(', ') || 'no levels'}\`, {
      key: 'FPN.DIM',
    });
  }
  const layers = ${p}Weights(ctx.config, channels);
  let x = multiScaleRoiAlign(g, features, { boxes: detections.boxes, batchIndex: detections.batchIndex }, {
    outputSize: k.ROI_XFORM_RESOLUTION,
    samplingRatio: k.ROI_XFORM_SAMPLING_RATIO,
    aligned: k.ROI_XFORM_ALIGNED,
    canonicalScale: fpn.ROI_CANONICAL_SCALE,
    canonicalLevel: fpn.ROI_CANONICAL_LEVEL,
    eps: fpn.ROI_LEVEL_EPS,
  });
  layers.convs.forEach((layer, i) => {
    x = g.withScope(\`conv\${i + 1}\`, () => {
      const { weight, bias } = readLayer(ctx, layer);
      return ops.relu(g, ops.conv(g, x, weight, bias, { kernel: 3, pad: 1 }));
    });
  });
  const lowres = g.withScope('deconv', () => {
    const { weight, bias } = readLayer(ctx, layers.deconv);
    return ops.convTranspose(g, x, weight, bias, { kernel: k.DECONV_KERNEL, stride: DECONV_STRIDE, pad: k.DECONV_KERNEL / 2 - 1 });
  });
  // Bilinear, align_corners=False (PyTorch interpolate with a scale factor).
  const heatmaps = ops.resize(g, lowres, null, {
    mode: 'linear',
    coordinateTransformationMode: 'pytorch_half_pixel',
    scales: g.constFloat32([1, 1, k.UP_SCALE, k.UP_SCALE]),
    name: 'upsample',
  });
  ctx.tap('roi.keypoint_logits', heatmaps, 'float32', 'per-image-detections', [DIMS.detections, DIMS.keypoints, DIMS.heatmapSize, DIMS.heatmapSize]);
  return { heatmaps };
}

/** The head as a {@link RoiKeypointHead}. */
export const ${p}: RoiKeypointHead = {
  build,
  weightPrefixes: ${C}_WEIGHT_PREFIXES,
  hostPostprocessor: ${C}_POSTPROCESSOR,
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
  testLayer: (v) => `{ MODEL: { KEYPOINTS_ON: true, NUM_CLASSES: 2 }, KRCNN: { ROI_KEYPOINTS_HEAD: ${v.constantName}_NAME }, FPN: { DIM: 16 }, ${v.constantName}: { CONV_DIM: 16 } }`,
  keysArgs: "defaultFeatures(config, 'roi')[0].channels",
  keysImports: ['defaultFeatures'],
  badValue: { layer: (v) => `{ ${v.constantName}: { NUM_CONVS: -1 } }`, key: (v) => `${v.constantName}.NUM_CONVS`, what: 'a negative layer count' },
  badCombination: { layer: () => '{ KRCNN: { HEATMAP_SIZE: 50 } }', key: () => 'KRCNN.HEATMAP_SIZE', what: 'a heatmap size the head does not make' },
};
