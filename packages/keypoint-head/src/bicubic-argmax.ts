/**
 * The argmax of a bicubic resize, computed exactly as PyTorch 1.13's CPU `upsample_bicubic2d`
 * (align_corners=False, A = -0.75, float32 arithmetic) would compute it, without resizing the whole map.
 *
 * torchvision's `heatmaps_to_keypoints` resizes every 56x56 heatmap to the size of its box (often
 * hundreds of pixels a side) only to take one argmax. Here the resize is organised in *cells*: all
 * output pixels whose source coordinate has the same floor read the same 4x4 input taps and
 * differ only by their weights. For each cell an upper bound of the interpolant is derived from its
 * 4x4 neighbourhood and the range of the weights over the cell; a cell is evaluated pixel by pixel
 * (with the exact float32 operation order of PyTorch's kernel) only when its bound can reach the
 * best value found so far, seeded around the coarse map's maximum. Ties keep the first pixel in
 * row-major order, as `argmax` does, so the result is bit-for-bit the one of resize-then-argmax.
 */

const f32 = Math.fround;

/** PyTorch's cubic convolution coefficient (`get_cubic_upsample_coefficients`, A = -0.75). */
export const PYTORCH_CUBIC_A = -0.75;

/**
 * Relative slack added to every bound: float32 evaluation of 16 products and 6 sums can exceed the
 * exact value of the same float weights by at most ~10 ulp of sum(|w|·|v|) (about 6e-7); 4e-6 keeps a
 * wide margin, so pruning never discards a pixel the float32 kernel would rank first.
 */
const BOUND_SLACK = 4e-6;

/**
 * Cost of bounding one candidate cell in units of one pixel of {@link denseBicubicArgmax}'s passes
 * (measured on the R-50-FPN perf case's 1649 heatmaps: ~0.2 µs per candidate, ~6 ns per dense pixel).
 */
const CANDIDATE_COST = 32;

/**
 * How one axis of a bicubic resize samples its input, and the cells of that axis: runs of output
 * indices that share floor(source coordinate) and therefore the same 4 clamped taps.
 */
export interface CubicAxis {
  readonly inSize: number;
  readonly outSize: number;
  /** [outSize*4] clamped input index of each tap of each output index. */
  readonly taps: Int32Array;
  /** [outSize*4] float32 tap weights, as PyTorch computes them. */
  readonly weights: Float32Array;
  /** Number of cells. */
  readonly cellCount: number;
  /** [cellCount] first input index the cell reads (max(floor - 1, 0)). */
  readonly cellTapLo: Int32Array;
  /** [cellCount] last input index the cell reads (min(floor + 2, inSize - 1)). */
  readonly cellTapHi: Int32Array;
  /** [cellCount] first output index of the cell. */
  readonly cellStart: Int32Array;
  /** [cellCount] one past the last output index of the cell. */
  readonly cellEnd: Int32Array;
  /** [cellCount*4] smallest weight of each tap over the cell's output indices. */
  readonly cellWeightLo: Float64Array;
  /** [cellCount*4] largest weight of each tap over the cell's output indices. */
  readonly cellWeightHi: Float64Array;
  /** [cellCount] largest sum of the positive weights of one output index of the cell. */
  readonly cellPosMax: Float64Array;
  /** [cellCount] smallest (most negative) sum of the negative weights of one output index of the cell. */
  readonly cellNegMin: Float64Array;
  /** [inSize + 1] cell whose floor(source) is f, at index f + 1; -1 where no output index has that floor. */
  readonly cellOfFloor: Int32Array;
  /** Largest {@link cellPosMax} of the axis. */
  readonly posMax: number;
  /** Smallest {@link cellNegMin} of the axis. */
  readonly negMin: number;
}

/** PyTorch `cubic_convolution1` in float32: the kernel on |x| <= 1. */
function cubic1(x: number, a: number): number {
  const t = f32(f32(f32(f32(a + 2) * x) - f32(a + 3)) * x);
  return f32(f32(t * x) + 1);
}

/** PyTorch `cubic_convolution2` in float32: the kernel on 1 < |x| < 2. */
function cubic2(x: number, a: number): number {
  const t = f32(f32(f32(f32(a * x) - f32(5 * a)) * x) + f32(8 * a));
  return f32(f32(t * x) - f32(4 * a));
}

