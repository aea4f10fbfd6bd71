/** Template of a feature pyramid (slot fpn): laterals, nearest top-down sums, output convs. */
import type { TemplateVars } from '../vars.js';
import { type SlotTemplate, ids } from './slot-template.js';

function implementation(v: TemplateVars): string {
  const { C, p } = ids(v);
  return `/**
 * ${v.registryName}: a feature pyramid for rcnn-node (slot fpn, \`FPN.IMPL\`): a 1x1 lateral conv to
 * FPN.DIM channels per bottom-up map, a top-down pathway of nearest-neighbour upsampling and sums,
 * and a ${C}.OUTPUT_KERNEL output conv per level. The outputs keep the bottom-up maps' names,
 * levels and scales, finest first.
 */
import { ConfigError, type BuildContext, type Conv2dSpec, type FeatureMaps, type FeaturePyramid, type Implementation, type RcnnConfig, conv2d, conv2dParameters, ops } from '@rcnn/core';
import { ${p}Settings } from './config.js';

/** Registry name (slot fpn). */
export const ${C}_NAME = '${v.registryName}';

/** State-dict prefixes of the pyramid's weights (torchvision's place for an FPN). */
export const ${C}_WEIGHT_PREFIXES = ['backbone.fpn.'] as const;

/** The layers of one level. */
export interface ${v.className}Level {
  readonly lateral: Conv2dSpec;
  readonly output: Conv2dSpec;
}

// torchvision initialises FPN convs with kaiming_uniform_(a=1): std 1/sqrt(fan_in), no ReLU gain.
const FPN_INIT = { kind: 'he', gain: 1 } as const;

/** The layers the pyramid is made of under \`config\` for bottom-up maps of \`inChannels\` channels. */
export function ${p}Layers(config: RcnnConfig, inChannels: readonly number[]): ${v.className}Level[] {
  const kernel = ${p}Settings(config).OUTPUT_KERNEL;
  const dim = config.FPN.DIM;
  return inChannels.map((channels, i) => ({
    lateral: { key: \`backbone.fpn.lateral.\${i}\`, name: \`lateral\${i}\`, inChannels: channels, outChannels: dim, kernel: 1, weightInit: FPN_INIT },
    output: { key: \`backbone.fpn.output.\${i}\`, name: \`output\${i}\`, inChannels: dim, outChannels: dim, kernel, weightInit: FPN_INIT },
  }));
}

/** The weight keys the pyramid reads under \`config\`. */
export function ${p}WeightKeys(config: RcnnConfig, inChannels: readonly number[]): string[] {
  return ${p}Layers(config, inChannels)
    .flatMap((l) => [...conv2dParameters(l.lateral), ...conv2dParameters(l.output)])
    .map((t) => t.key);
}

function build(ctx: BuildContext, bottomUp: FeatureMaps): FeatureMaps {
  const g = ctx.graph;
  if (bottomUp.length === 0) throw new ConfigError('${v.registryName} got no bottom-up feature maps', { key: 'FPN.IMPL' });
  bottomUp.forEach((f, i) => {
    if (i > 0 && f.level !== bottomUp[i - 1]!.level + 1) {
      throw new ConfigError(\`${v.registryName} needs one bottom-up map per level, each half the size of the previous; got levels \${bottomUp.map((m) => m.level).join(', ')}\`, {
        key: 'FPN.IMPL',
      });
    }
  });
  const levels = ${p}Layers(ctx.config, bottomUp.map((f) => f.channels));
  const laterals = bottomUp.map((f, i) => conv2d(ctx, f.blob, levels[i]!.lateral));
  const merged = [...laterals];
  for (let i = merged.length - 2; i >= 0; i--) {
    // Nearest-neighbour upsampling to the lateral's exact size (PyTorch 'nearest': floor of dst * in / out).
    const up = ops.resize(g, merged[i + 1]!, ops.shape(g, laterals[i]!, undefined, undefined, \`size\${i}\`), {
      mode: 'nearest',
      coordinateTransformationMode: 'asymmetric',
      nearestMode: 'floor',
      name: \`upsample\${i}\`,
    });
    merged[i] = ops.add(g, laterals[i]!, up, \`merge\${i}\`);
  }
  return bottomUp.map((f, i) => ({
    name: f.name,
    blob: conv2d(ctx, merged[i]!, levels[i]!.output),
    channels: ctx.config.FPN.DIM,
    spatialScale: f.spatialScale,
    level: f.level,
  }));
}

/** The pyramid as a {@link FeaturePyramid}, with the prefixes of its weights. */
export const ${p}: FeaturePyramid & { readonly weightPrefixes: readonly string[] } = {
  build,
  weightPrefixes: ${C}_WEIGHT_PREFIXES,
};

/** Registry entry (slot fpn). */
export const ${C}_IMPLEMENTATION: Implementation<FeaturePyramid> = {
  name: ${C}_NAME,
  provider: '${v.importPath}',
  description: '1x1 laterals to FPN.DIM, nearest top-down sums, ${C}.OUTPUT_KERNEL output convs',
  value: ${p},
};
`;
}

/** The fpn slot. */
export const FPN_TEMPLATE: SlotTemplate = {
  slotConst: 'fpn',
  contract: 'FeaturePyramid',
  configKey: 'FPN.IMPL',
  title: 'FPN',
  summary: '1x1 laterals, nearest top-down sums and output convs over the bottom-up maps',
  prefixes: ['backbone.fpn.'],
  fields: [
    {
      key: 'OUTPUT_KERNEL',
      source: "field.int(3, 'Kernel of the output conv of each level (odd, so the size is kept).', { min: 1, max: 7 })",
      shown: '3',
      meaning: 'kernel of the output conv of each level (odd)',
    },
  ],
  checks: (v) => `  if (s.OUTPUT_KERNEL % 2 !== 1) {
    throw new ConfigError(\`${v.constantName}.OUTPUT_KERNEL is \${s.OUTPUT_KERNEL}; the output convs keep the size of their level, which needs an odd kernel\`, {
      key: '${v.constantName}.OUTPUT_KERNEL',
    });
  }`,
  coreKeys: ['FPN.IMPL', 'FPN.DIM'],
  implementation,
  testLayer: (v) => `{ FPN: { IMPL: ${v.constantName}_NAME, DIM: 16 }, RESNETS: { STAGE_PLANES: [4, 8, 16, 32] } }`,
  keysArgs: 'defaultBottomUp(config).map((f) => f.channels)',
  keysImports: ['defaultBottomUp'],
  badValue: { layer: (v) => `{ ${v.constantName}: { OUTPUT_KERNEL: 0 } }`, key: (v) => `${v.constantName}.OUTPUT_KERNEL`, what: 'a kernel below 1' },
  badCombination: { layer: (v) => `{ ${v.constantName}: { OUTPUT_KERNEL: 2 } }`, key: (v) => `${v.constantName}.OUTPUT_KERNEL`, what: 'an even kernel' },
};
