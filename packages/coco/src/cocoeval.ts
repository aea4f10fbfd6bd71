/**
 * COCO evaluation with pycocotools' semantics (`COCO`, `loadRes`, `COCOeval.evaluate`,
 * `accumulate`, `summarize`), written from its documented behaviour so that every number equals
 * pycocotools' up to floating-point summation order:
 *
 * - detections are sorted by score with a stable sort (numpy's mergesort) and cut at the largest
 *   maxDets per image and category before IoUs are computed;
 * - ground truths are matched greedily per IoU threshold, non-ignored before ignored ones; a
 *   crowd region (`iscrowd`) may absorb any number of detections and its IoU's union is the
 *   detection alone; an unmatched detection outside the area range is ignored;
 * - precision is made monotone and sampled at the 101 recall thresholds (`searchsorted`, left);
 *   a setting without non-ignored ground truth stays -1 and is left out of the means.
 *
 * Results are read as `loadRes` reads them: the first result decides whether areas come from
 * `bbox` (w * h), from the mask, or from the keypoints' extent. For `segm`, `bbox` is dropped
 * from every result first, as Detectron2's COCOEvaluator does, so mask areas decide the small /
 * medium / large ranges.
 */
import { InputError, type UncompressedRle, rleArea } from '@rcnn/core';
import { type XywhBox, boxIou, maskIou, rleToBox, segmentationToRle } from './mask.js';
import type { CocoAnnotationJson, CocoDatasetJson, CocoImageJson, CocoResultJson, IouType } from './types.js';

/** numpy's `linspace(start, stop, num)`: `i * step + start`, the last value exactly `stop`. */
function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

/** COCO's person keypoint OKS sigmas (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles). */
export const COCO_PERSON_OKS_SIGMAS: readonly number[] = [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89].map(
  (s) => s / 10.0,
);

/** One area range of the evaluation: objects with lo <= area <= hi count, others are ignored. */
export interface AreaRange {
  readonly label: string;
  readonly range: readonly [number, number];
}

/** Evaluation parameters (pycocotools `Params`); {@link defaultEvalParams} gives COCO's. */
export interface CocoEvalParams {
  readonly iouType: IouType;
  /** IoU (OKS) thresholds; default 0.50:0.05:0.95. */
  readonly iouThrs: readonly number[];
  /** Recall thresholds; default 0:0.01:1. */
  readonly recThrs: readonly number[];
  /** Detections per image kept, ascending; default [1, 10, 100] ([20] for keypoints). */
  readonly maxDets: readonly number[];
  /** Area ranges; default all/small/medium/large (all/medium/large for keypoints). */
  readonly areaRanges: readonly AreaRange[];
  /** OKS sigma per keypoint (keypoints only); default COCO's 17 person sigmas. */
  readonly kptOksSigmas: readonly number[];
}

/** pycocotools' default parameters for an iou type. */
export function defaultEvalParams(iouType: IouType): CocoEvalParams {
  const iouThrs = linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1);
  const recThrs = linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1);
  if (iouType === 'keypoints') {
    return {
      iouType,
      iouThrs,
      recThrs,
      maxDets: [20],
      areaRanges: [
        { label: 'all', range: [0, 1e5 ** 2] },
        { label: 'medium', range: [32 ** 2, 96 ** 2] },
        { label: 'large', range: [96 ** 2, 1e5 ** 2] },
      ],
      kptOksSigmas: COCO_PERSON_OKS_SIGMAS,
    };
  }
  return {
    iouType,
    iouThrs,
    recThrs,
    maxDets: [1, 10, 100],
    areaRanges: [
      { label: 'all', range: [0, 1e5 ** 2] },
      { label: 'small', range: [0, 32 ** 2] },
      { label: 'medium', range: [32 ** 2, 96 ** 2] },
      { label: 'large', range: [96 ** 2, 1e5 ** 2] },
    ],
    kptOksSigmas: COCO_PERSON_OKS_SIGMAS,
  };
}

