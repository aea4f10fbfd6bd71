/**
 * Separable bilinear resampling of planar float32 images, with the source-coordinate rules of
 * PyTorch (`interpolate(mode="bilinear", align_corners=False)`, no antialias) and OpenCV
 * (`cv2.resize(INTER_LINEAR)`, Detectron). Each axis gets a precomputed table of two source
 * indices and two weights per output index, so the inner loops are two multiply-adds over typed
 * arrays with no allocation. Like PyTorch's CPU kernel, a row is interpolated horizontally first,
 * then rows are blended vertically.
 */

/** Source indices and weights along one axis: out[o] = in[i0[o]] * w0[o] + in[i1[o]] * w1[o]. */
export interface LinearAxis {
  readonly inSize: number;
  readonly outSize: number;
  readonly i0: Int32Array;
  readonly i1: Int32Array;
  readonly w0: Float32Array;
  readonly w1: Float32Array;
}

const f32 = Math.fround;

function emptyAxis(inSize: number, outSize: number): LinearAxis {
  return { inSize, outSize, i0: new Int32Array(outSize), i1: new Int32Array(outSize), w0: new Float32Array(outSize), w1: new Float32Array(outSize) };
}

/**
 * PyTorch's rule (CPU upsample_bilinear2d, align_corners=False, no explicit scale): scale =
 * float32(in / out); src = scale * (o + 0.5) - 0.5 evaluated in float64 (the kernel's CPU
 * accumulate type) and clamped at 0; i0 = trunc(src), i1 = i0 + 1 unless i0 is the last pixel;
 * w1 = float32(min(src - i0, 1)), w0 = float32(1 - w1). Equal sizes copy. Evaluating src in
 * float32 instead moves the weights by up to half an ulp of src (1.5e-5 at src ~ 200) and the
 * output by ~2e-5; with float64 the fixtures' transform.images agree to one float32 ulp.
 */
export function pytorchLinearAxis(inSize: number, outSize: number): LinearAxis {
  const axis = emptyAxis(inSize, outSize);
  const scale = f32(inSize / outSize);
  for (let o = 0; o < outSize; o++) {
    if (inSize === outSize) {
      axis.i0[o] = o;
      axis.i1[o] = o;
      axis.w0[o] = 1;
      continue;
    }
    const src = Math.max(0, scale * (o + 0.5) - 0.5);
    const i0 = Math.trunc(src);
    const w1 = Math.min(Math.max(f32(src - i0), 0), 1);
    axis.i0[o] = i0;
    axis.i1[o] = i0 < inSize - 1 ? i0 + 1 : i0;
    axis.w1[o] = w1;
    axis.w0[o] = f32(1 - w1);
  }
  return axis;
}

/**
 * OpenCV's rule for `cv2.resize(fx=factor)` (Detectron): src = (o + 0.5) / factor - 0.5 in
 * float64 rounded to float32, i0 = floor(src), w1 = src - i0, with both ends clamped to the edge
 * pixel (weight 0 on the outside neighbour).
 */
export function opencvLinearAxis(inSize: number, outSize: number, factor: number): LinearAxis {
  const axis = emptyAxis(inSize, outSize);
  const inverse = 1 / factor;
  for (let o = 0; o < outSize; o++) {
    const src = f32((o + 0.5) * inverse - 0.5);
    let i0 = Math.floor(src);
    let w1 = f32(src - i0);
    if (i0 < 0) {
      i0 = 0;
      w1 = 0;
    }
    if (i0 >= inSize - 1) {
      i0 = inSize - 1;
      w1 = 0;
    }
    axis.i0[o] = i0;
    axis.i1[o] = Math.min(i0 + 1, inSize - 1);
    axis.w1[o] = w1;
    axis.w0[o] = f32(1 - w1);
  }
  return axis;
}

/** Where {@link resampleBilinear} writes: `dst[offset + c * planeStride + y * rowStride + x]`. */
export interface PlanarTarget {
  readonly data: Float32Array;
  readonly offset: number;
  readonly planeStride: number;
  readonly rowStride: number;
}

/**
 * The vertical pass shared by both resamplers: each output row of a channel blends two rows of the
 * horizontally resampled plane in `scratch` (starting at `tmpPlane`, rows of `outW`).
 */
function verticalPass(scratch: Float32Array, tmpPlane: number, ay: LinearAxis, outW: number, out: Float32Array, outPlane: number, rowStride: number): void {
  const { i0: yi0, i1: yi1, w0: yw0, w1: yw1 } = ay;
  for (let y = 0; y < ay.outSize; y++) {
    const r0 = tmpPlane + yi0[y]! * outW;
    const r1 = tmpPlane + yi1[y]! * outW;
    const wy0 = yw0[y]!;
    const wy1 = yw1[y]!;
    const outRow = outPlane + y * rowStride;
    for (let x = 0; x < outW; x++) out[outRow + x] = scratch[r0 + x]! * wy0 + scratch[r1 + x]! * wy1;
  }
}

