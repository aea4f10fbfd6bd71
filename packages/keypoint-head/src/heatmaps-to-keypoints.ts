/**
 * torchvision's `heatmaps_to_keypoints` + `resize_keypoints` as a host post-processor: each
 * detection's K heatmaps are bicubic-resized to the size of its box (in resized-image pixels), the
 * first maximum of each becomes a keypoint, and keypoints are scaled back to the original image.
 * The resize-and-argmax is {@link bicubicArgmax}: exact, but it never materialises the resized map.
 * Each image's result is one core `KeypointSet` in `ImageDetections.extras` under core's
 * `EXTRA_KEYS.keypoints` (`getExtra(image, EXTRA_KEYS.keypoints)`).
 */
import {
  DETECTION_OUTPUTS,
  EXTRA_KEYS,
  type HostPostprocessor,
  type ImageDetections,
  InputError,
  type RawOutputs,
  type RcnnConfig,
  keypointSet,
  setExtra,
} from '@rcnn/core/web';
import type { Implementation } from '@rcnn/core';
import { ArgmaxWorkspace, type CubicAxis, bicubicArgmax, cubicAxis } from './bicubic-argmax.js';

/** Registry name of the keypoint decoder (slot host-postprocessor), as a keypoint head names it. */
export const KEYPOINT_DECODER = 'heatmaps_to_keypoints';

const f32 = Math.fround;

/** Keypoints decoded from a block of heatmap rows. */
export interface DecodedKeypoints {
  /** [n*K*3] (x, y, 1) in the boxes' coordinates (resized-image pixels). */
  readonly keypoints: Float32Array;
  /** [n*K] value of the resized heatmap at each keypoint. */
  readonly scores: Float32Array;
}

/** Options of {@link decodeHeatmaps}. */
export interface DecodeOptions {
  /** Box width/height are clamped to at least this before the resize (torchvision: 1; KRCNN.HEATMAP_MIN_BOX_SIZE). */
  readonly minBoxSize: number;
  /**
   * Third keypoint column (KRCNN.KEYPOINT_SCORE): `torchvision` 1 (visibility, default);
   * `detectron2` Detectron2's keypoint score, {@link detectron2KeypointScore}.
   */
  readonly score?: 'torchvision' | 'detectron2';
}

/**
 * Detectron2's keypoint score (`heatmaps_to_keypoints`, the column `pred_keypoints[:, :, 2]`
 * holds): the spatial softmax of the resized heatmap at its maximum, normalised over the
 * low-resolution map, `exp(max - max) / sum(exp(map - max))` = `1 / sum(exp(map - max))` where
 * `max` is the resized map's maximum and the sum runs over the H x W heatmap. It can exceed 1.
 */
export function detectron2KeypointScore(heatmaps: Float32Array, offset: number, size: number, resizedMax: number): number {
  let sum = 0;
  for (let p = offset; p < offset + size; p++) sum += f32(Math.exp(f32(heatmaps[p]! - resizedMax)));
  return f32(1 / f32(sum));
}

/**
 * Decodes heatmap rows `[start, start + n)` of `heatmaps` ([D,K,H,W] float32, row-major) against
 * `boxes` ([n*4] x1,y1,x2,y2): torchvision 0.14 `heatmaps_to_keypoints` in float32, i.e. per box
 * w = max(x2 - x1, min), h likewise; resize bicubic to (ceil(h), ceil(w)); first argmax;
 * x = (ix + 0.5) * (w / ceil(w)) + x1, y likewise; score = the resized value there.
 */
export function decodeHeatmaps(
  heatmaps: Float32Array,
  dims: readonly number[],
  start: number,
  boxes: ArrayLike<number>,
  n: number,
  options: DecodeOptions,
): DecodedKeypoints {
  // NaN when dims is not [R, K, H, W], refused just below (the message computes with them).
  const [, k = NaN, inH = NaN, inW = NaN] = dims;
  if (dims.length !== 4 || heatmaps.length < (start + n) * k * inH * inW || boxes.length < 4 * n) {
    throw new InputError(
      `keypoint decoding: rows [${start}, ${start + n}) need ${(start + n) * k * inH * inW} heatmap values of [${dims.join(', ')}] and ${4 * n} box coordinates, got ${heatmaps.length} and ${boxes.length}`,
    );
  }
  const keypoints = new Float32Array(n * k * 3);
  const scores = new Float32Array(n * k);
  const workspace = new ArgmaxWorkspace();
  const minSize = f32(options.minBoxSize);
  // Boxes of one image often share a width or height: reuse their sampling plans.
  const rowPlans = new Map<number, CubicAxis>();
  const colPlans = new Map<number, CubicAxis>();
  const plan = (cache: Map<number, CubicAxis>, inSize: number, outSize: number): CubicAxis => {
    let p = cache.get(outSize);
    if (!p) {
      p = cubicAxis(inSize, outSize);
      cache.set(outSize, p);
    }
    return p;
  };
  for (let i = 0; i < n; i++) {
    const x1 = f32(boxes[4 * i]!);
    const y1 = f32(boxes[4 * i + 1]!);
    const x2 = f32(boxes[4 * i + 2]!);
    const y2 = f32(boxes[4 * i + 3]!);
    if (![x1, y1, x2, y2].every(Number.isFinite)) {
      throw new InputError(`keypoint decoding: detection ${start + i} has a non-finite box (${x1}, ${y1}, ${x2}, ${y2})`);
    }
    // torch: widths.clamp(min=1) keeps NaN-free float32 values; ceil gives the resized map size.
    const width = Math.max(f32(x2 - x1), minSize);
    const height = Math.max(f32(y2 - y1), minSize);
    const outW = Math.ceil(width);
    const outH = Math.ceil(height);
    const widthCorrection = f32(width / outW);
    const heightCorrection = f32(height / outH);
    const rows = plan(rowPlans, inH, outH);
    const cols = plan(colPlans, inW, outW);
    for (let q = 0; q < k; q++) {
      const offset = ((start + i) * k + q) * inH * inW;
      const best = bicubicArgmax(heatmaps, offset, rows, cols, workspace);
      const o = (i * k + q) * 3;
      keypoints[o] = f32(f32(f32(best.x + 0.5) * widthCorrection) + x1);
      keypoints[o + 1] = f32(f32(f32(best.y + 0.5) * heightCorrection) + y1);
      keypoints[o + 2] = options.score === 'detectron2' ? detectron2KeypointScore(heatmaps, offset, inH * inW, best.value) : 1;
      scores[i * k + q] = best.value;
    }
  }
  return { keypoints, scores };
}