/** Options of {@link evaluateCoco}. */
export interface CocoEvalOptions {
  /** Parameters replacing pycocotools' defaults (e.g. `kptOksSigmas` for non-person keypoints). */
  readonly params?: Partial<Omit<CocoEvalParams, 'iouType'>>;
  /** Evaluate only these images (default: every image of the dataset). */
  readonly imageIds?: readonly number[];
  /** Evaluate only these categories (default: every category of the dataset). */
  readonly categoryIds?: readonly number[];
  /**
   * segm only: keep results' `bbox` (pycocotools then takes detection areas from it). Default
   * false: dropped, as Detectron2 does.
   */
  readonly keepSegmBoxes?: boolean;
}

/** One summary number of {@link CocoEvalResult.stats}. */
export interface SummaryStat {
  /** true: average precision, false: average recall. */
  readonly ap: boolean;
  /** One IoU threshold, or undefined for the mean over all thresholds. */
  readonly iouThr: number | undefined;
  readonly area: string;
  readonly maxDets: number;
}

/**
 * What pycocotools' `summarize()` reports for bbox / segm (12 numbers) given `maxDets`: the first
 * AP at 100 detections, the others at maxDets[2], and AR at maxDets[0], [1], [2] (pycocotools reads
 * those indices; with fewer than three maxDets it fails, here the missing ones read as 100).
 */
export function detectionSummary(maxDets: readonly number[]): SummaryStat[] {
  const [m0, m1, m2] = [maxDets[0] ?? 100, maxDets[1] ?? 100, maxDets[2] ?? 100];
  return [
    { ap: true, iouThr: undefined, area: 'all', maxDets: 100 },
    { ap: true, iouThr: 0.5, area: 'all', maxDets: m2 },
    { ap: true, iouThr: 0.75, area: 'all', maxDets: m2 },
    { ap: true, iouThr: undefined, area: 'small', maxDets: m2 },
    { ap: true, iouThr: undefined, area: 'medium', maxDets: m2 },
    { ap: true, iouThr: undefined, area: 'large', maxDets: m2 },
    { ap: false, iouThr: undefined, area: 'all', maxDets: m0 },
    { ap: false, iouThr: undefined, area: 'all', maxDets: m1 },
    { ap: false, iouThr: undefined, area: 'all', maxDets: m2 },
    { ap: false, iouThr: undefined, area: 'small', maxDets: m2 },
    { ap: false, iouThr: undefined, area: 'medium', maxDets: m2 },
    { ap: false, iouThr: undefined, area: 'large', maxDets: m2 },
  ];
}

/** What pycocotools' `summarize()` reports for bbox / segm with the default maxDets [1, 10, 100]. */
export const DETECTION_SUMMARY: readonly SummaryStat[] = detectionSummary([1, 10, 100]);

/** What pycocotools' `summarize()` reports for keypoints (10 numbers, maxDets 20). */
export const KEYPOINT_SUMMARY: readonly SummaryStat[] = [
  { ap: true, iouThr: undefined, area: 'all', maxDets: 20 },
  { ap: true, iouThr: 0.5, area: 'all', maxDets: 20 },
  { ap: true, iouThr: 0.75, area: 'all', maxDets: 20 },
  { ap: true, iouThr: undefined, area: 'medium', maxDets: 20 },
  { ap: true, iouThr: undefined, area: 'large', maxDets: 20 },
  { ap: false, iouThr: undefined, area: 'all', maxDets: 20 },
  { ap: false, iouThr: 0.5, area: 'all', maxDets: 20 },
  { ap: false, iouThr: 0.75, area: 'all', maxDets: 20 },
  { ap: false, iouThr: undefined, area: 'medium', maxDets: 20 },
  { ap: false, iouThr: undefined, area: 'large', maxDets: 20 },
];

