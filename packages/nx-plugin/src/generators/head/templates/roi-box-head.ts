/** Template of a RoI box head (slot roi-box-head): RoIAlign, then fc + ReLU layers. */
import type { TemplateVars } from '../vars.js';
import { type SlotTemplate, ids } from './slot-template.js';

function implementation(v: TemplateVars): string {
  const { C, p } = ids(v);
  return `/**
 * ${v.registryName}: a RoI box head for rcnn-node (slot roi-box-head, \`FAST_RCNN.ROI_BOX_HEAD\`).
 * RoIAlign of every RoI (FAST_RCNN.ROI_XFORM_*; over several levels with the FPN level mapping
 * FPN.ROI_CANONICAL_*), flatten, then one fully connected layer + ReLU per entry of
 * ${C}.FC_DIMS. The output is the last layer's activations, [R, last FC_DIMS entry].
 */
import { type BoxHeadOutput, type BuildContext, DIMS, type FeatureMaps, type Implementation, type LinearSpec, type RcnnConfig, type RoiBoxHead, type Rois, linear, linearParameters, ops, roiPooler, xavierFill } from '@rcnn/core';
import { ${p}Settings } from './config.js';

/** Registry name (slot roi-box-head). */
export const ${C}_NAME = '${v.registryName}';

/** State-dict prefixes of the head's weights (torchvision's place for a box head). */
export const ${C}_WEIGHT_PREFIXES = ['roi_heads.box_head.'] as const;

/** The fc layers the head is made of under \`config\`, for RoI features of \`inChannels\` channels. */
export function ${p}Layers(config: RcnnConfig, inChannels: number): LinearSpec[] {
  const resolution = config.FAST_RCNN.ROI_XFORM_RESOLUTION;
  let inFeatures = inChannels * resolution * resolution;
  return ${p}Settings(config).FC_DIMS.map((outFeatures, i) => {
    // Caffe2's XavierFill (Detectron's fc init) keeps activations at scale through the layers.
    const layer: LinearSpec = { key: \`roi_heads.box_head.fc\${i + 1}\`, inFeatures, outFeatures, weightInit: xavierFill(inFeatures), activation: 'relu' };
    inFeatures = outFeatures;
    return layer;
  });
}

/** The weight keys the head reads under \`config\`. */
export function ${p}WeightKeys(config: RcnnConfig, inChannels: number): string[] {
  return ${p}Layers(config, inChannels).flatMap((l) => linearParameters(l).map((t) => t.key));
}

function build(ctx: BuildContext, features: FeatureMaps, rois: Rois): BoxHeadOutput {
  const pooled = roiPooler(ctx, features, rois, ctx.config.FAST_RCNN, { what: '${v.registryName}' });
  // One row per RoI (proposal slots, padding included): a dump keeps each image's valid rows.
  ctx.tap('roi.box_features', pooled.features, 'float32', 'proposal-rows', [DIMS.rois, pooled.channels, pooled.resolution, pooled.resolution]);
  const layers = ${p}Layers(ctx.config, pooled.channels);
  const x = layers.reduce((h, layer) => linear(ctx, h, layer), ops.flatten(ctx.graph, pooled.features, 1, 'flatten'));
  return { features: x, dim: layers[layers.length - 1]!.outFeatures };
}

/** The head as a {@link RoiBoxHead}. */
export const ${p}: RoiBoxHead = {
  build,
  weightPrefixes: ${C}_WEIGHT_PREFIXES,
};

/** Registry entry (slot roi-box-head). */
export const ${C}_IMPLEMENTATION: Implementation<RoiBoxHead> = {
  name: ${C}_NAME,
  provider: '${v.importPath}',
  description: 'RoIAlign (FAST_RCNN.ROI_XFORM_*), then fc + ReLU layers of widths ${C}.FC_DIMS',
  value: ${p},
};
`;
}

/** The roi-box-head slot. */
export const ROI_BOX_HEAD_TEMPLATE: SlotTemplate = {
  slotConst: 'roiBoxHead',
  contract: 'RoiBoxHead',
  configKey: 'FAST_RCNN.ROI_BOX_HEAD',
  title: 'RoI box head',
  summary: 'RoIAlign, then fully connected + ReLU layers',
  prefixes: ['roi_heads.box_head.'],
  fields: [
    {
      key: 'FC_DIMS',
      source: "field.numbers([1024], 'Width of each fully connected layer (the last one is the representation the box outputs read).', { integer: true })",
      shown: '[1024]',
      meaning: 'width of each fc + ReLU layer (at least one)',
    },
  ],
  checks: (v) => `  if (s.FC_DIMS.length === 0 || s.FC_DIMS.some((d) => d < 1)) {
    throw new ConfigError(\`${v.constantName}.FC_DIMS must list at least one positive width, got [\${s.FC_DIMS.join(', ')}]\`, { key: '${v.constantName}.FC_DIMS' });
  }`,
  coreKeys: ['FAST_RCNN.ROI_BOX_HEAD', 'FAST_RCNN.ROI_XFORM_RESOLUTION', 'FAST_RCNN.ROI_XFORM_SAMPLING_RATIO', 'FAST_RCNN.ROI_XFORM_ALIGNED', 'FPN.ROI_CANONICAL_SCALE', 'FPN.ROI_CANONICAL_LEVEL', 'FPN.ROI_LEVEL_EPS'],
  implementation,
  testLayer: (v) => `{ FAST_RCNN: { ROI_BOX_HEAD: ${v.constantName}_NAME }, FPN: { DIM: 16 }, ${v.constantName}: { FC_DIMS: [64, 32] } }`,
  keysArgs: "defaultFeatures(config, 'roi')[0]!.channels",
  keysImports: ['defaultFeatures'],
  badValue: { layer: (v) => `{ ${v.constantName}: { FC_DIMS: [0.5] } }`, key: (v) => `${v.constantName}.FC_DIMS`, what: 'a fractional width' },
  badCombination: { layer: (v) => `{ ${v.constantName}: { FC_DIMS: [] } }`, key: (v) => `${v.constantName}.FC_DIMS`, what: 'no layer' },
};
