/**
 * Typed results of host post-processors. A post-processor adds its per-detection results to
 * `ImageDetections.extras` under a typed key ({@link ExtraKey}); readers (the runtime's COCO JSON,
 * dumps and drawings, applications) get them back with the same key and its type, so neither
 * side depends on the other's package nor guesses layouts.
 *
 * The two results heads produce are defined here, in core, next to their keys: a mask
 * post-processor stores a {@link MaskSet} under {@link EXTRA_KEYS}.masks, a keypoint
 * post-processor a {@link KeypointSet} under {@link EXTRA_KEYS}.keypoints. A plugin with a new
 * kind of result declares its own key with {@link extraKey}.
 */
import { InputError } from '../errors.js';
import type { CocoRle } from '../formats/rle.js';
import type { HostTensor } from '../graph/dtypes.js';
import type { ImageDetections } from './contracts.js';

// Exists only in types: it ties a key to the type of its value.
declare const EXTRA_VALUE: unique symbol;

/**
 * A key of `ImageDetections.extras` whose value has type `T`: a string at run time (so the map stays
 * an ordinary `Map<string, unknown>`), branded in types so {@link getExtra} / {@link setExtra} know `T`.
 */
export type ExtraKey<T> = string & { readonly [EXTRA_VALUE]: T };

/** Declares the extra key `name` holding values of type `T`. Names are global: prefix a plugin's own with its package. */
export function extraKey<T>(name: string): ExtraKey<T> {
  return name as ExtraKey<T>;
}

/** The value stored under `key` on `det`, or undefined when no post-processor set it. */
export function getExtra<T>(det: Pick<ImageDetections, 'extras'>, key: ExtraKey<T>): T | undefined {
  // The only writer of a typed key is setExtra, which checked the value's type at compile time.
  return det.extras.get(key) as T | undefined;
}

/** Stores `value` under `key` on `det` (replacing an earlier value). */
export function setExtra<T>(det: Pick<ImageDetections, 'extras'>, key: ExtraKey<T>, value: T): void {
  det.extras.set(key, value);
}

/** One detection's pasted mask probabilities over the part of the image its (expanded) box covers. */
export interface MaskCrop {
  /** Left/top image pixel of the crop. */
  readonly x: number;
  readonly y: number;
  /** Crop size in pixels (0 when the box misses the image). */
  readonly width: number;
  readonly height: number;
  /** Probabilities, row-major `height` x `width`, for image pixels (x .. x+width-1, y .. y+height-1). */
  readonly probs: Float32Array;
}

/**
 * The instance masks of one image's D detections, in original-image pixels (H x W), in detection
 * order. Binary masks are the probabilities strictly above {@link MaskSet.threshold}
 * (MRCNN.THRESH_BINARIZE); outside its crop a detection's mask is 0. Full-image data is derived
 * on request, as a full-image mask per detection is large (D x H x W).
 */
export interface MaskSet {
  /** Number of detections (D). */
  readonly count: number;
  /** Original image height (H) and width (W). */
  readonly height: number;
  readonly width: number;
  /** A probability strictly above this is foreground. */
  readonly threshold: number;
  /** The head's M x M probabilities before pasting, [D,1,M,M] float32 (the fixtures' `det.mask_probs.<i>`). */
  maskProbsTensor(): HostTensor<'float32'>;
  /** All binary masks, [D,1,H,W] uint8 0/1 (the fixtures' `det.masks.<i>`). */
  binaryTensor(): HostTensor<'uint8'>;
  /** Full-image binary mask of detection `i`, row-major H x W, 0/1. */
  binary(i: number): Uint8Array;
  /** Box-local pasted probabilities of detection `i`. */
  crop(i: number): MaskCrop;
  /** COCO RLE of detection `i` (pycocotools' compressed form, a COCO result's `segmentation`). */
  rle(i: number): CocoRle;
  /** Foreground pixels of detection `i`. */
  area(i: number): number;
}

/** The keypoints of one image's D detections, K per detection, in detection order. */
export interface KeypointSet {
  /** Number of detections (D). */
  readonly count: number;
  /** Keypoints per detection (K). */
  readonly numKeypoints: number;
  /** [D*K*3] (x, y, visibility) in original-image pixels (the fixtures' `det.keypoints.<i>`). */
  readonly keypoints: Float32Array;
  /** [D*K*3] (x, y, visibility) in resized-image pixels (`det.keypoints_resized.<i>`). */
  readonly keypointsResized: Float32Array;
  /** [D*K] score of each keypoint (torchvision: the resized heatmap's logit there; `det.keypoints_scores.<i>`). */
  readonly scores: Float32Array;
}

/**
 * A {@link KeypointSet} of `count` detections with `numKeypoints` each, after checking that the
 * arrays have D*K*3, D*K*3 and D*K values (an `InputError` naming the array otherwise).
 */
export function keypointSet(
  count: number,
  numKeypoints: number,
  arrays: { readonly keypoints: Float32Array; readonly keypointsResized: Float32Array; readonly scores: Float32Array },
): KeypointSet {
  if (!Number.isInteger(count) || count < 0 || !Number.isInteger(numKeypoints) || numKeypoints < 0) {
    throw new InputError(`keypointSet: ${count} detections x ${numKeypoints} keypoints is not a pair of non-negative integers`);
  }
  const expect = (name: string, a: Float32Array, per: number): void => {
    if (a.length !== count * numKeypoints * per) {
      throw new InputError(`keypointSet: ${name} has ${a.length} values, expected ${count} x ${numKeypoints} x ${per} = ${count * numKeypoints * per}`);
    }
  };
  expect('keypoints', arrays.keypoints, 3);
  expect('keypointsResized', arrays.keypointsResized, 3);
  expect('scores', arrays.scores, 1);
  return { count, numKeypoints, keypoints: arrays.keypoints, keypointsResized: arrays.keypointsResized, scores: arrays.scores };
}

/** The extra keys of the results rcnn-node's heads produce. */
export const EXTRA_KEYS = {
  /** Instance masks, set by mask post-processors (`paste_masks`). */
  masks: extraKey<MaskSet>('masks'),
  /** Keypoints, set by keypoint post-processors (`heatmaps_to_keypoints`). */
  keypoints: extraKey<KeypointSet>('keypoints'),
} as const;