/** The outcome of one evaluation. */
export interface CocoEvalResult {
  readonly iouType: IouType;
  readonly params: CocoEvalParams;
  /** Sorted category ids: the K axis of precision / recall. */
  readonly categoryIds: readonly number[];
  /** Sorted image ids that were evaluated. */
  readonly imageIds: readonly number[];
  /** pycocotools `stats`: 12 numbers (10 for keypoints), -1 where nothing could be measured. */
  readonly stats: readonly number[];
  /** What each of {@link stats} is. */
  readonly statDefinitions: readonly SummaryStat[];
  /**
   * AP per category id (area all, largest maxDets, mean over IoU thresholds and recall
   * thresholds), null for a category without non-ignored ground truth. Not multiplied by 100.
   */
  readonly perCategory: ReadonlyMap<number, number | null>;
  /** Precision, [T, R, K, A, M] row-major (pycocotools `eval['precision']`). */
  readonly precision: Float64Array;
  /** Recall, [T, K, A, M] row-major (pycocotools `eval['recall']`). */
  readonly recall: Float64Array;
  /** [T, R, K, A, M]. */
  readonly dims: readonly [number, number, number, number, number];
}

/** A ground truth or detection as the evaluation sees it. */
interface Instance {
  readonly id: number;
  readonly imageId: number;
  readonly categoryId: number;
  readonly area: number;
  readonly iscrowd: boolean;
  /** Ground truth only: crowd (or, for keypoints, no labelled keypoint). */
  readonly ignore: boolean;
  readonly score: number;
  readonly bbox: readonly number[];
  readonly mask: UncompressedRle | undefined;
  readonly keypoints: readonly number[] | undefined;
}

/** Per image, category and area range (pycocotools `evaluateImg`). */
interface ImageEval {
  /** Detection scores, sorted descending, at most maxDets[-1]. */
  readonly dtScores: readonly number[];
  /** [T * D] (row t = threshold): id of the matched ground truth, 0 if none. */
  readonly dtMatches: Float64Array;
  /** [T * D]. */
  readonly dtIgnore: Uint8Array;
  /** Per ground truth (ignored last). */
  readonly gtIgnore: readonly boolean[];
}

const key = (imageId: number, categoryId: number): string => `${imageId}/${categoryId}`;

function stableSortByScore(dts: readonly Instance[]): Instance[] {
  // Array.prototype.sort is stable, like numpy's mergesort of -score.
  return [...dts].sort((a, b) => b.score - a.score);
}

function checkNumber(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`${what} is ${JSON.stringify(v)}, not a finite number`);
  return v;
}

function checkBox(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || v.length !== 4 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw new InputError(`${what} is ${JSON.stringify(v)}, not [x, y, width, height]`);
  }
  return v as number[];
}

/** Images by id, checked. */
function indexImages(gt: CocoDatasetJson): Map<number, CocoImageJson> {
  if (!gt || !Array.isArray(gt.images) || !Array.isArray(gt.annotations) || !Array.isArray(gt.categories)) {
    throw new InputError('the ground truth is not a COCO dataset: it needs "images", "annotations" and "categories" arrays');
  }
  const images = new Map<number, CocoImageJson>();
  for (const [i, img] of gt.images.entries()) {
    checkNumber(img?.id, `images[${i}].id`);
    images.set(img.id, img);
  }
  return images;
}

function imageSize(images: Map<number, CocoImageJson>, imageId: number, what: string): [number, number] {
  const img = images.get(imageId);
  if (!img) throw new InputError(`${what}: image_id ${imageId} is not in the dataset's images`);
  const h = checkNumber(img.height, `image ${imageId} height`);
  const w = checkNumber(img.width, `image ${imageId} width`);
  return [h, w];
}

/** The ground-truth area: the annotation's `area` (as pycocotools), else the mask's, else the box's. */
function gtArea(ann: CocoAnnotationJson, mask: UncompressedRle | undefined, what: string): number {
  if (ann.area !== undefined) return checkNumber(ann.area, `${what}.area`);
  if (mask) return rleArea(mask);
  const b = checkBox(ann.bbox, `${what}.bbox`);
  return b[2]! * b[3]!;
}

