/**
 * Reading what host post-processors add to {@link ImageDetections.extras}: pasted masks
 * (`masks`) and decoded keypoints (`keypoints`, `keypoints_resized`, `keypoints_scores`). The
 * readers accept the layouts a post-processor may reasonably produce (@rcnn/mask-head's
 * `InstanceMasks`, a host tensor, a typed array, one array per detection) and check the sizes, so
 * formats, dumps and drawings do not depend on one head's internal choice.
 */
import type { ImageDetections } from '@rcnn/core';
import { encodeRle, rleToString } from './rle.js';

/** Keys of {@link ImageDetections.extras} the runtime reads. */
export const EXTRAS = {
  /** Pasted masks of the image's detections: [D,1,H,W] (or [D,H,W]) uint8 0/1, bool, or float32 probabilities. */
  masks: 'masks',
  /** Keypoints [D,K,3] float32 (x, y, visibility) in original-image pixels. */
  keypoints: 'keypoints',
  /** Keypoints [D,K,3] in resized-image pixels. */
  keypointsResized: 'keypoints_resized',
  /** Keypoint scores [D,K] float32 (heatmap value at the argmax). */
  keypointScores: 'keypoints_scores',
} as const;

type Numeric = Float32Array | Uint8Array | Float64Array | Int32Array;

function isNumeric(v: unknown): v is Numeric {
  return v instanceof Float32Array || v instanceof Uint8Array || v instanceof Float64Array || v instanceof Int32Array;
}

/** The flat data of an extra: a host tensor's data, a typed array, an array of per-detection arrays, or `{data}`-like objects. */
function flatData(value: unknown): { data: Numeric; float: boolean } | undefined {
  if (value === undefined || value === null) return undefined;
  if (isNumeric(value)) return { data: value, float: value instanceof Float32Array || value instanceof Float64Array };
  if (Array.isArray(value)) {
    const parts = value.map(flatData);
    if (parts.some((p) => p === undefined)) return undefined;
    const list = parts as { data: Numeric; float: boolean }[];
    const float = list.some((p) => p.float);
    const total = list.reduce((a, p) => a + p.data.length, 0);
    const out = float ? new Float32Array(total) : new Uint8Array(total);
    let o = 0;
    for (const p of list) {
      out.set(p.data, o);
      o += p.data.length;
    }
    return { data: out, float };
  }
  if (typeof value === 'object') {
    const v = value as { data?: unknown; binary?: unknown; masks?: unknown; probs?: unknown };
    return flatData(v.binary ?? v.masks ?? v.data ?? v.probs);
  }
  return undefined;
}

/** The pasted masks of one image, whatever form the post-processor keeps them in. */
export interface ImageMasks {
  readonly count: number;
  /** Original image height and width. */
  readonly height: number;
  readonly width: number;
  /** All binary masks, [D*H*W] uint8 0/1, row-major per detection (computed once, on first use). */
  binary(): Uint8Array;
  /** COCO RLE (pycocotools' compressed string) of detection `i`. */
  rle(i: number): { readonly size: readonly [number, number]; readonly counts: string };
  /** Foreground pixels of detection `i`. */
  area(i: number): number;
}

/**
 * A mask set as @rcnn/mask-head's `InstanceMasks` presents it: per-detection crops that give full
 * binary masks and RLEs on request (duck-typed: the runtime does not depend on any head).
 */
interface MaskSet {
  readonly count: number;
  readonly height: number;
  readonly width: number;
  binaryTensor(): { readonly dims: readonly number[]; readonly data: unknown };
  rle?(i: number): { readonly size: readonly [number, number]; readonly counts: string };
  area?(i: number): number;
}

function isMaskSet(v: unknown): v is MaskSet {
  const m = v as Partial<MaskSet> | null;
  return typeof m === 'object' && m !== null && typeof m.binaryTensor === 'function' && typeof m.count === 'number';
}

/** Masks backed by one flat [D*H*W] binary array. */
function flatMasks(binary: Uint8Array, count: number, height: number, width: number): ImageMasks {
  const plane = height * width;
  return {
    count,
    height,
    width,
    binary: () => binary,
    rle(i) {
      const r = encodeRle(binary, height, width, i * plane);
      return { size: r.size, counts: rleToString(r.counts) };
    },
    area(i) {
      let n = 0;
      for (let p = i * plane; p < (i + 1) * plane; p++) n += binary[p];
      return n;
    },
  };
}

