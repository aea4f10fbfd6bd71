/**
 * Per-image training targets (GT boxes, labels, masks as bitmaps, keypoints) on the host: their
 * validation (typed {@link TargetError}s, never NaN losses), the horizontal flip and torchvision's
 * training resize of boxes, masks and keypoints (`GeneralizedRCNNTransform` in train mode).
 */
import type { RcnnConfig } from '../config/config.js';
import { TargetError } from '../errors.js';

const f = Math.fround;

/** The ground truth of one image, in original-image pixels. */
export interface ImageTargets {
  /** [G*4] (x1, y1, x2, y2) float32. */
  readonly boxes: Float32Array;
  /** [G] class indices 1 .. MODEL.NUM_CLASSES - 1. */
  readonly labels: Int32Array;
  /** [G*H*W] 0/1 bitmaps at the image's size (Mask R-CNN; polygons / RLE are decoded before). */
  readonly masks?: Uint8Array;
  /** [G*K*3] (x, y, visibility) with K = KRCNN.NUM_KEYPOINTS; v > 0 is visible (Keypoint R-CNN). */
  readonly keypoints?: Float32Array;
}

/** Targets of one image after the training resize, in resized-image pixels. */
export interface ResizedTargets {
  readonly boxes: Float32Array;
  readonly labels: Int32Array;
  /** [G*h'*w'] uint8. */
  readonly masks?: Uint8Array;
  readonly keypoints?: Float32Array;
  /** (h', w') after resizing. */
  readonly size: readonly [number, number];
}

/** Number of GT objects of an image. */
export const gtCount = (t: { readonly labels: Int32Array }): number => t.labels.length;

/**
 * Checks one image's targets against the model and the image: shapes, finite values, x2 > x1 and
 * y2 > y1, labels in range, masks of the image's size, keypoints of the model's count.
 */
export function validateTargets(t: ImageTargets, imageSize: readonly [number, number], config: RcnnConfig, image: number): void {
  const where = (field: string): string => `image ${image} ${field}`;
  const fail = (field: string, message: string, hint?: string): never => {
    throw new TargetError(`training targets of ${where(field)}: ${message}`, { source: where(field), ...(hint ? { hint } : {}) });
  };
  const g = t.labels.length;
  if (t.boxes.length !== 4 * g) fail('boxes', `${t.boxes.length / 4} boxes for ${g} labels`);
  const numClasses = config.MODEL.NUM_CLASSES;
  for (let i = 0; i < g; i++) {
    const [x1, y1, x2, y2] = [t.boxes[4 * i]!, t.boxes[4 * i + 1]!, t.boxes[4 * i + 2]!, t.boxes[4 * i + 3]!];
    if (![x1, y1, x2, y2].every(Number.isFinite)) fail(`boxes[${i}]`, `is not finite: [${x1}, ${y1}, ${x2}, ${y2}]`);
    if (!(x2 > x1) || !(y2 > y1)) fail(`boxes[${i}]`, `has no area: [${x1}, ${y1}, ${x2}, ${y2}] (needs x2 > x1 and y2 > y1)`);
    const label = t.labels[i]!;
    if (!(label >= 1 && label < numClasses)) fail(`labels[${i}]`, `${label} is outside 1..${numClasses - 1} (MODEL.NUM_CLASSES ${numClasses}; 0 is background)`);
  }
  const [h, w] = imageSize;
  if (config.MODEL.MASK_ON) {
    if (!t.masks) fail('masks', 'missing: a Mask R-CNN model trains on a mask per GT box');
    else if (t.masks.length !== g * h * w) fail('masks', `hold ${t.masks.length} values, expected ${g} x ${h} x ${w} (one bitmap per GT at the image size)`);
  }
  if (config.MODEL.KEYPOINTS_ON) {
    const k = config.KRCNN.NUM_KEYPOINTS;
    if (!t.keypoints) fail('keypoints', 'missing: a Keypoint R-CNN model trains on keypoints per GT box');
    else {
      if (t.keypoints.length !== g * k * 3) fail('keypoints', `hold ${t.keypoints.length} values, expected ${g} x ${k} x 3 (KRCNN.NUM_KEYPOINTS ${k})`);
      const bad = t.keypoints.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) fail(`keypoints[${Math.floor(bad / (3 * k))}]`, `keypoint ${Math.floor(bad / 3) % k} is not finite`);
    }
  }
}

/**
 * Flips an image's targets horizontally (Detectron TRAIN.USE_FLIPPED; torchvision's reference
 * `RandomHorizontalFlip`): x -> W - x, boxes' x1 / x2 swapped, masks mirrored, keypoints
 * renumbered by KRCNN.FLIP_MAP and unlabeled ones kept at (0, 0, 0). With MODEL.LEGACY_PLUS_ONE,
 * Detectron's `flip_boxes` / `flip_keypoints`: x -> W - x - 1 (pixel index x mirrors to W - 1 - x,
 * which is also where the mirrored bitmap puts that pixel).
 */
