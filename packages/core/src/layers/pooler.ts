/**
 * The RoI pooler of a head (Detectron2's `poolers.ROIPooler`): RoIAlign settings from the head's
 * config section, the FPN level mapping from `FPN.*`, and the check that every level has the width
 * the head's first layer expects.
 */
import type { Blob } from '../graph/builder.js';
import { ConfigError } from '../errors.js';
import type { RcnnConfig } from '../config/config.js';
import type { BuildContext, FeatureMaps, Rois } from '../model/contracts.js';
import { type RoiPoolerOptions, multiScaleRoiAlign } from '../detection/multi-scale-roi-align.js';

/**
 * The RoIAlign keys every RoI head section has (`FAST_RCNN`, `MRCNN`, `KRCNN`, or a plugin's own
 * section with the same names).
 */
export interface RoiPoolerSection {
  readonly ROI_XFORM_RESOLUTION: number;
  readonly ROI_XFORM_SAMPLING_RATIO: number;
  readonly ROI_XFORM_ALIGNED: boolean;
}

/** Pooler options for `section` plus the FPN level mapping (FPN.ROI_CANONICAL_SCALE / _LEVEL, FPN.ROI_LEVEL_EPS) every RoI head shares. */
export function roiPoolerOptions(config: RcnnConfig, section: RoiPoolerSection): RoiPoolerOptions {
  return {
    outputSize: section.ROI_XFORM_RESOLUTION,
    samplingRatio: section.ROI_XFORM_SAMPLING_RATIO,
    aligned: section.ROI_XFORM_ALIGNED,
    canonicalScale: config.FPN.ROI_CANONICAL_SCALE,
    canonicalLevel: config.FPN.ROI_CANONICAL_LEVEL,
    eps: config.FPN.ROI_LEVEL_EPS,
  };
}

/**
 * The channel count every map of `features` shares (a layer shared across levels has one input
 * width), or a ConfigError naming FPN.DIM; `what` names the head in the message, `emptyKey` the
 * config key to blame when there is no map at all.
 */
export function sharedChannels(features: FeatureMaps, what: string, emptyKey = 'FPN.ROI_MIN_LEVEL'): number {
  const first = features[0];
  if (first === undefined) throw new ConfigError(`the ${what} got no feature maps`, { key: emptyKey });
  if (features.some((f) => f.channels !== first.channels)) {
    throw new ConfigError(
      `the ${what} reads levels with different channel counts (${features.map((f) => `'${f.name}': ${f.channels}`).join(', ')}); every level must have the same width`,
      { key: 'FPN.DIM' },
    );
  }
  return first.channels;
}

/** Pooled RoI features. */
export interface PooledRois {
  /** [R, channels, resolution, resolution] float32, in the RoIs' order. */
  readonly features: Blob;
  readonly channels: number;
  readonly resolution: number;
}

/** Options of {@link roiPooler}. */
export interface RoiPoolerCallOptions {
  /** Names the head in errors (default 'RoI head'). */
  readonly what?: string;
}

/**
 * RoIAlign of `rois` over `features` with the settings of `section` (plain RoIAlign for one map,
 * torchvision MultiScaleRoIAlign level mapping for several), after checking the levels share one
 * width. Detections are RoIs too: pass `{ boxes, batchIndex }`.
 */
export function roiPooler(ctx: BuildContext, features: FeatureMaps, rois: Rois, section: RoiPoolerSection, options: RoiPoolerCallOptions = {}): PooledRois {
  const channels = sharedChannels(features, options.what ?? 'RoI head');
  const o = roiPoolerOptions(ctx.config, section);
  return { features: multiScaleRoiAlign(ctx.graph, features, rois, o), channels, resolution: o.outputSize };
}