/**
 * The masks of `det`, or undefined when no post-processor added masks. Accepts a mask set
 * (`InstanceMasks`), a [D,1,H,W] / [D,H,W] tensor or typed array of 0/1 values or of
 * probabilities (binarised with `> threshold`, MRCNN.THRESH_BINARIZE, as torchvision does), or
 * one array per detection. A size that is not D x H x W is an error naming the sizes.
 */
export function readMasks(det: ImageDetections, threshold: number): ImageMasks | undefined {
  const value = det.extras.get(EXTRAS.masks);
  const [height, width] = det.originalSize;
  const count = det.scores.length;
  const check = (n: number): void => {
    if (n !== count * height * width) {
      throw new RangeError(`extras "${EXTRAS.masks}" holds ${n} values, expected ${count} x ${height} x ${width} (detections x original size)`);
    }
  };
  if (isMaskSet(value)) {
    if (value.count !== count || value.height !== height || value.width !== width) {
      throw new RangeError(`extras "${EXTRAS.masks}" has ${value.count} masks of ${value.height} x ${value.width}, expected ${count} of ${height} x ${width}`);
    }
    let binary: Uint8Array | undefined;
    const getBinary = (): Uint8Array => {
      if (!binary) {
        const t = value.binaryTensor();
        if (!(t.data instanceof Uint8Array)) throw new RangeError(`extras "${EXTRAS.masks}".binaryTensor() is not uint8`);
        check(t.data.length);
        binary = t.data;
      }
      return binary;
    };
    const fallback = (): ImageMasks => flatMasks(getBinary(), count, height, width);
    return {
      count,
      height,
      width,
      binary: getBinary,
      rle: (i) => (value.rle ? value.rle(i) : fallback().rle(i)),
      area: (i) => (value.area ? value.area(i) : fallback().area(i)),
    };
  }
  const found = flatData(value);
  if (!found) return undefined;
  check(found.data.length);
  let binary: Uint8Array;
  if (found.float) {
    binary = new Uint8Array(found.data.length);
    for (let i = 0; i < binary.length; i++) binary[i] = found.data[i] > threshold ? 1 : 0;
  } else if (found.data instanceof Uint8Array) {
    binary = found.data;
  } else {
    binary = Uint8Array.from(found.data, (v) => (v > 0 ? 1 : 0));
  }
  return flatMasks(binary, count, height, width);
}

/** Keypoints of one image. */
export interface ImageKeypoints {
  /** [D*K*3] (x, y, visibility) in original-image pixels. */
  readonly keypoints: Float32Array;
  /** [D*K*3] in resized-image pixels, when the post-processor provides them. */
  readonly resized: Float32Array | undefined;
  /** [D*K], when provided. */
  readonly scores: Float32Array | undefined;
  readonly count: number;
  readonly perInstance: number;
}

function asFloat32(v: Numeric): Float32Array {
  return v instanceof Float32Array ? v : Float32Array.from(v);
}

/** The keypoints of `det` (K per detection), or undefined when no post-processor added them. */
export function readKeypoints(det: ImageDetections, k: number): ImageKeypoints | undefined {
  const raw = det.extras.get(EXTRAS.keypoints);
  const found = flatData(raw);
  if (!found) return undefined;
  const count = det.scores.length;
  const check = (data: Numeric, per: number, name: string): Float32Array => {
    if (data.length !== count * k * per) throw new RangeError(`extras "${name}" holds ${data.length} values, expected ${count} x ${k} x ${per}`);
    return asFloat32(data);
  };
  // A post-processor may put everything in one object: {keypoints, resized, scores}.
  const obj = typeof raw === 'object' && raw !== null && !isNumeric(raw) && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  const resized = flatData(det.extras.get(EXTRAS.keypointsResized) ?? obj.resized ?? obj.keypointsResized);
  const scores = flatData(det.extras.get(EXTRAS.keypointScores) ?? obj.scores);
  const main = flatData(obj.keypoints ?? raw)!;
  return {
    keypoints: check(main.data, 3, EXTRAS.keypoints),
    resized: resized ? check(resized.data, 3, EXTRAS.keypointsResized) : undefined,
    scores: scores ? check(scores.data, 1, EXTRAS.keypointScores) : undefined,
    count,
    perInstance: k,
  };
}
