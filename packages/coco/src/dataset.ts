/**
 * COCO datasets for training: a COCO JSON and its image folder become per-image targets in the
 * shape the training graph takes (boxes x1y1x2y2, contiguous labels, mask bitmaps, keypoints).
 *
 * Loading never fails half-way through a run: every problem of an image or annotation is found
 * when the dataset is loaded and either skips that one item (recorded in `skipped` with a
 * reason, see {@link DatasetSkipReason}) or, with `strict`, fails at once listing all of them.
 * Crowd regions are not training targets (torchvision and Detectron drop them) and are skipped
 * with reason `crowd`.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type CocoRle, InputError, RcnnError, type UncompressedRle, decodeRle } from '@rcnn/core';
import { DATALOADER_SECTION } from './config.js';
import { CategoryMap } from './labels.js';
import { mergeRles, rleFromPolygon, segmentationToRle } from './mask.js';
import type { CocoAnnotationJson, CocoCategoryJson, CocoDatasetJson, CocoImageJson } from './types.js';

/**
 * Why an image or annotation is not used for training:
 * - `missing-image`: the image file does not exist under the image folder;
 * - `invalid-image`: the image entry has no positive integer width / height or no file name,
 *   or repeats an image id;
 * - `unknown-image`: the annotation's image_id is not an image of the dataset;
 * - `unknown-category`: the annotation's category_id is not in `categories`;
 * - `degenerate-box`: the box is not 4 finite numbers, or has no area once clipped to the image;
 * - `invalid-segmentation` (masks on): no segmentation, no polygon with at least 3 points, or an
 *   RLE of another size than the image;
 * - `invalid-keypoints` (keypoints on): a keypoint list that is not 3 x K numbers;
 * - `crowd`: an `iscrowd` region (ignored for training, as torchvision / Detectron);
 * - `no-annotations`: DATALOADER.FILTER_EMPTY_ANNOTATIONS and no annotation is left;
 * - `few-keypoints`: fewer visible keypoints than DATALOADER.MIN_KEYPOINTS_PER_IMAGE.
 */
export type DatasetSkipReason =
  | 'missing-image'
  | 'invalid-image'
  | 'unknown-image'
  | 'unknown-category'
  | 'degenerate-box'
  | 'invalid-segmentation'
  | 'invalid-keypoints'
  | 'crowd'
  | 'no-annotations'
  | 'few-keypoints';

/** Skips that are how COCO training works rather than problems of the data (`strict` allows them). */
export const EXPECTED_SKIPS: readonly DatasetSkipReason[] = ['crowd', 'no-annotations', 'few-keypoints'];

/** One image or annotation left out, and why. */
export interface DatasetSkip {
  readonly reason: DatasetSkipReason;
  readonly imageId?: number;
  readonly annotationId?: number;
  /** What is wrong, naming the file / id / value. */
  readonly message: string;
}

/** A dataset that cannot be used (strict mode, or nothing left to train on). */
export class DatasetError extends RcnnError {
  /** The annotation file. */
  readonly source: string;
  /** Every problem found. */
  readonly problems: readonly DatasetSkip[];
  constructor(message: string, source: string, problems: readonly DatasetSkip[], hint?: string) {
    super('E_DATASET', message, hint === undefined ? undefined : { hint });
    this.source = source;
    this.problems = problems;
  }
}

/** Options of {@link loadCocoDataset}. */
export interface CocoDatasetOptions {
  /** The COCO JSON file, or its parsed content. */
  readonly annotations: string | CocoDatasetJson;
  /** Folder the images' `file_name` entries are relative to. */
  readonly imagesDir: string;
  /** Decode segmentations to bitmaps (Mask R-CNN). Default false. */
  readonly masks?: boolean;
  /** Read keypoints (Keypoint R-CNN). Default false. */
  readonly keypoints?: boolean;
  /** DATALOADER.FILTER_EMPTY_ANNOTATIONS (default true). */
  readonly filterEmptyAnnotations?: boolean;
  /** DATALOADER.MIN_KEYPOINTS_PER_IMAGE, with keypoints (default 1). */
  readonly minKeypointsPerImage?: number;
  /** Check that every image file exists (default true). */
  readonly checkImages?: boolean;
  /** Fail with a DatasetError listing every problem instead of skipping (crowd and filtered images are still skipped). */
  readonly strict?: boolean;
  /** Use this label map instead of one built from `categories` (e.g. a checkpoint's, when fine-tuning further). */
  readonly categoryMap?: CategoryMap;
  /**
   * MODEL.LEGACY_PLUS_ONE: boxes in Detectron's +1 convention (`xywh_to_xyxy` + `clip_xyxy_to_image`):
   * x2 = x + max(0, w - 1), clipped to [0, W - 1]. Default false: torchvision's x2 = x + w, clipped
   * to [0, W].
   */
  readonly legacyPlusOne?: boolean;
}

