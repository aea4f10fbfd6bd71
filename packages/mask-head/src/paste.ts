/**
 * torchvision's `paste_masks_in_image` for one detection, on the host, computing only the part
 * of the resized mask that lands inside the image.
 *
 * Semantics (torchvision 0.14 `expand_masks` / `expand_boxes` / `paste_mask_in_image` on CPU,
 * PyTorch 1.13 `upsample_bilinear2d`):
 * - the M x M mask is zero-padded by `padding` on each side;
 * - the box is expanded about its centre by `(M + 2p) / M` in float32, then cast to integers by
 *   truncation toward zero;
 * - the padded mask is resized bilinearly (align_corners=False, no antialias) to
 *   `h = max(y2 - y1 + 1, 1)` by `w = max(x2 - x1 + 1, 1)`;
 * - it is placed with its top-left at (x1, y1), clipped to the image.
 *
 * The resize follows PyTorch's CPU kernel number for number: float32 scale `in / out`, source
 * index `max(scale * (o + 0.5) - 0.5, 0)`, `lambda1 = src - trunc(src)`, and (because a
 * [1,1,H,W] tensor counts as channels-last contiguous, so 1.13 takes its channels-last kernel)
 * `out = h0*w0*a00 + h0*w1*a01 + h1*w0*a10 + h1*w1*a11` evaluated left to right in float32.
 * Every float32 step is `Math.fround` of an exact double result, which rounds the same way.
 */
import { InputError } from '@rcnn/core/web';

const f32 = Math.fround;

/** Where one detection's mask goes: torchvision's integer box and its part inside the image. */
export interface PasteGeometry {
  /** Expanded integer box (x1, y1, x2, y2) in original-image pixels; may reach outside the image. */
  readonly box: readonly [number, number, number, number];
  /** Size of the resized mask: max(x2 - x1 + 1, 1) by max(y2 - y1 + 1, 1). */
  readonly maskWidth: number;
  readonly maskHeight: number;
  /** Left/top image pixel of the part inside the image. */
  readonly x: number;
  readonly y: number;
  /** Size of the part inside the image (0 when the box misses the image). */
  readonly width: number;
  readonly height: number;
}

/** Options shared by every paste of one image. */
export interface PasteOptions {
  /** M of the M x M mask probabilities (MRCNN.RESOLUTION). */
  readonly resolution: number;
  /** Zero padding added on each side before pasting (MRCNN.PASTE_PADDING). */
  readonly padding: number;
  /** Original image height and width. */
  readonly imageHeight: number;
  readonly imageWidth: number;
}

// Box coordinates beyond this cannot come from a detector and would lose integer precision.
const MAX_COORDINATE = 2 ** 31;

/**
 * torchvision `expand_boxes(box, (M + 2p) / M)` then `.to(int64)`: half-sizes and centres in
 * float32, the Python-float scale applied as float32, truncation toward zero.
 */
export function expandBox(boxes: ArrayLike<number>, offset: number, resolution: number, padding: number): [number, number, number, number] {
  const scale = f32((resolution + 2 * padding) / resolution);
  const x1 = f32(boxes[offset]!);
  const y1 = f32(boxes[offset + 1]!);
  const x2 = f32(boxes[offset + 2]!);
  const y2 = f32(boxes[offset + 3]!);
  for (const v of [x1, y1, x2, y2]) {
    if (!Number.isFinite(v) || Math.abs(v) >= MAX_COORDINATE) {
      throw new InputError(`mask paste: box [${x1}, ${y1}, ${x2}, ${y2}] has a coordinate that is not finite or beyond ±2^31`);
    }
  }
  const wHalf = f32(f32(f32(x2 - x1) * 0.5) * scale);
  const hHalf = f32(f32(f32(y2 - y1) * 0.5) * scale);
  const xc = f32(f32(x2 + x1) * 0.5);
  const yc = f32(f32(y2 + y1) * 0.5);
  // `+ 0` turns the -0 that truncating a small negative number gives into 0.
  const toInt64 = (v: number): number => Math.trunc(v) + 0;
  return [toInt64(f32(xc - wHalf)), toInt64(f32(yc - hHalf)), toInt64(f32(xc + wHalf)), toInt64(f32(yc + hHalf))];
}