/**
 * The sampling plan of one axis resized from `inSize` to `outSize` (both >= 1), with PyTorch's
 * float32 source index `scale * (o + 0.5) - 0.5` (scale = in / out, no clamping for cubic), taps
 * floor-1 .. floor+2 clamped to the input (border replication) and cubic weights with `a`.
 */
export function cubicAxis(inSize: number, outSize: number, a: number = PYTORCH_CUBIC_A): CubicAxis {
  if (!(Number.isInteger(inSize) && Number.isInteger(outSize) && inSize >= 1 && outSize >= 1)) {
    throw new RangeError(`cubicAxis: sizes must be positive integers, got ${inSize} -> ${outSize}`);
  }
  const A = f32(a);
  const scale = f32(inSize / outSize);
  const taps = new Int32Array(outSize * 4);
  const weights = new Float32Array(outSize * 4);
  const floors = new Int32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const src = f32(f32(scale * f32(o + 0.5)) - 0.5);
    const base = Math.floor(src);
    const t = f32(src - base);
    const x2 = f32(1 - t);
    weights[4 * o] = cubic2(f32(t + 1), A);
    weights[4 * o + 1] = cubic1(t, A);
    weights[4 * o + 2] = cubic1(x2, A);
    weights[4 * o + 3] = cubic2(f32(x2 + 1), A);
    for (let j = 0; j < 4; j++) taps[4 * o + j] = Math.min(Math.max(base + j - 1, 0), inSize - 1);
    floors[o] = base;
  }
  // Cells: maximal runs of equal floor (the source coordinate grows with o).
  let cellCount = 0;
  for (let o = 0; o < outSize; o++) if (o === 0 || floors[o] !== floors[o - 1]) cellCount++;
  const cellTapLo = new Int32Array(cellCount);
  const cellTapHi = new Int32Array(cellCount);
  const cellStart = new Int32Array(cellCount);
  const cellEnd = new Int32Array(cellCount);
  const cellWeightLo = new Float64Array(cellCount * 4).fill(Infinity);
  const cellWeightHi = new Float64Array(cellCount * 4).fill(-Infinity);
  const cellPosMax = new Float64Array(cellCount).fill(-Infinity);
  const cellNegMin = new Float64Array(cellCount).fill(Infinity);
  const cellOfFloor = new Int32Array(inSize + 1).fill(-1);
  let c = -1;
  for (let o = 0; o < outSize; o++) {
    if (o === 0 || floors[o] !== floors[o - 1]) {
      c++;
      cellStart[c] = o;
      cellTapLo[c] = taps[4 * o]!;
      cellTapHi[c] = taps[4 * o + 3]!;
      cellOfFloor[floors[o]! + 1] = c;
    }
    cellEnd[c] = o + 1;
    let pos = 0;
    let neg = 0;
    for (let j = 0; j < 4; j++) {
      const w = weights[4 * o + j]!;
      if (w > 0) pos += w;
      else neg += w;
      if (w < cellWeightLo[4 * c + j]!) cellWeightLo[4 * c + j] = w;
      if (w > cellWeightHi[4 * c + j]!) cellWeightHi[4 * c + j] = w;
    }
    if (pos > cellPosMax[c]!) cellPosMax[c] = pos;
    if (neg < cellNegMin[c]!) cellNegMin[c] = neg;
  }
  return {
    inSize,
    outSize,
    taps,
    weights,
    cellCount,
    cellTapLo,
    cellTapHi,
    cellStart,
    cellEnd,
    cellWeightLo,
    cellWeightHi,
    cellPosMax,
    cellNegMin,
    cellOfFloor,
    posMax: Math.max(...cellPosMax),
    negMin: Math.min(...cellNegMin),
  };
}

/** Position and value of the maximum of a resized map. */
export interface ResizedArgmax {
  /** Column of the first maximum in the resized map. */
  readonly x: number;
  /** Row of the first maximum in the resized map. */
  readonly y: number;
  /** The float32 value there (NaN when the map holds NaN, as torch's argmax picks the first NaN). */
  readonly value: number;
}

