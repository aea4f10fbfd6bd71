/**
 * One image's detections as COCO results annotations (bbox [x, y, w, h], score, category id and
 * name, RLE segmentation of the pasted masks, keypoints [x, y, v] * K): the portable part of the
 * COCO JSON writer ({@link CocoResultsBuilder}), usable in a browser.
 */
import type { CocoRle, ImageDetections } from '@rcnn/core/web';
import type { ModelLabels } from './categories.js';
import { readKeypoints, readMasks } from './extras.js';

/** One detection. */
export interface CocoAnnotation {
  readonly id: number;
  readonly image_id: number;
  readonly category_id: number;
  readonly category_name: string;
  /** [x, y, width, height] in original-image pixels. */
  readonly bbox: readonly number[];
  readonly area: number;
  readonly iscrowd: 0;
  readonly score: number;
  /** COCO RLE of the pasted mask (pycocotools' compressed form). */
  readonly segmentation?: CocoRle;
  /** [x, y, v] * K. */
  readonly keypoints?: readonly number[];
  readonly num_keypoints?: number;
}

/** `v` rounded to `digits` decimals (results files need no float32 noise). */
export const round = (v: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

/** Box `i` of [D*4] (x1, y1, x2, y2) as COCO's [x, y, w, h], rounded to 1/1000 px. */
export function xywh(boxes: Float32Array, i: number): number[] {
  const [x1, y1, x2, y2] = [boxes[4 * i]!, boxes[4 * i + 1]!, boxes[4 * i + 2]!, boxes[4 * i + 3]!];
  return [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)];
}

/**
 * The annotations of one image's detections, ids counting from `firstId`; masks and keypoints are
 * read from the detections' typed extras (`readMasks` / `readKeypoints`).
 */
export function cocoAnnotations(imageId: number, det: ImageDetections, labels: ModelLabels, firstId = 1): CocoAnnotation[] {
  const masks = readMasks(det);
  const kp = readKeypoints(det);
  const out: CocoAnnotation[] = [];
  for (let d = 0; d < det.scores.length; d++) {
    const label = det.labels[d]!;
    const bbox = xywh(det.boxes, d);
    const ann: Record<string, unknown> = {
      id: firstId + d,
      image_id: imageId,
      category_id: labels.categoryIds[label] ?? label,
      category_name: labels.categories[label] ?? `class_${label}`,
      bbox,
      area: round(bbox[2]! * bbox[3]!, 2),
      iscrowd: 0,
      score: round(det.scores[d]!, 5),
    };
    if (masks) {
      const rle = masks.rle(d);
      ann.segmentation = { size: [rle.size[0], rle.size[1]], counts: rle.counts } satisfies CocoRle;
      ann.area = masks.area(d);
    }
    if (kp) {
      const k = kp.numKeypoints;
      ann.keypoints = Array.from(kp.keypoints.subarray(d * k * 3, (d + 1) * k * 3), (v, i) => (i % 3 === 2 ? v : round(v, 2)));
      ann.num_keypoints = k;
    }
    out.push(ann as unknown as CocoAnnotation);
  }
  return out;
}