function groundTruths(gt: CocoDatasetJson, images: Map<number, CocoImageJson>, iouType: IouType, categories: Set<number>, imageSet: Set<number>): Map<string, Instance[]> {
  const out = new Map<string, Instance[]>();
  for (const [i, ann] of gt.annotations.entries()) {
    const what = `ground truth annotations[${i}] (id ${ann?.id})`;
    if (!imageSet.has(ann.image_id) || !categories.has(ann.category_id)) continue;
    const iscrowd = Boolean(ann.iscrowd);
    let mask: UncompressedRle | undefined;
    if (iouType === 'segm') {
      if (ann.segmentation === undefined) throw new InputError(`${what} has no segmentation, which segm evaluation needs`);
      const [h, w] = imageSize(images, ann.image_id, what);
      mask = segmentationToRle(ann.segmentation, h, w, `${what}.segmentation`);
    }
    let keypoints: readonly number[] | undefined;
    let ignore = iscrowd;
    if (iouType === 'keypoints') {
      keypoints = ann.keypoints;
      const labelled = ann.num_keypoints ?? countLabelled(keypoints ?? []);
      ignore = labelled === 0 || iscrowd;
    }
    const inst: Instance = {
      id: checkNumber(ann.id, `${what}.id`),
      imageId: ann.image_id,
      categoryId: ann.category_id,
      area: gtArea(ann, mask, what),
      iscrowd,
      ignore,
      score: 0,
      bbox: iouType === 'segm' ? (ann.bbox ?? []) : checkBox(ann.bbox, `${what}.bbox`),
      mask,
      keypoints,
    };
    const k = key(ann.image_id, ann.category_id);
    const list = out.get(k);
    if (list) list.push(inst);
    else out.set(k, [inst]);
  }
  return out;
}

function countLabelled(keypoints: readonly number[]): number {
  let n = 0;
  for (let i = 2; i < keypoints.length; i += 3) if (keypoints[i]! > 0) n++;
  return n;
}

/**
 * pycocotools `loadRes` + `_prepare` for detections: ids 1..N in file order, areas and boxes by
 * the branch the first result selects, grouped by image and category.
 */
function detections(
  results: readonly CocoResultJson[],
  images: Map<number, CocoImageJson>,
  iouType: IouType,
  categories: Set<number>,
  imageSet: Set<number>,
  keepSegmBoxes: boolean,
): Map<string, Instance[]> {
  if (!Array.isArray(results)) throw new InputError('the results are not a COCO results list (a JSON array of detections)');
  const out = new Map<string, Instance[]>();
  if (results.length === 0) return out;
  const dropBox = iouType === 'segm' && !keepSegmBoxes;
  const first = results[0];
  const branch: 'bbox' | 'segm' | 'keypoints' =
    !dropBox && Array.isArray(first?.bbox) && first.bbox.length > 0 ? 'bbox' : first?.segmentation !== undefined ? 'segm' : first?.keypoints !== undefined ? 'keypoints' : 'bbox';
  for (const [i, r] of results.entries()) {
    const what = `results[${i}]`;
    if (!r || typeof r !== 'object') throw new InputError(`${what} is not a detection object`);
    checkNumber(r.image_id, `${what}.image_id`);
    checkNumber(r.category_id, `${what}.category_id`);
    if (!images.has(r.image_id)) {
      throw new InputError(`${what}: image_id ${r.image_id} is not an image of the ground truth (pycocotools: "Results do not correspond to current coco set")`, {
        hint: 'evaluate results against the dataset they were predicted on',
      });
    }
    const score = checkNumber(r.score, `${what}.score`);
    const [h, w] = imageSize(images, r.image_id, what);
    let area: number;
    let bbox: readonly number[];
    let mask: UncompressedRle | undefined;
    let segmentation = r.segmentation;
    if (branch === 'bbox') {
      bbox = checkBox(r.bbox, `${what}.bbox`);
      area = bbox[2]! * bbox[3]!;
      if (segmentation === undefined) {
        const [x1, y1] = bbox;
        const x2 = bbox[0]! + bbox[2]!;
        const y2 = bbox[1]! + bbox[3]!;
        segmentation = [[x1, y1, x1, y2, x2, y2, x2, y1]];
      }
    } else if (branch === 'segm') {
      if (segmentation === undefined) throw new InputError(`${what} has no segmentation (the first result has one, so every result needs one)`);
      mask = segmentationToRle(segmentation, h, w, `${what}.segmentation`);
      area = rleArea(mask);
      bbox = !dropBox && r.bbox !== undefined ? checkBox(r.bbox, `${what}.bbox`) : rleToBox(mask);
    } else {
      const kp = r.keypoints!;
      if (!Array.isArray(kp) || kp.length < 3) throw new InputError(`${what}.keypoints is not a list of [x, y, score] triples`);
      const xs = kp.filter((_, j) => j % 3 === 0);
      const ys = kp.filter((_, j) => j % 3 === 1);
      const x0 = Math.min(...xs);
      const x1 = Math.max(...xs);
      const y0 = Math.min(...ys);
      const y1 = Math.max(...ys);
      area = (x1 - x0) * (y1 - y0);
      bbox = [x0, y0, x1 - x0, y1 - y0];
    }
    if (!imageSet.has(r.image_id) || !categories.has(r.category_id)) continue;
    if (iouType === 'segm' && !mask) {
      if (segmentation === undefined) throw new InputError(`${what} has no segmentation, which segm evaluation needs`);
      mask = segmentationToRle(segmentation, h, w, `${what}.segmentation`);
    }
    if (iouType === 'keypoints' && !Array.isArray(r.keypoints)) throw new InputError(`${what} has no keypoints, which keypoint evaluation needs`);
    const inst: Instance = {
      id: i + 1,
      imageId: r.image_id,
      categoryId: r.category_id,
      area,
      iscrowd: false,
      ignore: false,
      score,
      bbox,
      mask,
      keypoints: r.keypoints,
    };
    const k = key(r.image_id, r.category_id);
    const list = out.get(k);
    if (list) list.push(inst);
    else out.set(k, [inst]);
  }
  return out;
}

