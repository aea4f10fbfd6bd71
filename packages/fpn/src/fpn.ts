/**
 * torchvision's FeaturePyramidNetwork (slot fpn, `FPN.IMPL` = `FPN.add_fpn`): a 1x1 lateral conv
 * per backbone level, a top-down pathway of nearest-neighbour upsampling and sums, a 3x3 output
 * conv per level, then the extra levels. Weights `backbone.fpn.inner_blocks.{i}.0.*` and
 * `backbone.fpn.layer_blocks.{i}.0.*`, i counting the backbone levels used, finest first.
 */
import { type BuildContext, ConfigError, type FeatureMap, type FeatureMaps, type FeaturePyramid, type RcnnConfig, DIMS, conv2d, levelSizeDims, ops, sequentialKey } from '@rcnn/core';
import { convLevels, maxPoolLevel } from './extra-levels.js';
import { nearestUpsample2x, nearestUpsampleLike } from './upsample.js';

/** State-dict prefix of the FPN's own weights. */
export const FPN_PREFIX = 'backbone.fpn.';

/** The pyramid levels a model needs: the RPN's, and the RoI heads' unless the model is RPN-only (Detectron's get_min_max_levels). */
export function pyramidLevels(config: RcnnConfig): { readonly min: number; readonly max: number } {
  const f = config.FPN;
  if (config.MODEL.RPN_ONLY) return { min: f.RPN_MIN_LEVEL, max: f.RPN_MAX_LEVEL };
  return { min: Math.min(f.RPN_MIN_LEVEL, f.ROI_MIN_LEVEL), max: Math.max(f.RPN_MAX_LEVEL, f.ROI_MAX_LEVEL) };
}

/** torchvision initialises FPN convs with kaiming_uniform_(a=1): std 1/sqrt(fan_in), bias 0. */
const FPN_CONV_INIT = { kind: 'he', gain: 1 } as const;

/** Checks the bottom-up maps are consecutive pyramid levels (a dilated res5 is not). */
function checkBottomUp(bottomUp: FeatureMaps): void {
  if (bottomUp.length === 0) throw new ConfigError('the FPN got no bottom-up feature maps');
  bottomUp.forEach((f, i) => {
    if (!Number.isInteger(f.level) || (i > 0 && f.level !== bottomUp[i - 1]!.level + 1)) {
      throw new ConfigError(
        `the FPN needs one bottom-up map per level, each half the size of the previous; got levels ${bottomUp.map((m) => m.level).join(', ')}`,
        { key: 'RESNETS.RES5_DILATION', hint: 'a dilated res5 (RESNETS.RES5_DILATION > 1) cannot feed an FPN' },
      );
    }
  });
}

/**
 * The pyramid over the bottom-up maps of levels min(RPN, RoI min level)..top: outputs P_min..P_top
 * named '0', '1', … (torchvision's names of the returned layers), then P_top+1.. up to the max
 * level: 'pool' (LastLevelMaxPool) or 'p6', 'p7' (`FPN.EXTRA_CONV_LEVELS`). Every output has
 * `FPN.DIM` channels, level = pyramid level and spatialScale = 2^-level.
 */
export class FeaturePyramidNetwork implements FeaturePyramid {
  build(ctx: BuildContext, bottomUp: FeatureMaps): FeatureMaps {
    const g = ctx.graph;
    const dim = ctx.config.FPN.DIM;
    const { min, max } = pyramidLevels(ctx.config);
    checkBottomUp(bottomUp);
    const lowest = bottomUp[0]!.level;
    const top = bottomUp[bottomUp.length - 1]!;
    if (min < lowest || min > top.level) {
      throw new ConfigError(`the finest FPN level P${min} is not among the backbone's levels ${lowest}..${top.level}`, {
        key: min === ctx.config.FPN.RPN_MIN_LEVEL ? 'FPN.RPN_MIN_LEVEL' : 'FPN.ROI_MIN_LEVEL',
      });
    }
    const used = bottomUp.filter((f) => f.level >= min);
    // Padded to a multiple of the top level's stride, every level is exactly twice the next.
    const divisibility = ctx.config.INPUT.SIZE_DIVISIBILITY;
    const exact2x = divisibility > 0 && divisibility % 2 ** top.level === 0;
    const laterals = used.map((f, i) => conv2d(ctx, f.blob, { key: sequentialKey(`${FPN_PREFIX}inner_blocks`, i, 0), name: `inner${i}`, inChannels: f.channels, outChannels: dim, kernel: 1, weightInit: FPN_CONV_INIT }));
    const outputs: FeatureMap[] = new Array(used.length);
    let merged = laterals[used.length - 1]!;
    for (let i = used.length - 1; i >= 0; i--) {
      if (i < used.length - 1) {
        const topDown = exact2x ? nearestUpsample2x(g, merged, `upsample${i}`) : nearestUpsampleLike(g, merged, laterals[i]!, `upsample${i}`, [DIMS.images, dim, ...levelSizeDims(String(i))]);
        // Same shape by construction: the top-down map is upsampled to exactly the lateral's size.
        merged = ops.addSameShape(g, laterals[i]!, topDown, `merge${i}`);
      }
      const blob = conv2d(ctx, merged, { key: sequentialKey(`${FPN_PREFIX}layer_blocks`, i, 0), name: `layer${i}`, inChannels: dim, outChannels: dim, kernel: 3, weightInit: FPN_CONV_INIT });
      const level = used[i]!.level;
      outputs[i] = { name: String(i), blob, channels: dim, spatialScale: 2 ** -level, level };
    }
    if (max > top.level) {
      const extra = g.withScope('extra', () =>
        ctx.config.FPN.EXTRA_CONV_LEVELS ? convLevels(ctx, top, top.level + 1, max, dim) : [maxPoolLevel(ctx, outputs[outputs.length - 1]!, max)],
      );
      outputs.push(...extra);
    }
    return outputs;
  }
}