/** One annotation kept for training. */
export interface DatasetAnnotation {
  readonly id: number;
  readonly label: number;
  /** x1, y1, x2, y2 in image pixels, clipped to the image. */
  readonly box: readonly [number, number, number, number];
  /**
   * The validated segmentation (masks on): polygons of at least 3 points, or an RLE of the image's
   * size. Rasterised only when the image's targets are built, so a COCO-sized dataset does not
   * hold every mask in memory.
   */
  readonly segmentation?: readonly (readonly number[])[] | UncompressedRle | CocoRle;
  /** [x, y, v] * K (keypoints on); absent keypoints are all 0 (not labelled). */
  readonly keypoints?: readonly number[];
}

/** One training image. */
export interface DatasetItem {
  readonly imageId: number;
  readonly fileName: string;
  /** imagesDir / file_name. */
  readonly path: string;
  readonly width: number;
  readonly height: number;
  readonly annotations: readonly DatasetAnnotation[];
}

/** The ground truth of one image in the training graph's shape. */
export interface TrainingTargets {
  /** [G * 4] x1, y1, x2, y2. */
  readonly boxes: Float32Array;
  /** [G] labels 1..K (0 is the background). */
  readonly labels: Int32Array;
  /** [G * H * W] 0/1, row-major, at the image's size (masks on). */
  readonly masks?: Uint8Array;
  /** [G * K * 3] x, y, v (keypoints on). */
  readonly keypoints?: Float32Array;
}

/** A loaded COCO training dataset. */
export class CocoTrainingDataset {
  /** Category id <-> contiguous label. */
  readonly categories: CategoryMap;
  /** The images used for training, in dataset order. */
  readonly items: readonly DatasetItem[];
  /** What was left out, and why. */
  readonly skipped: readonly DatasetSkip[];
  /** Keypoint names (keypoints on), from the keypoint category. */
  readonly keypointNames: readonly string[] | undefined;
  /** Whether targets carry masks / keypoints. */
  readonly withMasks: boolean;
  readonly withKeypoints: boolean;

  constructor(parts: {
    categories: CategoryMap;
    items: readonly DatasetItem[];
    skipped: readonly DatasetSkip[];
    keypointNames: readonly string[] | undefined;
    withMasks: boolean;
    withKeypoints: boolean;
  }) {
    this.categories = parts.categories;
    this.items = parts.items;
    this.skipped = parts.skipped;
    this.keypointNames = parts.keypointNames;
    this.withMasks = parts.withMasks;
    this.withKeypoints = parts.withKeypoints;
  }

  /** Number of training images. */
  get length(): number {
    return this.items.length;
  }

  /** Width / height of image `index` (for aspect-ratio grouping). */
  aspectRatio(index: number): number {
    const item = this.items[index]!;
    return item.width / item.height;
  }

  /** The targets of image `index`; masks are decoded here, one image at a time. */
  targets(index: number): TrainingTargets {
    const item = this.items[index];
    if (!item) throw new InputError(`dataset index ${index} is outside 0..${this.items.length - 1}`);
    const g = item.annotations.length;
    const boxes = new Float32Array(4 * g);
    const labels = new Int32Array(g);
    item.annotations.forEach((a, i) => {
      boxes.set(a.box, 4 * i);
      labels[i] = a.label;
    });
    const out: { -readonly [K in keyof TrainingTargets]: TrainingTargets[K] } = { boxes, labels };
    if (this.withMasks) {
      const hw = item.height * item.width;
      const masks = new Uint8Array(g * hw);
      item.annotations.forEach((a, i) => masks.set(decodeRle(annotationMask(a.segmentation!, item.height, item.width)), i * hw));
      out.masks = masks;
    }
    if (this.withKeypoints) {
      const k = this.keypointNames?.length ?? 0;
      const kp = new Float32Array(g * k * 3);
      item.annotations.forEach((a, i) => kp.set(a.keypoints!, i * k * 3));
      out.keypoints = kp;
    }
    return out;
  }