/** Object keypoint similarity of every detection with every ground truth (`computeOks`), [D][G]. */
function computeOks(dts: readonly Instance[], gts: readonly Instance[], sigmas: readonly number[]): number[][] {
  const k = sigmas.length;
  const vars = sigmas.map((s) => (s * 2) * (s * 2));
  const out = dts.map(() => new Array<number>(gts.length).fill(0));
  for (const [j, gt] of gts.entries()) {
    // A ground truth without keypoints (pycocotools would fail) counts as one with none labelled.
    const g = gt.keypoints ?? new Array<number>(3 * k).fill(0);
    if (g.length !== 3 * k) throw new InputError(`ground truth annotation ${gt.id} has ${g.length} keypoint values, expected ${3 * k} (${k} OKS sigmas)`, { hint: 'pass the OKS sigmas of your keypoints (--oks-sigmas / kptOksSigmas)' });
    let visible = 0;
    for (let p = 0; p < k; p++) if (g[3 * p + 2]! > 0) visible++;
    const bb = gt.bbox;
    const x0 = bb[0]! - bb[2]!;
    const x1 = bb[0]! + bb[2]! * 2;
    const y0 = bb[1]! - bb[3]!;
    const y1 = bb[1]! + bb[3]! * 2;
    const denom = gt.area + Number.EPSILON;
    for (const [i, dt] of dts.entries()) {
      const d = dt.keypoints!;
      if (d.length !== 3 * k) throw new InputError(`detection ${dt.id} (results[${dt.id - 1}]) has ${d.length} keypoint values, expected ${3 * k}`, { hint: 'pass the OKS sigmas of your keypoints (--oks-sigmas / kptOksSigmas)' });
      let sum = 0;
      let n = 0;
      for (let p = 0; p < k; p++) {
        const xd = d[3 * p]!;
        const yd = d[3 * p + 1]!;
        let dx: number;
        let dy: number;
        if (visible > 0) {
          if (!(g[3 * p + 2]! > 0)) continue;
          dx = xd - g[3 * p]!;
          dy = yd - g[3 * p + 1]!;
        } else {
          // No labelled keypoint: distance to the box doubled around the ground truth.
          dx = Math.max(0, x0 - xd) + Math.max(0, xd - x1);
          dy = Math.max(0, y0 - yd) + Math.max(0, yd - y1);
        }
        const e = (dx * dx + dy * dy) / vars[p]! / denom / 2;
        sum += Math.exp(-e);
        n++;
      }
      out[i]![j] = sum / n;
    }
  }
  return out;
}

