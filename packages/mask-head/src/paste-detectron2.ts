/**
 * Detectron2's `paste_masks_in_image` for one detection (`MRCNN.PASTE_METHOD: detectron2`), on the
 * host: the M x M probabilities are sampled with `grid_sample` (bilinear, zero padding,
 * align_corners=False) at every image pixel centre of the box's bounding region, without the
 * padding and integer box torchvision uses.
 *
 * Semantics (Detectron2 `_do_paste_mask` on CPU, one mask per chunk with `skip_empty`, PyTorch 1.13
 * CPU `grid_sampler_2d`), all in float32:
 * - region: x from max(floor(x1) - 1, 0) to min(ceil(x2) + 1, W) (exclusive), y likewise; pixels
 *   outside it are background;
 * - pixel centre `c = i + 0.5`, grid coordinate `g = (c - x1) / (x2 - x1) * 2 - 1`;
 * - grid_sample unnormalises `(g + 1) * (M / 2) - 0.5`, takes floor neighbours with weights
 *   `(1 - dx)(1 - dy)`, … (neighbours outside the M x M map count as 0) and sums
 *   `nw + ne + sw + se` left to right;
 * - foreground where the sample is >= MRCNN.THRESH_BINARIZE.
 */
import { InputError } from '@rcnn/core/web';
import type { PasteGeometry } from './paste.js';

const f32 = Math.fround;

/** Image size and mask resolution of one image's pastes. */
export interface Detectron2PasteOptions {
  /** M of the M x M mask probabilities (MRCNN.RESOLUTION). */
  readonly resolution: number;
  readonly imageHeight: number;
  readonly imageWidth: number;
}

/** The pixel region Detectron2 samples for box `index` of `boxes` (original-image pixels). */
export function detectron2PasteGeometry(boxes: ArrayLike<number>, index: number, o: Detectron2PasteOptions): PasteGeometry {
  const [x1, y1, x2, y2] = [f32(boxes[4 * index]!), f32(boxes[4 * index + 1]!), f32(boxes[4 * index + 2]!), f32(boxes[4 * index + 3]!)];
  if (![x1, y1, x2, y2].every(Number.isFinite)) throw new InputError(`mask paste: box ${index} [${x1}, ${y1}, ${x2}, ${y2}] is not finite`);
  const left = Math.max(Math.floor(x1) - 1, 0);
  const top = Math.max(Math.floor(y1) - 1, 0);
  const right = Math.min(Math.ceil(x2) + 1, o.imageWidth);
  const bottom = Math.min(Math.ceil(y2) + 1, o.imageHeight);
  const width = Math.max(right - left, 0);
  const height = Math.max(bottom - top, 0);
  return { box: [left, top, right, bottom], maskWidth: width, maskHeight: height, x: left, y: top, width, height };
}

/** Source coordinate of each pixel of one axis in the M-sample map (grid_sample's unnormalised x). */
function sourceCoordinates(start: number, count: number, lo: number, hi: number, resolution: number): Float32Array {
  const out = new Float32Array(count);
  const span = f32(hi - lo);
  const half = f32(resolution / 2);
  for (let i = 0; i < count; i++) {
    const centre = f32(start + i + 0.5);
    const grid = f32(f32(f32(f32(centre - lo) / span) * 2) - 1);
    out[i] = f32(f32(f32(grid + 1) * half) - 0.5);
  }
  return out;
}

/**
 * Detectron2-pasted probabilities of detection `index` over its region (row-major
 * `geometry.height` x `geometry.width`); `maskProbs` holds D x M x M values.
 */
export function pasteMaskDetectron2(maskProbs: Float32Array, boxes: ArrayLike<number>, index: number, geometry: PasteGeometry, resolution: number): Float32Array {
  const m = resolution;
  const base = index * m * m;
  const [x1, y1, x2, y2] = [f32(boxes[4 * index]!), f32(boxes[4 * index + 1]!), f32(boxes[4 * index + 2]!), f32(boxes[4 * index + 3]!)];
  const xs = sourceCoordinates(geometry.x, geometry.width, x1, x2, m);
  const ys = sourceCoordinates(geometry.y, geometry.height, y1, y2, m);
  const out = new Float32Array(geometry.width * geometry.height);
  const at = (r: number, c: number): number => (r >= 0 && r < m && c >= 0 && c < m ? maskProbs[base + r * m + c]! : 0);
  for (let r = 0; r < geometry.height; r++) {
    const y = ys[r]!;
    const yn = Math.floor(y);
    const n = f32(y - yn);
    const s = f32(1 - n);
    for (let c = 0; c < geometry.width; c++) {
      const x = xs[c]!;
      const xw = Math.floor(x);
      const w = f32(x - xw);
      const e = f32(1 - w);
      const nw = f32(s * e);
      const ne = f32(s * w);
      const sw = f32(n * e);
      const se = f32(n * w);
      let v = f32(at(yn, xw) * nw);
      v = f32(v + f32(at(yn, xw + 1) * ne));
      v = f32(v + f32(at(yn + 1, xw) * sw));
      v = f32(v + f32(at(yn + 1, xw + 1) * se));
      out[r * geometry.width + c] = v;
    }
  }
  return out;
}

/**
 * The strict threshold equal to Detectron2's inclusive one on float32 probabilities: `p >= t`
 * (torch compares with `t` as float32) is `p > t'` with `t'` the largest float32 below `f32(t)`.
 */
export function inclusiveThreshold(threshold: number): number {
  const t = f32(threshold);
  if (t <= 0) return t === 0 ? -Number.MIN_VALUE : t;
  const bits = new Float32Array([t]);
  const ints = new Uint32Array(bits.buffer);
  ints[0]! -= 1;
  return bits[0]!;
}
