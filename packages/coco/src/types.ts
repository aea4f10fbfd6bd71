/**
 * The COCO JSON shapes this package reads: a ground-truth dataset (`instances_*.json`,
 * `person_keypoints_*.json`) and a results list (what `rcnn predict --out` writes in its
 * `annotations`, what Detectron2's COCOEvaluator writes as `coco_instances_results.json`).
 */
import type { CocoRle, UncompressedRle } from '@rcnn/core';

/** One image of a COCO dataset. */
export interface CocoImageJson {
  readonly id: number;
  readonly width: number;
  readonly height: number;
  readonly file_name: string;
}

/** One category; keypoint categories list their keypoint names and skeleton (1-based pairs). */
export interface CocoCategoryJson {
  readonly id: number;
  readonly name: string;
  readonly supercategory?: string;
  readonly keypoints?: readonly string[];
  readonly skeleton?: readonly (readonly number[])[];
}

/** A COCO `segmentation`: polygons or an RLE with list (uncompressed) or string (compressed) counts. */
export type CocoSegmentationJson = readonly (readonly number[])[] | UncompressedRle | CocoRle;

/** One ground-truth annotation. */
export interface CocoAnnotationJson {
  readonly id: number;
  readonly image_id: number;
  readonly category_id: number;
  /** [x, y, width, height]. */
  readonly bbox: readonly number[];
  /** The object's area (COCO: the segmentation's area); used for the small/medium/large ranges. */
  readonly area?: number;
  readonly iscrowd?: number | boolean;
  readonly segmentation?: CocoSegmentationJson;
  /** [x, y, v] * K, v = 0 not labelled, 1 labelled but not visible, 2 visible. */
  readonly keypoints?: readonly number[];
  readonly num_keypoints?: number;
}

/** A COCO dataset (ground truth). */
export interface CocoDatasetJson {
  readonly images: readonly CocoImageJson[];
  readonly annotations: readonly CocoAnnotationJson[];
  readonly categories: readonly CocoCategoryJson[];
  readonly info?: unknown;
  readonly licenses?: unknown;
}

/** One detection of a COCO results list. */
export interface CocoResultJson {
  readonly image_id: number;
  readonly category_id: number;
  readonly score: number;
  /** [x, y, width, height]. */
  readonly bbox?: readonly number[];
  readonly segmentation?: CocoSegmentationJson;
  /** [x, y, score] * K. */
  readonly keypoints?: readonly number[];
}

/** The three kinds of COCO evaluation. */
export type IouType = 'bbox' | 'segm' | 'keypoints';

/** Every {@link IouType}, in the order results are reported. */
export const IOU_TYPES: readonly IouType[] = ['bbox', 'segm', 'keypoints'];