/** The {@link PasteGeometry} of box `index` of `boxes` ([D*4] x1,y1,x2,y2, original pixels). */
export function pasteGeometry(boxes: ArrayLike<number>, index: number, o: PasteOptions): PasteGeometry {
  const box = expandBox(boxes, 4 * index, o.resolution, o.padding);
  const [bx1, by1, bx2, by2] = box;
  const maskWidth = Math.max(bx2 - bx1 + 1, 1);
  const maskHeight = Math.max(by2 - by1 + 1, 1);
  // torchvision: x_0 = max(x1, 0), x_1 = min(x2 + 1, W); the resized mask is read from x_0 - x1.
  // Its right end is x1 + maskWidth, which equals x2 + 1 except for degenerate boxes (w clamped to
  // 1); clipping to the mask too keeps those in bounds, where torchvision would fail on shapes.
  const x0 = Math.max(bx1, 0);
  const y0 = Math.max(by1, 0);
  const x1 = Math.min(bx2 + 1, bx1 + maskWidth, o.imageWidth);
  const y1 = Math.min(by2 + 1, by1 + maskHeight, o.imageHeight);
  if (x1 <= x0 || y1 <= y0) return { box, maskWidth, maskHeight, x: 0, y: 0, width: 0, height: 0 };
  return { box, maskWidth, maskHeight, x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** Source indices and weights of `count` output positions from `start` along one axis. */
interface AxisWeights {
  readonly i0: Int32Array;
  readonly i1: Int32Array;
  readonly l0: Float32Array;
  readonly l1: Float32Array;
}

/** PyTorch's `compute_source_index_and_lambda` (align_corners=False) for outputs start..start+count-1. */
function axisWeights(inSize: number, outSize: number, start: number, count: number): AxisWeights {
  const i0 = new Int32Array(count);
  const i1 = new Int32Array(count);
  const l0 = new Float32Array(count);
  const l1 = new Float32Array(count);
  const scale = f32(inSize / outSize);
  for (let k = 0; k < count; k++) {
    const o = start + k;
    if (inSize === outSize) {
      // PyTorch copies when the size is unchanged.
      i0[k] = o;
      i1[k] = o;
      l0[k] = 1;
      l1[k] = 0;
      continue;
    }
    let src = f32(f32(scale * f32(o + 0.5)) - 0.5);
    if (src < 0) src = 0;
    const idx = Math.trunc(src);
    i0[k] = idx;
    i1[k] = idx < inSize - 1 ? idx + 1 : idx;
    const lambda1 = Math.min(Math.max(f32(src - idx), 0), 1);
    l1[k] = lambda1;
    l0[k] = f32(1 - lambda1);
  }
  return { i0, i1, l0, l1 };
}

/**
 * Pastes one detection's M x M probabilities (`probs` from `offset`) and returns the pasted
 * probabilities over its {@link PasteGeometry} region (row-major height x width).
 * `scratch` (length (M + 2p)^2) is reused between calls to avoid an allocation per detection.
 */
export function pasteMask(probs: ArrayLike<number>, offset: number, geometry: PasteGeometry, o: PasteOptions, scratch?: Float32Array): Float32Array {
  const { width, height } = geometry;
  const out = new Float32Array(width * height);
  if (width === 0 || height === 0) return out;
  const m = o.resolution;
  const p = o.padding;
  const side = m + 2 * p;
  const padded = scratch && scratch.length === side * side ? scratch : new Float32Array(side * side);
  padded.fill(0);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < m; c++) padded[(r + p) * side + c + p] = probs[offset + r * m + c]!;
  }
  // Output positions inside the resized mask that fall on the image.
  const rows = axisWeights(side, geometry.maskHeight, geometry.y - geometry.box[1], height);
  const cols = axisWeights(side, geometry.maskWidth, geometry.x - geometry.box[0], width);
  // Plain locals for the hot loop (property loads per pixel cost as much as the arithmetic).
  const { i0: left0, i1: right0, l0: w0s, l1: w1s } = cols;
  let q = 0;
  for (let r = 0; r < height; r++) {
    const top = rows.i0[r]! * side;
    const bottom = rows.i1[r]! * side;
    const h0 = rows.l0[r]!;
    const h1 = rows.l1[r]!;
    for (let c = 0; c < width; c++) {
      const left = left0[c]!;
      const right = right0[c]!;
      const w0 = w0s[c]!;
      const w1 = w1s[c]!;
      let v = f32(f32(h0 * w0) * padded[top + left]!);
      v = f32(v + f32(f32(h0 * w1) * padded[top + right]!));
      v = f32(v + f32(f32(h1 * w0) * padded[bottom + left]!));
      out[q++] = v + f32(f32(h1 * w1) * padded[bottom + right]!); // the store rounds to float32
    }
  }
  return out;
}