  /** Counts of what was kept and skipped, for a log line. */
  summary(): string {
    const counts = new Map<DatasetSkipReason, number>();
    for (const s of this.skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
    const annotations = this.items.reduce((n, i) => n + i.annotations.length, 0);
    const skips = [...counts].map(([r, n]) => `${n} ${r}`).join(', ');
    return `${this.items.length} images, ${annotations} annotations, ${this.categories.numClasses - 1} categories${skips ? `; skipped: ${skips}` : ''}`;
  }
}

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

async function readDataset(source: string | CocoDatasetJson): Promise<{ json: CocoDatasetJson; name: string }> {
  if (typeof source !== 'string') return { json: source, name: '<dataset>' };
  let text: string;
  try {
    text = await readFile(source, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read the dataset ${source}: ${(e as Error).message}`, { source, hint: 'check the path', cause: e });
  }
  try {
    return { json: JSON.parse(text) as CocoDatasetJson, name: source };
  } catch (e) {
    throw new InputError(`dataset ${source} is not valid JSON: ${(e as Error).message}`, { source, cause: e });
  }
}

/** The keypoint names of the dataset's keypoint categories (they must agree). */
function keypointNamesOf(categories: readonly CocoCategoryJson[], name: string): readonly string[] {
  const lists = categories.filter((c) => Array.isArray(c.keypoints) && c.keypoints.length > 0).map((c) => c.keypoints!);
  const [first] = lists;
  if (first === undefined) throw new DatasetError(`dataset ${name} has no category with "keypoints" names, which keypoint training needs`, name, []);
  for (const l of lists) {
    if (l.length !== first.length) throw new DatasetError(`dataset ${name}: keypoint categories have ${first.length} and ${l.length} keypoints; one model predicts one keypoint count`, name, []);
  }
  return first;
}

/**
 * Loads a COCO dataset for training: validates every image and annotation (see
 * {@link DatasetSkipReason}), maps category ids to labels 1..K (sorted ids), converts boxes to
 * x1y1x2y2 clipped to the image, checks segmentations (masks on; rasterised per image by
 * `targets`) and reads keypoints (keypoints on).
 */
export async function loadCocoDataset(options: CocoDatasetOptions): Promise<CocoTrainingDataset> {
  const { json, name } = await readDataset(options.annotations);
  if (!json || !Array.isArray(json.images) || !Array.isArray(json.annotations) || !Array.isArray(json.categories)) {
    throw new DatasetError(`dataset ${name} is not a COCO dataset: it needs "images", "annotations" and "categories" arrays`, name, []);
  }
  const defaults = DATALOADER_SECTION.fields;
  const withMasks = options.masks === true;
  const withKeypoints = options.keypoints === true;
  const filterEmpty = options.filterEmptyAnnotations ?? defaults.FILTER_EMPTY_ANNOTATIONS.default;
  const minKeypoints = options.minKeypointsPerImage ?? defaults.MIN_KEYPOINTS_PER_IMAGE.default;
  const categories = options.categoryMap ?? CategoryMap.fromCategories(json.categories);
  const keypointNames = withKeypoints ? keypointNamesOf(json.categories, name) : undefined;
  const k = keypointNames?.length ?? 0;
  const skipped: DatasetSkip[] = [];

  // Images.
  const images = new Map<number, CocoImageJson>();
  for (const [i, img] of json.images.entries()) {
    const id = img?.id;
    if (typeof id !== 'number' || images.has(id) || !isPositiveInt(img.width) || !isPositiveInt(img.height) || typeof img.file_name !== 'string' || img.file_name === '') {
      const what = typeof id !== 'number' ? 'has no numeric id' : images.has(id) ? `repeats image id ${id}` : 'needs positive integer width and height and a file_name';
      skipped.push({ reason: 'invalid-image', ...(typeof id === 'number' ? { imageId: id } : {}), message: `images[${i}] ${what}` });
      continue;
    }
    images.set(id, img);
  }
  if (options.checkImages !== false) {
    const checks = await Promise.all(
      [...images.values()].map(async (img) => {
        try {
          return (await stat(join(options.imagesDir, img.file_name))).isFile();
        } catch {
          return false;
        }
      }),
    );
    [...images.values()].forEach((img, i) => {
      if (checks[i]) return;
      images.delete(img.id);
      skipped.push({ reason: 'missing-image', imageId: img.id, message: `image ${img.id}: ${join(options.imagesDir, img.file_name)} does not exist` });
    });
  }

  // Annotations.
  const listedImages = new Set(json.images.map((m) => m?.id));
  const perImage = new Map<number, DatasetAnnotation[]>();
  const visible = new Map<number, number>();
  for (const [i, ann] of json.annotations.entries()) {
    const where = `annotations[${i}] (id ${ann?.id})`;
    const skip = (reason: DatasetSkipReason, message: string): void => {
      skipped.push({ reason, ...(typeof ann?.id === 'number' ? { annotationId: ann.id } : {}), ...(typeof ann?.image_id === 'number' ? { imageId: ann.image_id } : {}), message: `${where}: ${message}` });
    };
    const img = images.get(ann?.image_id);
    if (!img) {
      // An annotation of a skipped image is not a problem of its own.
      if (!listedImages.has(ann?.image_id)) skip('unknown-image', `image_id ${JSON.stringify(ann?.image_id)} is not an image of the dataset`);
      continue;
    }
    if (ann.iscrowd) {
      skip('crowd', 'a crowd region (not a training target)');
      continue;
    }
    const label = categories.labelOf(ann.category_id);
    if (label === undefined) {
      skip('unknown-category', `category_id ${JSON.stringify(ann.category_id)} is not in "categories"`);
      continue;
    }
    const box = clippedBox(ann, img, options.legacyPlusOne === true);
    if (typeof box === 'string') {
      skip('degenerate-box', box);
      continue;
    }
    let segmentation: DatasetAnnotation['segmentation'];
    if (withMasks) {
      const m = trainingMask(ann, img);
      if (typeof m === 'string') {
        skip('invalid-segmentation', m);
        continue;
      }
      segmentation = m;
    }
    let keypoints: readonly number[] | undefined;
    if (withKeypoints) {
      const kp = ann.keypoints ?? new Array<number>(3 * k).fill(0);
      if (!Array.isArray(kp) || kp.length !== 3 * k || kp.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
        skip('invalid-keypoints', `keypoints has ${Array.isArray(kp) ? `${kp.length} values` : 'no list'}, expected ${3 * k} finite numbers (${k} keypoints x [x, y, v])`);
        continue;
      }
      keypoints = kp;
      let n = 0;
      for (let p = 2; p < kp.length; p += 3) if (kp[p] > 0) n++;
      visible.set(img.id, (visible.get(img.id) ?? 0) + n);
    }
    const list = perImage.get(img.id) ?? [];
    list.push({ id: ann.id, label, box, ...(segmentation ? { segmentation } : {}), ...(keypoints ? { keypoints } : {}) });
    perImage.set(img.id, list);
  }

  if (options.strict) {
    const problems = skipped.filter((s) => !EXPECTED_SKIPS.includes(s.reason));
    if (problems.length > 0) {
      const list = problems.slice(0, 5).map((p) => p.message).join('; ');
      throw new DatasetError(`dataset ${name} has ${problems.length} problem${problems.length === 1 ? '' : 's'}: ${list}${problems.length > 5 ? '; …' : ''}`, name, problems, 'fix the dataset, or load it without strict to skip these items');
    }
  }

  const items: DatasetItem[] = [];
  for (const img of images.values()) {
    const annotations = perImage.get(img.id) ?? [];
    if (filterEmpty && annotations.length === 0) {
      skipped.push({ reason: 'no-annotations', imageId: img.id, message: `image ${img.id} (${img.file_name}) has no usable annotation (DATALOADER.FILTER_EMPTY_ANNOTATIONS)` });
      continue;
    }
    if (withKeypoints && filterEmpty && (visible.get(img.id) ?? 0) < minKeypoints) {
      skipped.push({ reason: 'few-keypoints', imageId: img.id, message: `image ${img.id} (${img.file_name}) has ${visible.get(img.id) ?? 0} visible keypoints, fewer than DATALOADER.MIN_KEYPOINTS_PER_IMAGE ${minKeypoints}` });
      continue;
    }
    items.push({ imageId: img.id, fileName: img.file_name, path: join(options.imagesDir, img.file_name), width: img.width, height: img.height, annotations });
  }
  if (items.length === 0) {
    throw new DatasetError(`dataset ${name} has no image to train on (${skipped.length} items skipped${skipped.length ? `, e.g. ${skipped[0]!.message}` : ''})`, name, skipped, 'check --images and the dataset');
  }
  return new CocoTrainingDataset({ categories, items, skipped, keypointNames, withMasks, withKeypoints });
}

/**
 * COCO [x, y, w, h] as x1y1x2y2 clipped to the image (torchvision's ConvertCocoPolysToMask), or why it
 * cannot be used. With `plusOne`, Detectron's: x2 = x + max(0, w - 1) (the last pixel index), clipped
 * to [0, W - 1].
 */
function clippedBox(ann: CocoAnnotationJson, img: CocoImageJson, plusOne: boolean): [number, number, number, number] | string {
  const b = ann.bbox;
  if (!Array.isArray(b) || b.length !== 4 || b.some((v) => typeof v !== 'number' || !Number.isFinite(v))) return `bbox ${JSON.stringify(b)} is not [x, y, width, height]`;
  const one = plusOne ? 1 : 0;
  const clip = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi - one);
  const x1 = clip(b[0], img.width);
  const y1 = clip(b[1], img.height);
  const x2 = clip(b[0] + Math.max(0, b[2] - one), img.width);
  const y2 = clip(b[1] + Math.max(0, b[3] - one), img.height);
  if (!(x2 > x1) || !(y2 > y1)) return `bbox ${JSON.stringify(b)} has no area inside the ${img.width} x ${img.height} image`;
  return [x1, y1, x2, y2];
}

/** The mask of a validated segmentation (polygons united, RLE expanded). */
function annotationMask(segmentation: NonNullable<DatasetAnnotation['segmentation']>, h: number, w: number): UncompressedRle {
  if (Array.isArray(segmentation)) return mergeRles((segmentation as readonly (readonly number[])[]).map((p) => rleFromPolygon(p, h, w)));
  return segmentationToRle(segmentation, h, w);
}

/**
 * The training segmentation of an annotation, checked: polygons with at least 3 points (Detectron2
 * drops shorter ones; an annotation left without any is skipped), or an RLE of the image's size
 * whose runs cover it exactly.
 */
function trainingMask(ann: CocoAnnotationJson, img: CocoImageJson): NonNullable<DatasetAnnotation['segmentation']> | string {
  const s = ann.segmentation;
  if (s === undefined || s === null) return 'has no segmentation, which mask training needs';
  if (Array.isArray(s)) {
    const polys = (s as unknown[]).filter((p): p is number[] => Array.isArray(p) && p.length >= 6 && p.length % 2 === 0 && p.every((v) => typeof v === 'number' && Number.isFinite(v)));
    if (polys.length === 0) return `segmentation has no polygon with at least 3 points (${s.length} polygon${s.length === 1 ? '' : 's'} given)`;
    return polys;
  }
  let rle: UncompressedRle;
  try {
    rle = segmentationToRle(s, img.height, img.width);
  } catch (e) {
    return `segmentation is not usable: ${(e as Error).message}`;
  }
  if (rle.size[0] !== img.height || rle.size[1] !== img.width) return `segmentation RLE is ${rle.size[0]} x ${rle.size[1]}, but the image is ${img.height} x ${img.width}`;
  return s as UncompressedRle | CocoRle;
}
