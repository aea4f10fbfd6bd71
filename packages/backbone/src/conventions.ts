/**
 * The conventions a ResNet bottleneck is built with (torchvision or Detectron), read from
 * `RESNETS.*` once so every builder in this package — and the C4 res5 RoI head written against
 * the public API — applies the same ones.
 */
import { ConfigError, type NormSpec, type RcnnConfig } from '@rcnn/core';

/** Frozen normalisation after each conv: torchvision FrozenBatchNorm2d or Detectron AffineChannel. */
export type FrozenNormKind = 'FrozenBN' | 'AffineChannel';

/** How bottleneck blocks are built; the defaults of `RESNETS.*` are torchvision's. */
export interface ResNetConventions {
  /** Groups of the 3x3 conv (ResNeXt cardinality; 1 = ResNet). `RESNETS.NUM_GROUPS`. */
  readonly groups: number;
  /** Channels per group of the first stage (ResNeXt "d"; 64 = ResNet). `RESNETS.WIDTH_PER_GROUP`. */
  readonly widthPerGroup: number;
  /** Stride in the first 1x1 conv (Detectron) instead of the 3x3 (torchvision). `RESNETS.STRIDE_1X1`. */
  readonly stride1x1: boolean;
  /** Normalisation folded into each conv. `RESNETS.NORM`. */
  readonly norm: FrozenNormKind;
  /** FrozenBatchNorm2d eps (ignored by AffineChannel). `RESNETS.FROZEN_BN_EPS`. */
  readonly eps: number;
}

/** The conventions `config.RESNETS` describes. */
export function resnetConventions(config: RcnnConfig): ResNetConventions {
  const r = config.RESNETS;
  return { groups: r.NUM_GROUPS, widthPerGroup: r.WIDTH_PER_GROUP, stride1x1: r.STRIDE_1X1, norm: r.NORM, eps: r.FROZEN_BN_EPS };
}

/**
 * Inner (3x3) width of a bottleneck with `planes` output planes / 4: torchvision's
 * `int(planes * (width_per_group / 64)) * groups`, which is also Detectron's ResNeXt `dim_inner`.
 */
export function bottleneckWidth(planes: number, conventions: Pick<ResNetConventions, 'groups' | 'widthPerGroup'>): number {
  const width = Math.floor((planes * conventions.widthPerGroup) / 64) * conventions.groups;
  if (width < conventions.groups) {
    throw new ConfigError(
      `bottleneck with ${planes} planes, ${conventions.groups} groups and ${conventions.widthPerGroup} channels per group has no channel per group`,
      { key: 'RESNETS.WIDTH_PER_GROUP' },
    );
  }
  return width;
}

/** Output channels of a bottleneck stage with `planes` planes (torchvision `Bottleneck.expansion` = 4). */
export const BOTTLENECK_EXPANSION = 4;

/** The norm after a conv of a ResNet block, as core's {@link NormSpec} (`key`: `backbone.body.layer1.0.bn1`). */
export function resnetNorm(conventions: Pick<ResNetConventions, 'norm' | 'eps'>, key: string): NormSpec {
  return { kind: conventions.norm === 'FrozenBN' ? 'FrozenBatchNorm2d' : 'AffineChannel', key, eps: conventions.eps };
}