/** Reusable buffers of {@link bicubicArgmax}, grown on demand. */
export class ArgmaxWorkspace {
  /** [inH * outW] horizontal pass of {@link denseBicubicArgmax}. */
  horizontal = new Float32Array(0);
  /** [(inH + 1) * (inW + 1)] marks of candidate cells, indexed by (floor y + 1, floor x + 1). */
  marks = new Uint8Array(0);
  /** Candidate cells as flat mark indices. */
  candidates = new Int32Array(0);
  /** [inH] maximum of each input row. */
  rowMax = new Float64Array(0);
  /** The 16 taps of the cell being bounded. */
  readonly taps = new Float64Array(16);

  /** Sizes and clears the buffers for an input of inH x inW samples. */
  prepare(inH: number, inW: number): void {
    if (this.rowMax.length < inH) this.rowMax = new Float64Array(inH);
    const n = (inH + 1) * (inW + 1);
    if (this.marks.length < n) {
      this.marks = new Uint8Array(n);
      this.candidates = new Int32Array(n);
    } else {
      this.marks.fill(0, 0, n);
    }
  }
}

/** The running argmax: value, then the smallest flat index among equal values (torch's first max). */
interface Best {
  value: number;
  flat: number;
}

/** One output pixel, with the float32 operation order of PyTorch's separable kernel (columns inside, rows outside). */
function pixelValue(map: ArrayLike<number>, offset: number, inW: number, rows: CubicAxis, cols: CubicAxis, oy: number, ox: number): number {
  const ry = 4 * oy;
  const cx = 4 * ox;
  const c0 = cols.taps[cx]!;
  const c1 = cols.taps[cx + 1]!;
  const c2 = cols.taps[cx + 2]!;
  const c3 = cols.taps[cx + 3]!;
  const w0 = cols.weights[cx]!;
  const w1 = cols.weights[cx + 1]!;
  const w2 = cols.weights[cx + 2]!;
  const w3 = cols.weights[cx + 3]!;
  let out = 0;
  for (let j = 0; j < 4; j++) {
    const r = offset + rows.taps[ry + j]! * inW;
    let h = f32(map[r + c0]! * w0);
    h = f32(h + f32(map[r + c1]! * w1));
    h = f32(h + f32(map[r + c2]! * w2));
    h = f32(h + f32(map[r + c3]! * w3));
    const p = f32(h * rows.weights[ry + j]!);
    out = j === 0 ? p : f32(out + p);
  }
  return out;
}

function offer(best: Best, value: number, flat: number): void {
  if (value > best.value || (value === best.value && flat < best.flat)) {
    best.value = value;
    best.flat = flat;
  }
}

/**
 * Evaluates every pixel of cell (cy, cx) exactly. Within a cell the 4 row taps are shared, so the 4
 * horizontal interpolations of a column are computed once and reused by all its rows; the values
 * are bit-identical to {@link pixelValue}.
 */