/** IoUs of one image and category, [D][G] with D sorted by score and cut at maxDets[-1]. */
function computeIous(dts: readonly Instance[], gts: readonly Instance[], params: CocoEvalParams): number[][] | undefined {
  if (params.iouType === 'keypoints') {
    if (gts.length === 0 || dts.length === 0) return undefined;
    return computeOks(dts, gts, params.kptOksSigmas);
  }
  if (gts.length === 0 || dts.length === 0) return undefined;
  const crowd = gts.map((g) => g.iscrowd);
  if (params.iouType === 'segm') return maskIou(dts.map((d) => d.mask!), gts.map((g) => g.mask!), crowd);
  return boxIou(dts.map((d) => d.bbox as XywhBox), gts.map((g) => g.bbox as XywhBox), crowd);
}

function evaluateImage(
  gtsIn: readonly Instance[],
  dtsSorted: readonly Instance[],
  ious: number[][] | undefined,
  range: readonly [number, number],
  params: CocoEvalParams,
): ImageEval | undefined {
  if (gtsIn.length === 0 && dtsSorted.length === 0) return undefined;
  const outside = (area: number): boolean => area < range[0] || area > range[1];
  const gtIgnoreIn = gtsIn.map((g) => g.ignore || outside(g.area));
  // Non-ignored ground truths first, stable.
  const order = gtsIn.map((_, i) => i).sort((a, b) => Number(gtIgnoreIn[a]) - Number(gtIgnoreIn[b]));
  const gts = order.map((i) => gtsIn[i]);
  const gtIgnore = order.map((i) => gtIgnoreIn[i]!);
  const dts = dtsSorted;
  const T = params.iouThrs.length;
  const G = gts.length;
  const D = dts.length;
  // One flat array per kind (not one per threshold): COCO-sized runs hold ~10^5 of these.
  const gtMatched = new Float64Array(T * G);
  const dtMatches = new Float64Array(T * D);
  const dtIgnore = new Uint8Array(T * D);
  if (ious) {
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        let best = Math.min(params.iouThrs[t]!, 1 - 1e-10);
        let m = -1;
        for (let g = 0; g < G; g++) {
          // A matched ground truth takes no second detection, unless it is a crowd region.
          if (gtMatched[t * G + g]! > 0 && !gts[g]!.iscrowd) continue;
          // Matched to a regular ground truth already: the ignored ones (sorted last) cannot win.
          if (m > -1 && !gtIgnore[m] && gtIgnore[g]) break;
          const iou = ious[d]![order[g]!]!;
          if (iou < best) continue;
          best = iou;
          m = g;
        }
        if (m === -1) continue;
        dtIgnore[t * D + d] = gtIgnore[m] ? 1 : 0;
        dtMatches[t * D + d] = gts[m]!.id;
        gtMatched[t * G + m] = dts[d]!.id;
      }
    }
  }
  // Unmatched detections outside the area range are ignored.
  for (let d = 0; d < D; d++) {
    if (!outside(dts[d]!.area)) continue;
    for (let t = 0; t < T; t++) if (dtMatches[t * D + d] === 0) dtIgnore[t * D + d] = 1;
  }
  return { dtScores: dts.map((d) => d.score), dtMatches, dtIgnore, gtIgnore };
}