/** Which source rows the vertical pass reads (1 = read), so the horizontal pass skips the others. */
function rowsRead(ay: LinearAxis): Uint8Array {
  const needed = new Uint8Array(ay.inSize);
  for (let o = 0; o < ay.outSize; o++) {
    needed[ay.i0[o]!] = 1;
    needed[ay.i1[o]!] = 1;
  }
  return needed;
}

/**
 * Resamples `channels` planes of `src` ([C, ay.inSize, ax.inSize], row-major) to
 * [C, ay.outSize, ax.outSize] written into `dst`. `scratch` (at least C * ay.inSize *
 * ax.outSize floats) holds the horizontally interpolated rows; only rows the vertical pass reads
 * are computed. Each weighted pair is summed in float64 and rounded to float32 once (PyTorch's
 * kernel rounds after each float32 operation, or fuses them where the compiler emits FMA; either
 * way the results agree to an ulp).
 */
export function resampleBilinear(src: Float32Array, channels: number, ay: LinearAxis, ax: LinearAxis, dst: PlanarTarget, scratch: Float32Array): void {
  const inH = ay.inSize;
  const inW = ax.inSize;
  const outW = ax.outSize;
  if (src.length < channels * inH * inW) throw new RangeError(`resampleBilinear: source holds ${src.length} values, need ${channels * inH * inW}`);
  if (scratch.length < channels * inH * outW) throw new RangeError(`resampleBilinear: scratch holds ${scratch.length} values, need ${channels * inH * outW}`);
  const needed = rowsRead(ay);
  // Locals, not property reads, in the hot loops: V8 keeps them in registers.
  const { i0: xi0, i1: xi1, w0: xw0, w1: xw1 } = ax;
  const out = dst.data;
  const { planeStride, rowStride } = dst;
  for (let c = 0; c < channels; c++) {
    const plane = c * inH * inW;
    const tmpPlane = c * inH * outW;
    for (let y = 0; y < inH; y++) {
      if (needed[y] === 0) continue;
      const row = plane + y * inW;
      const tmpRow = tmpPlane + y * outW;
      for (let x = 0; x < outW; x++) scratch[tmpRow + x] = src[row + xi0[x]!]! * xw0[x]! + src[row + xi1[x]!]! * xw1[x]!;
    }
    const outPlane = dst.offset + c * planeStride;
    verticalPass(scratch, tmpPlane, ay, outW, out, outPlane, rowStride);
  }
}

/**
 * {@link resampleBilinear} straight from interleaved 8-bit pixels: network channel c reads source
 * channel `sourceChannel[c]` through `tables[c]` (the normalised float32 value of each 8-bit level),
 * so no normalised copy of the image is made first. The values are those of normalising into a
 * planar buffer and resampling it (the same float32 table values, the same arithmetic), ~2x faster.
 */
export function resampleBilinearRgb8(
  data: Uint8Array,
  sourceChannel: readonly number[],
  tables: readonly Float32Array[],
  ay: LinearAxis,
  ax: LinearAxis,
  dst: PlanarTarget,
  scratch: Float32Array,
): void {
  const channels = tables.length;
  const inH = ay.inSize;
  const inW = ax.inSize;
  const outW = ax.outSize;
  const stride = sourceChannel.length;
  if (data.length < stride * inH * inW) throw new RangeError(`resampleBilinearRgb8: source holds ${data.length} values, need ${stride * inH * inW}`);
  if (scratch.length < channels * inH * outW) throw new RangeError(`resampleBilinearRgb8: scratch holds ${scratch.length} values, need ${channels * inH * outW}`);
  const needed = rowsRead(ay);
  const { w0: xw0, w1: xw1 } = ax;
  // Byte offsets of each output column's two source pixels within a row.
  const xo0 = new Int32Array(outW);
  const xo1 = new Int32Array(outW);
  for (let x = 0; x < outW; x++) {
    xo0[x] = ax.i0[x]! * stride;
    xo1[x] = ax.i1[x]! * stride;
  }
  const out = dst.data;
  const { planeStride, rowStride } = dst;
  for (let c = 0; c < channels; c++) {
    const table = tables[c]!;
    const sc = sourceChannel[c]!;
    const tmpPlane = c * inH * outW;
    for (let y = 0; y < inH; y++) {
      if (needed[y] === 0) continue;
      const row = y * inW * stride + sc;
      const tmpRow = tmpPlane + y * outW;
      for (let x = 0; x < outW; x++) scratch[tmpRow + x] = table[data[row + xo0[x]!]!]! * xw0[x]! + table[data[row + xo1[x]!]!]! * xw1[x]!;
    }
    const outPlane = dst.offset + c * planeStride;
    verticalPass(scratch, tmpPlane, ay, outW, out, outPlane, rowStride);
  }
}