function evaluateCell(map: ArrayLike<number>, offset: number, inW: number, rows: CubicAxis, cols: CubicAxis, cy: number, cx: number, best: Best): void {
  const y0 = rows.cellStart[cy]!;
  const y1 = rows.cellEnd[cy]!;
  const x0 = cols.cellStart[cx]!;
  const x1 = cols.cellEnd[cx]!;
  const outW = cols.outSize;
  const rt = rows.taps;
  const rw = rows.weights;
  const ct = cols.taps;
  const cw = cols.weights;
  const r0 = offset + rt[4 * y0]! * inW;
  const r1 = offset + rt[4 * y0 + 1]! * inW;
  const r2 = offset + rt[4 * y0 + 2]! * inW;
  const r3 = offset + rt[4 * y0 + 3]! * inW;
  let bestValue = best.value;
  let bestFlat = best.flat;
  for (let ox = x0; ox < x1; ox++) {
    const q = 4 * ox;
    const c0 = ct[q]!;
    const c1 = ct[q + 1]!;
    const c2 = ct[q + 2]!;
    const c3 = ct[q + 3]!;
    const w0 = cw[q]!;
    const w1 = cw[q + 1]!;
    const w2 = cw[q + 2]!;
    const w3 = cw[q + 3]!;
    const h0 = f32(f32(f32(f32(map[r0 + c0]! * w0) + f32(map[r0 + c1]! * w1)) + f32(map[r0 + c2]! * w2)) + f32(map[r0 + c3]! * w3));
    const h1 = f32(f32(f32(f32(map[r1 + c0]! * w0) + f32(map[r1 + c1]! * w1)) + f32(map[r1 + c2]! * w2)) + f32(map[r1 + c3]! * w3));
    const h2 = f32(f32(f32(f32(map[r2 + c0]! * w0) + f32(map[r2 + c1]! * w1)) + f32(map[r2 + c2]! * w2)) + f32(map[r2 + c3]! * w3));
    const h3 = f32(f32(f32(f32(map[r3 + c0]! * w0) + f32(map[r3 + c1]! * w1)) + f32(map[r3 + c2]! * w2)) + f32(map[r3 + c3]! * w3));
    for (let oy = y0; oy < y1; oy++) {
      const p = 4 * oy;
      const v = f32(f32(f32(f32(h0 * rw[p]!) + f32(h1 * rw[p + 1]!)) + f32(h2 * rw[p + 2]!)) + f32(h3 * rw[p + 3]!));
      if (v >= bestValue) {
        const flat = oy * outW + ox;
        if (v > bestValue || flat < bestFlat) {
          bestValue = v;
          bestFlat = flat;
        }
      }
    }
  }
  best.value = bestValue;
  best.flat = bestFlat;
}

/**
 * The argmax of the whole resized map, computed separably: the horizontal interpolation of every
 * input row at every output column once (`inH x outW`), then each output pixel from its 4 rows of
 * that — the values of {@link pixelValue} (same float32 operations in the same order), at 4
 * multiply-adds per output pixel instead of 20. Row-major scan with a strict `>`: the first maximum
 * wins. Finite maps only (see {@link exhaustiveArgmax}).
 */
export function denseBicubicArgmax(map: ArrayLike<number>, offset: number, rows: CubicAxis, cols: CubicAxis, workspace: ArgmaxWorkspace = new ArgmaxWorkspace()): ResizedArgmax {
  const inH = rows.inSize;
  const inW = cols.inSize;
  const outH = rows.outSize;
  const outW = cols.outSize;
  if (workspace.horizontal.length < inH * outW) workspace.horizontal = new Float32Array(inH * outW);
  const h = workspace.horizontal;
  const ct = cols.taps;
  const cw = cols.weights;
  for (let r = 0; r < inH; r++) {
    const base = offset + r * inW;
    const out = r * outW;
    for (let ox = 0; ox < outW; ox++) {
      const q = 4 * ox;
      h[out + ox] = f32(f32(f32(f32(map[base + ct[q]!]! * cw[q]!) + f32(map[base + ct[q + 1]!]! * cw[q + 1]!)) + f32(map[base + ct[q + 2]!]! * cw[q + 2]!)) + f32(map[base + ct[q + 3]!]! * cw[q + 3]!));
    }
  }
  const rt = rows.taps;
  const rw = rows.weights;
  let bestValue = -Infinity;
  let bestFlat = 0;
  for (let oy = 0; oy < outH; oy++) {
    const p = 4 * oy;
    const a = rt[p]! * outW;
    const b = rt[p + 1]! * outW;
    const c = rt[p + 2]! * outW;
    const d = rt[p + 3]! * outW;
    const w0 = rw[p]!;
    const w1 = rw[p + 1]!;
    const w2 = rw[p + 2]!;
    const w3 = rw[p + 3]!;
    for (let ox = 0; ox < outW; ox++) {
      const v = f32(f32(f32(f32(h[a + ox]! * w0) + f32(h[b + ox]! * w1)) + f32(h[c + ox]! * w2)) + f32(h[d + ox]! * w3));
      if (v > bestValue) {
        bestValue = v;
        bestFlat = oy * outW + ox;
      }
    }
  }
  return { x: bestFlat % outW, y: Math.floor(bestFlat / outW), value: bestValue };
}