/** Index of the first element of ascending `a` that is >= v (numpy `searchsorted`, side left). */
function searchLeft(a: Float64Array, n: number, v: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function resolveParams(iouType: IouType, overrides: CocoEvalOptions['params']): CocoEvalParams {
  const p = { ...defaultEvalParams(iouType), ...overrides, iouType };
  if (p.iouThrs.length === 0 || p.recThrs.length === 0 || p.maxDets.length === 0 || p.areaRanges.length === 0) {
    throw new InputError('evaluation parameters: iouThrs, recThrs, maxDets and areaRanges must not be empty');
  }
  for (const s of p.kptOksSigmas) checkNumber(s, 'an OKS sigma');
  // pycocotools sorts maxDets in evaluate().
  return { ...p, maxDets: [...p.maxDets].sort((a, b) => a - b) };
}

/**
 * Evaluates COCO results against a COCO dataset as pycocotools' COCOeval does (evaluate,
 * accumulate, summarize) and returns the summary numbers, per-category AP and the precision /
 * recall arrays.
 */
export function evaluateCoco(gt: CocoDatasetJson, results: readonly CocoResultJson[], iouType: IouType, options: CocoEvalOptions = {}): CocoEvalResult {
  const params = resolveParams(iouType, options.params);
  const images = indexImages(gt);
  const imageIds = [...new Set(options.imageIds ?? [...images.keys()])].sort((a, b) => a - b);
  const categoryIds = [...new Set(options.categoryIds ?? gt.categories.map((c, i) => checkNumber(c?.id, `categories[${i}].id`)))].sort((a, b) => a - b);
  const imageSet = new Set(imageIds);
  const categorySet = new Set(categoryIds);
  const gts = groundTruths(gt, images, iouType, categorySet, imageSet);
  const dts = detections(results, images, iouType, categorySet, imageSet, options.keepSegmBoxes === true);

  const T = params.iouThrs.length;
  const R = params.recThrs.length;
  const K = categoryIds.length;
  const A = params.areaRanges.length;
  const M = params.maxDets.length;
  const maxDet = params.maxDets[M - 1];

  // evaluate(): per category, area range and image.
  const evals: (ImageEval | undefined)[][][] = categoryIds.map(() => params.areaRanges.map(() => []));
  for (const [k, catId] of categoryIds.entries()) {
    for (const imgId of imageIds) {
      const g = gts.get(key(imgId, catId)) ?? [];
      const d = stableSortByScore(dts.get(key(imgId, catId)) ?? []).slice(0, maxDet);
      const ious = computeIous(d, g, params);
      for (const [a, ar] of params.areaRanges.entries()) evals[k]![a]!.push(evaluateImage(g, d, ious, ar.range, params));
    }
  }

  // accumulate().
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const pIndex = (t: number, r: number, k: number, a: number, m: number): number => (((t * R + r) * K + k) * A + a) * M + m;
  const rIndex = (t: number, k: number, a: number, m: number): number => ((t * K + k) * A + a) * M + m;
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      const E = evals[k]![a]!.filter((e): e is ImageEval => e !== undefined);
      if (E.length === 0) continue;
      let npig = 0;
      for (const e of E) for (const ig of e.gtIgnore) if (!ig) npig++;
      if (npig === 0) continue;
      for (const [m, md] of params.maxDets.entries()) {
        // Detections of every image, in image order, each image's cut at this maxDets.
        let total = 0;
        for (const e of E) total += Math.min(md, e.dtScores.length);
        const scores = new Float64Array(total);
        const fromEval = new Int32Array(total);
        const fromDet = new Int32Array(total);
        let n = 0;
        for (const [ei, e] of E.entries()) {
          const cut = Math.min(md, e.dtScores.length);
          for (let d = 0; d < cut; d++, n++) {
            scores[n] = e.dtScores[d]!;
            fromEval[n] = ei;
            fromDet[n] = d;
          }
        }
        // Stable (numpy mergesort of -score): ties keep image order.
        const order = Array.from({ length: total }, (_, i) => i).sort((x, y) => scores[y]! - scores[x]!);
        const nd = total;
        const rc = new Float64Array(nd);
        const pr = new Float64Array(nd);
        for (let t = 0; t < T; t++) {
          let tp = 0;
          let fp = 0;
          for (let i = 0; i < nd; i++) {
            const e = E[fromEval[order[i]!]!]!;
            const at = t * e.dtScores.length + fromDet[order[i]!]!;
            const matched = e.dtMatches[at] !== 0;
            const ignored = e.dtIgnore[at] !== 0;
            if (matched && !ignored) tp++;
            else if (!matched && !ignored) fp++;
            rc[i] = tp / npig;
            pr[i] = tp / (fp + tp + Number.EPSILON);
          }
          recall[rIndex(t, k, a, m)] = nd > 0 ? rc[nd - 1]! : 0;
          // Precision envelope: the best precision at any higher recall.
          for (let i = nd - 1; i > 0; i--) if (pr[i]! > pr[i - 1]!) pr[i - 1] = pr[i]!;
          for (let r = 0; r < R; r++) {
            const pi = searchLeft(rc, nd, params.recThrs[r]!);
            precision[pIndex(t, r, k, a, m)] = pi < nd ? pr[pi]! : 0;
          }
        }
      }
    }
  }

  // summarize().
  const definitions = iouType === 'keypoints' ? KEYPOINT_SUMMARY : detectionSummary(params.maxDets);
  const stats = definitions.map((s) => summarizeOne(s, params, precision, recall, [T, R, K, A, M]));
  const perCategory = new Map<number, number | null>();
  for (const [k, catId] of categoryIds.entries()) {
    let sum = 0;
    let n = 0;
    for (let t = 0; t < T; t++) {
      for (let r = 0; r < R; r++) {
        const v = precision[pIndex(t, r, k, 0, M - 1)]!;
        if (v > -1) {
          sum += v;
          n++;
        }
      }
    }
    perCategory.set(catId, n > 0 ? sum / n : null);
  }
  return { iouType, params, categoryIds, imageIds, stats, statDefinitions: definitions, perCategory, precision, recall, dims: [T, R, K, A, M] };
}

