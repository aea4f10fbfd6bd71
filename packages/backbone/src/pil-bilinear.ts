/**
 * Pillow's `Image.resize(size, Image.BILINEAR)` on an 8-bit RGB image, bit-exact: what Detectron2's
 * `ResizeShortestEdge` does to a uint8 image (`INPUT.RESIZE_RULE: detectron2`).
 *
 * Pillow resamples separably with a triangle filter whose support grows with the downscaling
 * factor (so it antialiases when shrinking), horizontal pass first (only over the rows the
 * vertical pass reads), then vertical. Each pass computes its coefficients in float64, normalises
 * them per output pixel, converts them to fixed point with 22 fractional bits (rounded half away
 * from zero), accumulates `pixel * coefficient` in integers from a bias of 2^21 and keeps the top
 * bits clamped to 0..255 — so the intermediate image between the passes is 8-bit too. Equal sizes
 * are a copy.
 */

/** Fractional bits of Pillow's fixed-point coefficients for 8-bit images (32 - 8 - 2). */
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);
/** Support of Pillow's bilinear (triangle) filter at scale 1. */
const BILINEAR_SUPPORT = 1;

/** Fixed-point coefficients of one axis: output o reads `count[o]` inputs from `start[o]`. */
export interface PilAxis {
  readonly inSize: number;
  readonly outSize: number;
  /** Coefficients per output (the widest window). */
  readonly window: number;
  readonly start: Int32Array;
  readonly count: Int32Array;
  /** `outSize * window` fixed-point coefficients (2^22 = 1). */
  readonly coefficients: Int32Array;
}

function triangle(x: number): number {
  const a = x < 0 ? -x : x;
  return a < 1 ? 1 - a : 0;
}

/**
 * The coefficients Pillow computes for resampling `inSize` samples to `outSize` (whole-image box):
 * scale = in / out, filter scale max(scale, 1), support = 1 * filter scale; output o is centred
 * at (o + 0.5) * scale and reads inputs trunc(centre ± support + 0.5) (clamped to the image), each
 * weighted by triangle((i - centre + 0.5) / filter scale), normalised to sum 1, then fixed point.
 */
export function pilBilinearAxis(inSize: number, outSize: number): PilAxis {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = BILINEAR_SUPPORT * filterScale;
  const window = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const coefficients = new Int32Array(outSize * window);
  const weights = new Float64Array(window);
  const inverse = 1 / filterScale;
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
    const hi = Math.min(Math.trunc(centre + support + 0.5), inSize);
    const n = hi - lo;
    let sum = 0;
    for (let x = 0; x < n; x++) {
      const w = triangle((x + lo - centre + 0.5) * inverse);
      weights[x] = w;
      sum += w;
    }
    for (let x = 0; x < n; x++) {
      const w = sum !== 0 ? weights[x]! / sum : weights[x]!;
      // C's (int)(±0.5 + w * 2^22): rounded half away from zero by truncation.
      coefficients[o * window + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[o] = lo;
    count[o] = n;
  }
  return { inSize, outSize, window, start, count, coefficients };
}

/** Pillow's clip8: the accumulator's integer part (floor), clamped to 0..255. */
function clip8(accumulator: number): number {
  const v = Math.floor(accumulator / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes interleaved 8-bit RGB (`width` x `height`, 3 bytes per pixel) to `outWidth` x
 * `outHeight` exactly as Pillow's BILINEAR resize does. Returns a new interleaved RGB buffer.
 */
export function pilBilinearResizeRgb8(src: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Uint8Array {
  const channels = 3;
  if (src.length !== width * height * channels) throw new RangeError(`pilBilinearResizeRgb8: ${src.length} bytes for a ${width}x${height} RGB image`);
  const needHorizontal = outWidth !== width;
  const needVertical = outHeight !== height;
  const vertical = pilBilinearAxis(height, outHeight);
  // Rows the vertical pass reads: the horizontal pass only resamples those.
  const firstRow = needVertical ? vertical.start[0]! : 0;
  const lastRow = needVertical ? vertical.start[outHeight - 1]! + vertical.count[outHeight - 1]! : height;
  let image = src;
  let imageWidth = width;
  let rowOffset = 0;
  if (needHorizontal) {
    const horizontal = pilBilinearAxis(width, outWidth);
    const rows = needVertical ? lastRow - firstRow : height;
    const from = needVertical ? firstRow : 0;
    const out = new Uint8Array(rows * outWidth * channels);
    const { start, count, coefficients, window } = horizontal;
    for (let y = 0; y < rows; y++) {
      const rowIn = (y + from) * width * channels;
      const rowOut = y * outWidth * channels;
      for (let x = 0; x < outWidth; x++) {
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        const k = x * window;
        let p = rowIn + start[x]! * channels;
        for (let i = 0; i < count[x]!; i++, p += channels) {
          const c = coefficients[k + i]!;
          s0 += src[p]! * c;
          s1 += src[p + 1]! * c;
          s2 += src[p + 2]! * c;
        }
        const q = rowOut + x * channels;
        out[q] = clip8(s0);
        out[q + 1] = clip8(s1);
        out[q + 2] = clip8(s2);
      }
    }
    image = out;
    imageWidth = outWidth;
    rowOffset = from;
  }
  if (!needVertical) return image === src ? src.slice() : image;
  const out = new Uint8Array(outHeight * imageWidth * channels);
  const { start, count, coefficients, window } = vertical;
  const stride = imageWidth * channels;
  for (let y = 0; y < outHeight; y++) {
    const k = y * window;
    const first = start[y]! - rowOffset;
    const rowOut = y * stride;
    for (let q = 0; q < stride; q++) {
      let s = HALF;
      let p = first * stride + q;
      for (let i = 0; i < count[y]!; i++, p += stride) s += image[p]! * coefficients[k + i]!;
      out[rowOut + q] = clip8(s);
    }
  }
  return out;
}