/** Exhaustive fallback for maps holding NaN or infinities, where bounds are meaningless: torch's argmax takes the first NaN. */
function exhaustiveArgmax(map: ArrayLike<number>, offset: number, rows: CubicAxis, cols: CubicAxis): ResizedArgmax {
  const inW = cols.inSize;
  let bestValue = -Infinity;
  let bestFlat = -1;
  for (let oy = 0; oy < rows.outSize; oy++) {
    for (let ox = 0; ox < cols.outSize; ox++) {
      const v = pixelValue(map, offset, inW, rows, cols, oy, ox);
      if (Number.isNaN(v)) return { x: ox, y: oy, value: v };
      if (bestFlat < 0 || v > bestValue) {
        bestValue = v;
        bestFlat = oy * cols.outSize + ox;
      }
    }
  }
  return { x: bestFlat % cols.outSize, y: Math.floor(bestFlat / cols.outSize), value: bestValue };
}

/**
 * Argmax (first maximum, row-major) and value of the bicubic resize of the `rows.inSize` x
 * `cols.inSize` float32 map starting at `map[offset]` to `rows.outSize` x `cols.outSize`, equal
 * bit for bit to PyTorch's `F.interpolate(mode='bicubic', align_corners=False)` followed by `argmax`.
 */
export function bicubicArgmax(map: ArrayLike<number>, offset: number, rows: CubicAxis, cols: CubicAxis, workspace: ArgmaxWorkspace = new ArgmaxWorkspace()): ResizedArgmax {
  const inH = rows.inSize;
  const inW = cols.inSize;
  const outW = cols.outSize;

  // Coarse argmax (for the seed), per-row maxima, global minimum and a finiteness check (bounds
  // need finite values: `v * 0` is NaN exactly for NaN and infinities).
  workspace.prepare(inH, inW);
  const { marks, candidates, rowMax } = workspace;
  let globalMin = Infinity;
  let globalMax = -Infinity;
  let maxRow = 0;
  let nonFinite = 0;
  for (let r = 0; r < inH; r++) {
    const base = offset + r * inW;
    let rowHi = -Infinity;
    for (let i = base, end = base + inW; i < end; i++) {
      const v = map[i]!;
      nonFinite += v * 0;
      rowHi = Math.max(rowHi, v);
      globalMin = Math.min(globalMin, v);
    }
    rowMax[r] = rowHi;
    if (rowHi > globalMax) {
      globalMax = rowHi;
      maxRow = r;
    }
  }
  if (Number.isNaN(nonFinite)) return exhaustiveArgmax(map, offset, rows, cols);
  let coarse = offset + maxRow * inW;
  while (map[coarse] !== globalMax) coarse++;

  // Seed: the 3x3 output pixels nearest to the coarse maximum, so that pruning starts from a
  // value close to the true maximum.
  const best: Best = { value: -Infinity, flat: Number.MAX_SAFE_INTEGER };
  const ci = Math.floor((coarse - offset) / inW);
  const ck = (coarse - offset) % inW;
  const near = (c: number, axis: CubicAxis): number =>
    Math.min(Math.max(Math.round(((c + 0.5) * axis.outSize) / axis.inSize - 0.5), 0), axis.outSize - 1);
  const sy = near(ci, rows);
  const sx = near(ck, cols);
  for (let oy = Math.max(sy - 1, 0); oy <= Math.min(sy + 1, rows.outSize - 1); oy++) {
    for (let ox = Math.max(sx - 1, 0); ox <= Math.min(sx + 1, outW - 1); ox++) {
      offer(best, pixelValue(map, offset, inW, rows, cols, oy, ox), oy * outW + ox);
    }
  }

  // A pixel's value is at most P*M + N*m = P*(M - m) + (P + N)*m, where M / m are the max / min
  // of its 4x4 taps and P / N the sums of its positive / negative weight products (P + N ~ 1).
  // With P <= posAll for the whole map and m >= globalMin, a cell can only hold a pixel >= best if
  // its taps hold a sample >= threshold. Only samples that high mark the (up to 4x4) cells whose
  // taps contain them; all other cells are skipped without being looked at.
  const posAll = Math.max(rows.posMax * cols.posMax + rows.negMin * cols.negMin, 1);
  const absAll = (rows.posMax - rows.negMin) * (cols.posMax - cols.negMin);
  const slackAll = BOUND_SLACK * absAll * Math.max(Math.abs(globalMax), Math.abs(globalMin));
  const threshold = (best.value - slackAll + (posAll - 1) * globalMin) / posAll;
  const stride = inW + 1;
  // Bounding a candidate cell costs ~30x a dense output pixel's 4 multiply-adds (measured): once the
  // marks have found more candidates than the whole separable resize would cost (smooth or
  // low-contrast maps, small boxes), that is cheaper. Both give the same bits.
  const denseCost = (inH + rows.outSize) * outW;
  let count = 0;
  for (let r = 0; r < inH; r++) {
    if (count * CANDIDATE_COST > denseCost) return denseBicubicArgmax(map, offset, rows, cols, workspace);
    if (rowMax[r]! < threshold) continue;
    const base = offset + r * inW;
    for (let k = 0; k < inW; k++) {
      if (map[base + k]! < threshold) continue;
      // Cells whose taps [floor - 1, floor + 2] (clamped) contain (r, k): floors r-2..r+1, k-2..k+1.
      for (let fy = Math.max(r - 2, -1); fy <= r + 1 && fy < inH; fy++) {
        if (rows.cellOfFloor[fy + 1]! < 0) continue;
        for (let fx = Math.max(k - 2, -1); fx <= k + 1 && fx < inW; fx++) {
          if (cols.cellOfFloor[fx + 1]! < 0) continue;
          const m = (fy + 1) * stride + fx + 1;
          if (marks[m] === 0) {
            marks[m] = 1;
            candidates[count++] = m;
          }
        }
      }
    }
  }

  if (count * CANDIDATE_COST > denseCost) return denseBicubicArgmax(map, offset, rows, cols, workspace);

  const taps = workspace.taps;
  for (let n = 0; n < count; n++) {
    const cy = rows.cellOfFloor[Math.floor(candidates[n]! / stride)]!;
    const cx = cols.cellOfFloor[candidates[n]! % stride]!;
    const y0 = 4 * rows.cellStart[cy]!;
    const x0 = 4 * cols.cellStart[cx]!;
    let hi = -Infinity;
    let lo = Infinity;
    for (let j = 0; j < 4; j++) {
      const r = offset + rows.taps[y0 + j]! * inW;
      for (let l = 0; l < 4; l++) {
        const v = map[r + cols.taps[x0 + l]!]!;
        taps[4 * j + l] = v;
        if (v > hi) hi = v;
        if (v < lo) lo = v;
      }
    }
    // The same bound with this cell's own M, m and weight sums.
    const pyMax = rows.cellPosMax[cy]!;
    const nyMin = rows.cellNegMin[cy]!;
    const pxMax = cols.cellPosMax[cx]!;
    const nxMin = cols.cellNegMin[cx]!;
    const posMax = pyMax * pxMax + nyMin * nxMin;
    const absSum = (pyMax - nyMin) * (pxMax - nxMin);
    if (posMax * (hi - lo) + lo + BOUND_SLACK * absSum * Math.max(Math.abs(hi), Math.abs(lo)) < best.value) continue;

    // Tight bound: each of the 16 taps with the range of its weight product over the cell.
    let bound = 0;
    let slack = 0;
    for (let j = 0; j < 4; j++) {
      const ay = rows.cellWeightLo[4 * cy + j]!;
      const by = rows.cellWeightHi[4 * cy + j]!;
      for (let l = 0; l < 4; l++) {
        const ax = cols.cellWeightLo[4 * cx + l]!;
        const bx = cols.cellWeightHi[4 * cx + l]!;
        const p1 = ay * ax;
        const p2 = ay * bx;
        const p3 = by * ax;
        const p4 = by * bx;
        const wLo = Math.min(p1, p2, p3, p4);
        const wHi = Math.max(p1, p2, p3, p4);
        const v = taps[4 * j + l]!;
        bound += v >= 0 ? wHi * v : wLo * v;
        slack += Math.max(Math.abs(wLo), Math.abs(wHi)) * Math.abs(v);
      }
    }
    if (bound + BOUND_SLACK * slack < best.value) continue;
    evaluateCell(map, offset, inW, rows, cols, cy, cx, best);
  }
  return { x: best.flat % outW, y: Math.floor(best.flat / outW), value: best.value };
}