/** pycocotools' `_summarize`: the mean of the entries > -1 of one slice, -1 when there are none. */
function summarizeOne(s: SummaryStat, params: CocoEvalParams, precision: Float64Array, recall: Float64Array, dims: readonly [number, number, number, number, number]): number {
  const [, R, K, A, M] = dims;
  const ts = params.iouThrs.map((_, t) => t).filter((t) => s.iouThr === undefined || params.iouThrs[t] === s.iouThr);
  const as = params.areaRanges.map((_, a) => a).filter((a) => params.areaRanges[a]!.label === s.area);
  const ms = params.maxDets.map((_, m) => m).filter((m) => params.maxDets[m] === s.maxDets);
  let sum = 0;
  let n = 0;
  for (const t of ts) {
    for (let k = 0; k < K; k++) {
      for (const a of as) {
        for (const m of ms) {
          if (s.ap) {
            for (let r = 0; r < R; r++) {
              const v = precision[(((t * R + r) * K + k) * A + a) * M + m]!;
              if (v > -1) {
                sum += v;
                n++;
              }
            }
          } else {
            const v = recall[((t * K + k) * A + a) * M + m]!;
            if (v > -1) {
              sum += v;
              n++;
            }
          }
        }
      }
    }
  }
  return n === 0 ? -1 : sum / n;
}

/**
 * Python's `'{:.Nf}'.format(v)`: like toFixed, but an exact tie (a binary value exactly halfway)
 * rounds to the even digit, where toFixed rounds up (0.0625 -> "0.062", not "0.063").
 */
export function pythonFixed(v: number, digits: number): string {
  const s = v.toFixed(digits);
  const scaled = v * 10 ** digits;
  if (!Number.isFinite(v) || Math.abs(scaled - Math.trunc(scaled)) !== 0.5) return s;
  const down = Math.trunc(scaled);
  // toFixed moved away from zero; keep the even neighbour instead.
  const even = down % 2 === 0 ? down : down + Math.sign(scaled);
  return (even / 10 ** digits).toFixed(digits);
}

/** pycocotools' printed summary lines (` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.374`). */
export function formatSummary(result: CocoEvalResult): string {
  const p = result.params;
  const fix2 = (v: number): string => pythonFixed(v, 2);
  return result.statDefinitions
    .map((s, i) => {
      const title = s.ap ? 'Average Precision' : 'Average Recall';
      const type = s.ap ? '(AP)' : '(AR)';
      const iou = s.iouThr === undefined ? `${fix2(p.iouThrs[0]!)}:${fix2(p.iouThrs[p.iouThrs.length - 1]!)}` : fix2(s.iouThr);
      const v = result.stats[i]!;
      return ` ${title.padEnd(18)} ${type} @[ IoU=${iou.padEnd(9)} | area=${s.area.padStart(6)} | maxDets=${String(s.maxDets).padStart(3)} ] = ${pythonFixed(v, 3)}`;
    })
    .join('\n');
}
