/**
 * The registered ResNet / ResNeXt bodies: one small resolver per registry name that turns the
 * config into a {@link ResNetArchitecture} (Detectron's `add_ResNet50_conv4_body` & co. are
 * likewise thin wrappers over one `add_ResNet_convX_body(model, block_counts)`).
 */
import { ConfigError, type ConvBody, type Implementation, RESNETS_SECTION, type RcnnConfig } from '@rcnn/core';
import { resnetConventions } from './conventions.js';
import { type ArchitectureResolver, type ResNetArchitecture, ResNetBody } from './resnet-body.js';

/** npm package name used as the registry provider. */
export const BACKBONE_PROVIDER = '@rcnn/backbone';

/** Blocks per stage (layer1..layer4) of the standard depths. */
export const RESNET_DEPTHS = {
  50: [3, 4, 6, 3],
  101: [3, 4, 23, 3],
  152: [3, 8, 36, 3],
} as const satisfies Record<number, readonly number[]>;

/** Planes of layer1..layer4 of every standard ResNet / ResNeXt (outputs 256, 512, 1024, 2048). */
export const RESNET_STAGE_PLANES = [64, 128, 256, 512] as const;

/** Depth of a body: C4 builds layer1..layer3, C5 layer1..layer4. */
export type BodyDepth = 'C4' | 'C5';

const stageCount = (depth: BodyDepth): number => (depth === 'C4' ? 3 : 4);

function common(config: RcnnConfig): Pick<ResNetArchitecture, 'stemChannels' | 'conventions' | 'res5Dilation'> {
  return { stemChannels: config.RESNETS.STEM_OUT_CHANNELS, conventions: resnetConventions(config), res5Dilation: config.RESNETS.RES5_DILATION };
}

/**
 * A standard-depth ResNet. Like Detectron, it honours `RESNETS.NUM_GROUPS` / `WIDTH_PER_GROUP`
 * (Detectron's X-101 configs are `ResNet101` bodies with those keys set).
 */
export function standardResNet(blocks: readonly number[], depth: BodyDepth): ArchitectureResolver {
  const n = stageCount(depth);
  return (config) => ({ ...common(config), planes: RESNET_STAGE_PLANES.slice(0, n), blocks: blocks.slice(0, n) });
}

/**
 * A ResNeXt with fixed cardinality and group width (`X-101-32x8d`). `RESNETS.NUM_GROUPS` /
 * `WIDTH_PER_GROUP` may stay at their defaults or repeat the fixed values; anything else is a
 * contradiction and fails.
 */
export function fixedResNeXt(name: string, blocks: readonly number[], groups: number, widthPerGroup: number, depth: BodyDepth): ArchitectureResolver {
  const n = stageCount(depth);
  return (config) => {
    const r = config.RESNETS;
    for (const [key, value, fixed] of [
      ['NUM_GROUPS', r.NUM_GROUPS, groups],
      ['WIDTH_PER_GROUP', r.WIDTH_PER_GROUP, widthPerGroup],
    ] as const) {
      if (value !== fixed && value !== RESNETS_SECTION.fields[key].default) {
        throw new ConfigError(`conv body ${name} has ${key === 'NUM_GROUPS' ? 'groups' : 'width per group'} fixed at ${fixed}, but RESNETS.${key} is ${value}`, {
          key: `RESNETS.${key}`,
          hint: `remove RESNETS.${key} or set it to ${fixed}, or use ResNet.add_ResNet_custom_${depth === 'C4' ? 'conv4' : 'conv5'}_body`,
        });
      }
    }
    const base = common(config);
    return { ...base, conventions: { ...base.conventions, groups, widthPerGroup }, planes: RESNET_STAGE_PLANES.slice(0, n), blocks: blocks.slice(0, n) };
  };
}

/** The configurable body: stages from `RESNETS.STAGE_PLANES` / `RESNETS.STAGE_BLOCKS` (first 3 for C4, 4 for C5). */
export function customResNet(name: string, depth: BodyDepth): ArchitectureResolver {
  const n = stageCount(depth);
  const pick = (config: RcnnConfig, key: 'STAGE_PLANES' | 'STAGE_BLOCKS'): number[] => {
    const list = config.RESNETS[key];
    if (list.length < n) {
      throw new ConfigError(`conv body ${name} needs ${n} entries in RESNETS.${key} (layer1..layer${n}), got ${list.length}: [${list.join(', ')}]`, {
        key: `RESNETS.${key}`,
      });
    }
    const used = list.slice(0, n);
    if (used.some((v) => !Number.isInteger(v) || v < 1)) {
      throw new ConfigError(`RESNETS.${key} must hold positive integers, got [${list.join(', ')}]`, { key: `RESNETS.${key}` });
    }
    return used;
  };
  return (config) => ({ ...common(config), planes: pick(config, 'STAGE_PLANES'), blocks: pick(config, 'STAGE_BLOCKS') });
}

function body(name: string, aliases: readonly string[], description: string, resolve: ArchitectureResolver): Implementation<ConvBody> {
  return { name, aliases, provider: BACKBONE_PROVIDER, description, value: new ResNetBody(resolve) };
}

function standard(depthBlocks: keyof typeof RESNET_DEPTHS, depth: BodyDepth): Implementation<ConvBody> {
  const conv = depth === 'C4' ? 'conv4' : 'conv5';
  return body(
    `ResNet.add_ResNet${depthBlocks}_${conv}_body`,
    [`R-${depthBlocks}-${depth}`],
    `ResNet-${depthBlocks} ${depth === 'C4' ? 'stem + layer1..layer3 (stride 16)' : 'stem + layer1..layer4 (strides 4..32)'}`,
    standardResNet(RESNET_DEPTHS[depthBlocks], depth),
  );
}

function resnext(groups: number, widthPerGroup: number, depth: BodyDepth): Implementation<ConvBody> {
  const conv = depth === 'C4' ? 'conv4' : 'conv5';
  const tag = `${groups}x${widthPerGroup}d`;
  const name = `ResNet.add_ResNeXt101_${tag}_${conv}_body`;
  return body(name, [`X-101-${tag}-${depth}`], `ResNeXt-101 ${tag} (grouped 3x3), ${depth}`, fixedResNeXt(name, RESNET_DEPTHS[101], groups, widthPerGroup, depth));
}

/** Registry name of the C4 ResNet body whose stages come from RESNETS.STAGE_PLANES / STAGE_BLOCKS (what a C4 parity case maps to). */
export const RESNET_CUSTOM_C4_BODY = 'ResNet.add_ResNet_custom_conv4_body';

function custom(depth: BodyDepth): Implementation<ConvBody> {
  const name = depth === 'C4' ? RESNET_CUSTOM_C4_BODY : 'ResNet.add_ResNet_custom_conv5_body';
  return body(name, [], `ResNet ${depth} with stages from RESNETS.STAGE_PLANES / STAGE_BLOCKS`, customResNet(name, depth));
}

/** Every ResNet body this package registers in the conv-body slot. */
export const RESNET_BODIES: readonly Implementation<ConvBody>[] = [
  standard(50, 'C4'),
  standard(50, 'C5'),
  standard(101, 'C4'),
  standard(101, 'C5'),
  standard(152, 'C4'),
  standard(152, 'C5'),
  resnext(32, 8, 'C4'),
  resnext(32, 8, 'C5'),
  resnext(64, 4, 'C4'),
  resnext(64, 4, 'C5'),
  custom('C4'),
  custom('C5'),
];
