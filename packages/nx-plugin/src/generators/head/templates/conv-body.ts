/** Template of a conv body (slot conv-body): stride-2 3x3 conv + ReLU stages, one feature map. */
import type { TemplateVars } from '../vars.js';
import { type SlotTemplate, ids } from './slot-template.js';

function implementation(v: TemplateVars): string {
  const { C, p } = ids(v);
  return `/**
 * ${v.registryName}: a conv body for rcnn-node (slot conv-body, \`MODEL.CONV_BODY\`). One stride-2
 * 3x3 conv + ReLU per entry of ${C}.STAGE_CHANNELS, returning the last stage as the single
 * feature map '0' (level = number of stages, spatialScale = 2^-level), like a C4 body. It reads
 * only \`images\`, so it also builds into the features-only net.
 */
import { type Blob, type BuildContext, type Conv2dSpec, type ConvBody, type FeatureMaps, type Implementation, type RcnnConfig, conv2d, conv2dParameters } from '@rcnn/core';
import { ${p}Settings } from './config.js';

/** Registry name (slot conv-body). */
export const ${C}_NAME = '${v.registryName}';

/** State-dict prefixes of the body's weights (torchvision's place for a backbone body). */
export const ${C}_WEIGHT_PREFIXES = ['backbone.body.'] as const;

/** The layers the body is made of under \`config\`, for images of \`inChannels\` channels (3). */
export function ${p}Layers(config: RcnnConfig, inChannels = 3): Conv2dSpec[] {
  let channels = inChannels;
  return ${p}Settings(config).STAGE_CHANNELS.map((out, i) => {
    const layer: Conv2dSpec = { key: \`backbone.body.stage\${i + 1}\`, inChannels: channels, outChannels: out, kernel: 3, stride: 2, activation: 'relu' };
    channels = out;
    return layer;
  });
}

/** The weight keys the body reads under \`config\`. */
export function ${p}WeightKeys(config: RcnnConfig, inChannels = 3): string[] {
  return ${p}Layers(config, inChannels).flatMap(conv2dParameters).map((t) => t.key);
}

function build(ctx: BuildContext, images: Blob): FeatureMaps {
  const layers = ${p}Layers(ctx.config);
  const x = layers.reduce((h, layer) => conv2d(ctx, h, layer), images);
  const level = layers.length;
  return [{ name: '0', blob: x, channels: layers[level - 1]!.outChannels, spatialScale: 2 ** -level, level }];
}

/** The body as a {@link ConvBody}. */
export const ${p}: ConvBody = {
  build,
  isFpn: false,
  weightPrefixes: ${C}_WEIGHT_PREFIXES,
};

/** Registry entry (slot conv-body). */
export const ${C}_IMPLEMENTATION: Implementation<ConvBody> = {
  name: ${C}_NAME,
  provider: '${v.importPath}',
  description: 'stride-2 3x3 conv + ReLU stages (${C}.STAGE_CHANNELS), one feature map',
  value: ${p},
};
`;
}

/** The conv-body slot. */
export const CONV_BODY_TEMPLATE: SlotTemplate = {
  slotConst: 'convBody',
  contract: 'ConvBody',
  configKey: 'MODEL.CONV_BODY',
  title: 'conv body',
  summary: 'stride-2 3x3 conv + ReLU stages, one feature map at stride 2^stages',
  prefixes: ['backbone.body.'],
  fields: [
    {
      key: 'STAGE_CHANNELS',
      source: "field.numbers([32, 64, 128, 256], 'Output channels of each stride-2 conv stage (1 to 6 stages).', { integer: true })",
      shown: '[32, 64, 128, 256]',
      meaning: 'output channels of each stride-2 stage (1 to 6 stages)',
    },
  ],
  checks: (v) => `  if (s.STAGE_CHANNELS.length < 1 || s.STAGE_CHANNELS.length > 6 || s.STAGE_CHANNELS.some((c) => c < 1)) {
    throw new ConfigError(\`${v.constantName}.STAGE_CHANNELS must list 1 to 6 positive channel counts, got [\${s.STAGE_CHANNELS.join(', ')}]\`, {
      key: '${v.constantName}.STAGE_CHANNELS',
    });
  }`,
  coreKeys: ['MODEL.CONV_BODY'],
  implementation,
  testLayer: (v) => `{ MODEL: { CONV_BODY: ${v.constantName}_NAME }, FPN: { FPN_ON: false }, ${v.constantName}: { STAGE_CHANNELS: [8, 16, 16, 32] } }`,
  keysArgs: '3',
  keysImports: [],
  badValue: { layer: (v) => `{ ${v.constantName}: { STAGE_CHANNELS: [8, 1.5] } }`, key: (v) => `${v.constantName}.STAGE_CHANNELS`, what: 'a non-integer channel count' },
  badCombination: { layer: (v) => `{ ${v.constantName}: { STAGE_CHANNELS: [] } }`, key: (v) => `${v.constantName}.STAGE_CHANNELS`, what: 'no stage' },
};