export function flipTargets(t: ImageTargets, imageSize: readonly [number, number], config: RcnnConfig): ImageTargets {
  const [h, w] = imageSize;
  const g = t.labels.length;
  // The mirror axis: x -> right - x.
  const right = config.MODEL.LEGACY_PLUS_ONE ? w - 1 : w;
  const boxes = new Float32Array(t.boxes.length);
  for (let i = 0; i < g; i++) {
    boxes[4 * i] = f(right - t.boxes[4 * i + 2]!);
    boxes[4 * i + 1] = t.boxes[4 * i + 1]!;
    boxes[4 * i + 2] = f(right - t.boxes[4 * i]!);
    boxes[4 * i + 3] = t.boxes[4 * i + 3]!;
  }
  let masks: Uint8Array | undefined;
  if (t.masks) {
    masks = new Uint8Array(t.masks.length);
    for (let r = 0; r < g * h; r++) for (let x = 0; x < w; x++) masks[r * w + x] = t.masks[r * w + (w - 1 - x)]!;
  }
  let keypoints: Float32Array | undefined;
  if (t.keypoints) {
    const map = config.KRCNN.FLIP_MAP;
    const k = config.KRCNN.NUM_KEYPOINTS;
    if (map.length !== k) throw new TargetError(`KRCNN.FLIP_MAP has ${map.length} entries but the model has ${k} keypoints`, { source: 'KRCNN.FLIP_MAP' });
    keypoints = new Float32Array(t.keypoints.length);
    for (let i = 0; i < g; i++) {
      for (let j = 0; j < k; j++) {
        const src = (i * k + map[j]!) * 3;
        const dst = (i * k + j) * 3;
        const v = t.keypoints[src + 2]!;
        if (v === 0) continue;
        keypoints[dst] = f(right - t.keypoints[src]!);
        keypoints[dst + 1] = t.keypoints[src + 1]!;
        keypoints[dst + 2] = v;
      }
    }
  }
  return { boxes, labels: t.labels, ...(masks ? { masks } : {}), ...(keypoints ? { keypoints } : {}) };
}

/**
 * torchvision's training resize of the targets to (h', w'): boxes and keypoints x * f32(w'/w),
 * y * f32(h'/h) (not clipped); masks by nearest neighbour as `F.interpolate(..., scale_factor,
 * recompute_scale_factor=True)`: source index min(floor(dst * f32(in/out)), in - 1).
 */
export function resizeTargets(t: ImageTargets, from: readonly [number, number], to: readonly [number, number], image: number): ResizedTargets {
  const [h, w] = from;
  const [rh, rw] = to;
  const ratioW = f(f(rw) / f(w));
  const ratioH = f(f(rh) / f(h));
  const g = t.labels.length;
  const boxes = new Float32Array(4 * g);
  for (let i = 0; i < 4 * g; i++) boxes[i] = f(t.boxes[i]! * (i % 2 === 0 ? ratioW : ratioH));
  for (let i = 0; i < g; i++) {
    if (!(boxes[4 * i + 2]! > boxes[4 * i]!) || !(boxes[4 * i + 3]! > boxes[4 * i + 1]!)) {
      throw new TargetError(`training targets of image ${image} boxes[${i}]: no area after resizing to ${rw} x ${rh}: [${Array.from(boxes.subarray(4 * i, 4 * i + 4)).join(', ')}]`, {
        source: `image ${image} boxes[${i}]`,
      });
    }
  }
  let masks: Uint8Array | undefined;
  if (t.masks) {
    masks = new Uint8Array(g * rh * rw);
    const sy = f(h / rh);
    const sx = f(w / rw);
    const srcX = Int32Array.from({ length: rw }, (_, x) => Math.min(Math.floor(f(x * sx)), w - 1));
    for (let i = 0; i < g; i++) {
      for (let y = 0; y < rh; y++) {
        const row = (i * h + Math.min(Math.floor(f(y * sy)), h - 1)) * w;
        const out = (i * rh + y) * rw;
        for (let x = 0; x < rw; x++) masks[out + x] = t.masks[row + srcX[x]!]!;
      }
    }
  }
  let keypoints: Float32Array | undefined;
  if (t.keypoints) {
    keypoints = new Float32Array(t.keypoints.length);
    for (let i = 0; i < t.keypoints.length; i += 3) {
      keypoints[i] = f(t.keypoints[i]! * ratioW);
      keypoints[i + 1] = f(t.keypoints[i + 1]! * ratioH);
      keypoints[i + 2] = t.keypoints[i + 2]!;
    }
  }
  return { boxes, labels: t.labels, size: [rh, rw], ...(masks ? { masks } : {}), ...(keypoints ? { keypoints } : {}) };
}