/**
 * torchvision `resize_keypoints`: x *= f32(original w) / f32(resized w), y likewise, in float32;
 * the visibility column is copied. Returns a new array.
 */
export function resizeKeypoints(keypoints: Float32Array, resizedSize: readonly [number, number], originalSize: readonly [number, number]): Float32Array {
  const ratioH = f32(f32(originalSize[0]) / f32(resizedSize[0]));
  const ratioW = f32(f32(originalSize[1]) / f32(resizedSize[1]));
  const out = new Float32Array(keypoints.length);
  for (let i = 0; i < keypoints.length; i += 3) {
    out[i] = f32(keypoints[i]! * ratioW);
    out[i + 1] = f32(keypoints[i + 1]! * ratioH);
    out[i + 2] = keypoints[i + 2]!;
  }
  return out;
}

function checkHeatmaps(outputs: RawOutputs, config: RcnnConfig): { data: Float32Array; dims: readonly number[] } {
  const name = DETECTION_OUTPUTS.keypointHeatmaps;
  const t = outputs.get(name);
  if (!t) throw new InputError(`keypoint decoding needs the model output "${name}", which is missing (outputs: ${[...outputs.keys()].join(', ')})`);
  if (t.dtype !== 'float32' || t.dims.length !== 4) {
    throw new InputError(`"${name}" must be float32 [D,K,H,W], got ${t.dtype} [${t.dims.join(', ')}]`);
  }
  const [, k, h, w] = t.dims as readonly [number, number, number, number]; // rank checked just above
  if (k !== config.KRCNN.NUM_KEYPOINTS) {
    throw new InputError(`"${name}" has ${k} keypoints per detection but KRCNN.NUM_KEYPOINTS is ${config.KRCNN.NUM_KEYPOINTS}`, {
      hint: 'the config does not match the model',
    });
  }
  if (h < 1 || w < 1) throw new InputError(`"${name}" has empty heatmaps [${t.dims.join(', ')}]`);
  return { data: t.data as Float32Array, dims: t.dims };
}

/**
 * Host post-processor `heatmaps_to_keypoints`: reads `det.keypoint_heatmaps` [D,K,H,W] and each
 * image's `boxesResized`, and stores a `KeypointSet` under `EXTRA_KEYS.keypoints` on every image:
 * keypoints in original and resized pixels (visibility 1) and the resized heatmap's logit at each.
 */
export const heatmapsToKeypoints: HostPostprocessor = {
  apply(outputs: RawOutputs, images: readonly ImageDetections[], rows: readonly (readonly [number, number])[], config: RcnnConfig): void {
    const { data, dims } = checkHeatmaps(outputs, config);
    if (rows.length !== images.length) throw new InputError(`keypoint decoding got ${images.length} images but ${rows.length} row ranges`);
    const total = dims[0]!;
    images.forEach((image, i) => {
      const [start, end] = rows[i]!;
      const n = end - start;
      if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end >= start && end <= total)) {
        throw new InputError(`keypoint decoding: rows [${start}, ${end}) of image ${image.imageIndex} are outside the ${total} heatmaps`);
      }
      if (image.boxesResized.length !== 4 * n) {
        throw new InputError(`keypoint decoding: image ${image.imageIndex} has ${image.boxesResized.length / 4} boxes but rows [${start}, ${end})`);
      }
      const decoded = decodeHeatmaps(data, dims, start, image.boxesResized, n, { minBoxSize: config.KRCNN.HEATMAP_MIN_BOX_SIZE, score: config.KRCNN.KEYPOINT_SCORE });
      const keypoints = resizeKeypoints(decoded.keypoints, image.resizedSize, image.originalSize);
      setExtra(image, EXTRA_KEYS.keypoints, keypointSet(n, dims[1]!, { keypoints, keypointsResized: decoded.keypoints, scores: decoded.scores }));
    });
  },
};

/** Registry entry of the keypoint decoder (slot host-postprocessor). */
export const HEATMAPS_TO_KEYPOINTS: Implementation<HostPostprocessor> = {
  name: KEYPOINT_DECODER,
  provider: '@rcnn/keypoint-head',
  description: "torchvision heatmaps_to_keypoints + resize_keypoints: exact bicubic-resize argmax per keypoint, scaled to the original image",
  value: heatmapsToKeypoints,
};
