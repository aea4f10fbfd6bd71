/**
 * The box head's RoI feature extraction: core's `multiScaleRoiAlign` with the pooler settings read
 * from config in one place, so another box head (or a plugin) pools exactly like the 2-MLP head.
 */
import { type Blob, type BuildContext, ConfigError, type FeatureMaps, type RcnnConfig, type RoiPoolerOptions, type Rois, multiScaleRoiAlign, multiScaleRoiAlignGrouped } from '@rcnn/core';

/** The RoIAlign settings of one head (resolution, sampling ratio, aligned) as read from its config section. */
export interface RoiTransformSettings {
  readonly resolution: number;
  readonly samplingRatio: number;
  readonly aligned: boolean;
}

/**
 * Full pooler options for `settings`, with the FPN level mapping (FPN.ROI_CANONICAL_SCALE,
 * FPN.ROI_CANONICAL_LEVEL, FPN.ROI_LEVEL_EPS) that every RoI head shares.
 */
export function roiPoolerOptions(config: RcnnConfig, settings: RoiTransformSettings): RoiPoolerOptions {
  return {
    outputSize: settings.resolution,
    samplingRatio: settings.samplingRatio,
    aligned: settings.aligned,
    canonicalScale: config.FPN.ROI_CANONICAL_SCALE,
    canonicalLevel: config.FPN.ROI_CANONICAL_LEVEL,
    eps: config.FPN.ROI_LEVEL_EPS,
  };
}

/** The box head's pooler options: FAST_RCNN.ROI_XFORM_RESOLUTION / _SAMPLING_RATIO / _ALIGNED plus the FPN level mapping. */
export function boxRoiPoolerOptions(config: RcnnConfig): RoiPoolerOptions {
  const f = config.FAST_RCNN;
  return roiPoolerOptions(config, { resolution: f.ROI_XFORM_RESOLUTION, samplingRatio: f.ROI_XFORM_SAMPLING_RATIO, aligned: f.ROI_XFORM_ALIGNED });
}

/** Pooled RoI features and their bookkeeping. */
export interface PooledRois {
  /** [R, channels, resolution, resolution] float32, in the RoIs' order. */
  readonly features: Blob;
  readonly channels: number;
  readonly resolution: number;
}

/**
 * RoIAlign of `rois` over `features` (plain RoIAlign for one map, torchvision MultiScaleRoIAlign
 * level mapping for several). The levels must share one channel count, as the head's first layer
 * has a single input width. `what` names the head in errors.
 */
export function poolRois(ctx: BuildContext, features: FeatureMaps, rois: Rois, options: RoiPoolerOptions, what = 'RoI box head'): PooledRois {
  const { channels } = checkLevels(features, what);
  const blob = multiScaleRoiAlign(ctx.graph, features, rois, options);
  return { features: blob, channels, resolution: options.outputSize };
}

/** The levels' common channel count, or a ConfigError naming FPN.DIM (`what` names the head). */
function checkLevels(features: FeatureMaps, what: string): { channels: number } {
  if (features.length === 0) throw new ConfigError(`the ${what} got no feature maps to pool from`);
  const channels = features[0].channels;
  const odd = features.find((f) => f.channels !== channels);
  if (odd) {
    throw new ConfigError(
      `the ${what} pools from levels with different channel counts (${features.map((f) => `'${f.name}': ${f.channels}`).join(', ')}); every RoI level must have the same width`,
      { key: 'FPN.DIM' },
    );
  }
  return { channels };
}

/** {@link poolRois} with the box head's settings ({@link boxRoiPoolerOptions}). */
export function poolBoxRois(ctx: BuildContext, features: FeatureMaps, rois: Rois): PooledRois {
  return poolRois(ctx, features, rois, boxRoiPoolerOptions(ctx.config));
}

/** Pooled RoI features in level-grouped row order (core's `multiScaleRoiAlignGrouped`). */
export interface GroupedPooledRois extends PooledRois {
  /** Reorders any [R, …] tensor whose rows follow `features` into the RoIs' order. */
  restore(rows: Blob, name?: string): Blob;
}

/**
 * The box head's pooling without the final reordering of the pooled features: a head that works
 * row by row restores its (smaller) output instead. Same checks as {@link poolRois}.
 */
export function poolBoxRoisGrouped(ctx: BuildContext, features: FeatureMaps, rois: Rois): GroupedPooledRois {
  const options = boxRoiPoolerOptions(ctx.config);
  const { channels } = checkLevels(features, 'RoI box head');
  const grouped = multiScaleRoiAlignGrouped(ctx.graph, features, rois, options);
  return { features: grouped.pooled, channels, resolution: options.outputSize, restore: grouped.restore };
}
