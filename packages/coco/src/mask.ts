/**
 * COCO mask geometry with pycocotools' `maskApi` semantics: polygon rasterisation (`frPoly`, the
 * exact pixel set pycocotools produces, which is not the pixel set of a generic scan-line fill),
 * boxes as masks, union/intersection of run-length encodings, bounding boxes of RLEs and the
 * box / mask IoU used by COCO evaluation (with its crowd rule: the union of a detection and a
 * crowd region is the detection alone).
 *
 * Everything works on core's column-major run lengths ({@link UncompressedRle}); masks are never
 * decoded to pixels here, so IoU of large images costs O(runs), not O(pixels).
 */
import { type CocoRle, InputError, type UncompressedRle, decompressRle, rleArea } from '@rcnn/core';

/** A COCO `segmentation`: polygons (`[[x0, y0, x1, y1, ...], ...]`) or an RLE (compressed or not). */
export type CocoSegmentation = readonly (readonly number[])[] | UncompressedRle | CocoRle;

/** A box as COCO stores it: [x, y, width, height]. */
export type XywhBox = readonly [number, number, number, number] | readonly number[];

// pycocotools samples polygon edges on a grid 5 times finer than the pixels.
const POLY_UPSAMPLE = 5;

/** C's `(int)` cast of a double: truncation toward zero. */
const toInt = (v: number): number => Math.trunc(v);

/**
 * Rasterises one polygon (`[x0, y0, x1, y1, ...]`, pixel coordinates where pixel i covers
 * [i - 0.5, i + 0.5]) to an RLE exactly as pycocotools' `rleFrPoly`: the outline is walked on a
 * 5x grid, its crossings of pixel-column centres become column boundaries, and each column is
 * filled between successive crossings. An odd trailing coordinate is ignored (pycocotools uses
 * `len // 2` points).
 */
export function rleFromPolygon(xy: readonly number[], h: number, w: number): UncompressedRle {
  checkDims(h, w, 'rleFromPolygon');
  const k = Math.floor(xy.length / 2);
  const x = new Array<number>(k + 1);
  const y = new Array<number>(k + 1);
  for (let j = 0; j < k; j++) {
    const px = xy[2 * j]!;
    const py = xy[2 * j + 1]!;
    if (!Number.isFinite(px) || !Number.isFinite(py)) throw new InputError(`polygon point ${j} is (${px}, ${py}), not a pair of finite numbers`);
    x[j] = toInt(POLY_UPSAMPLE * px + 0.5);
    y[j] = toInt(POLY_UPSAMPLE * py + 0.5);
  }
  if (k === 0) return { size: [h, w], counts: [h * w] };
  x[k] = x[0]!;
  y[k] = y[0]!;
  // Dense outline points on the fine grid (u: x, v: y), each edge walked along its longer axis.
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j]!;
    let xe = x[j + 1]!;
    let ys = y[j]!;
    let ye = y[j + 1]!;
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      [xs, xe] = [xe, xs];
      [ys, ye] = [ye, ys];
    }
    if (dx >= dy) {
      const s = dx === 0 ? Number.NaN : (ye - ys) / dx;
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        // dx == 0 only for a repeated point: C computes NaN * 0 there and casts it; the point is
        // then dropped below because u does not change, so any value will do.
        v.push(dx === 0 ? ys : toInt(ys + s * t + 0.5));
      }
    } else {
      const s = (xe - xs) / dy;
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(toInt(xs + s * t + 0.5));
      }
    }
  }
  // Where the outline crosses a pixel-column centre: one boundary point (column, first row inside).
  const starts: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j]! < u[j - 1]! ? u[j]! : u[j]! - 1;
    xd = (xd + 0.5) / POLY_UPSAMPLE - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j]! < v[j - 1]! ? v[j]! : v[j - 1]!;
    yd = (yd + 0.5) / POLY_UPSAMPLE - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    starts.push(xd * h + yd);
  }
  // Sorted column-major positions alternate background/foreground; equal neighbours cancel.
  starts.push(h * w);
  starts.sort((a, b) => a - b);
  const deltas = new Array<number>(starts.length);
  let prev = 0;
  for (let j = 0; j < starts.length; j++) {
    deltas[j] = starts[j]! - prev;
    prev = starts[j]!;
  }
  const counts: number[] = [deltas[0]!];
  for (let j = 1; j < deltas.length; ) {
    if (deltas[j]! > 0) counts.push(deltas[j++]!);
    else {
      // An empty run merges its neighbours: the next run continues the previous one.
      j++;
      if (j < deltas.length) counts[counts.length - 1]! += deltas[j++]!;
    }
  }
  return { size: [h, w], counts };
}

/** A box [x, y, w, h] as a mask, rasterised as pycocotools' `rleFrBbox` (a four-point polygon). */
export function rleFromBox(box: XywhBox, h: number, w: number): UncompressedRle {
  const [xs, ys, bw, bh] = box;
  const xe = xs + bw;
  const ye = ys + bh;
  return rleFromPolygon([xs, ys, xs, ye, xe, ye, xe, ys], h, w);
}

/**
 * Union (or intersection) of RLEs of one size, as pycocotools' `rleMerge`. Masks of different
 * sizes cannot be merged: pycocotools silently returns an empty 0x0 mask; this throws instead.
 */
export function mergeRles(rles: readonly UncompressedRle[], intersect = false): UncompressedRle {
  if (rles.length === 0) return { size: [0, 0], counts: [] };
  const [h, w] = rles[0]!.size;
  let acc = rles[0]!.counts;
  for (let i = 1; i < rles.length; i++) {
    const b = rles[i]!;
    if (b.size[0] !== h || b.size[1] !== w) {
      throw new InputError(`cannot merge masks of different sizes: ${h} x ${w} and ${b.size[0]} x ${b.size[1]}`);
    }
    acc = mergeTwo(acc, b.counts, intersect);
  }
  return { size: [h, w], counts: [...acc] };
}

/**
 * Walks two RLEs of one size together, calling `visit(length, inA, inB)` for each stretch where
 * neither changes (zero-length runs are passed over; an exhausted side counts as background).
 */
function walkRuns(a: readonly number[], b: readonly number[], visit: (length: number, inA: boolean, inB: boolean) => void): void {
  let ia = 1;
  let ib = 1;
  let ca = a[0] ?? 0;
  let cb = b[0] ?? 0;
  let va = false;
  let vb = false;
  for (;;) {
    while (ca === 0 && ia < a.length) {
      ca = a[ia++]!;
      va = !va;
    }
    while (cb === 0 && ib < b.length) {
      cb = b[ib++]!;
      vb = !vb;
    }
    if (ca === 0 && cb === 0) return;
    const c = ca === 0 ? cb : cb === 0 ? ca : Math.min(ca, cb);
    visit(c, ca > 0 && va, cb > 0 && vb);
    ca = Math.max(0, ca - c);
    cb = Math.max(0, cb - c);
  }
}

/** The canonical runs (background first) of the union or intersection of two RLEs. */
function mergeTwo(a: readonly number[], b: readonly number[], intersect: boolean): number[] {
  const out: number[] = [];
  let state = false;
  let length = 0;
  walkRuns(a, b, (c, inA, inB) => {
    const v = intersect ? inA && inB : inA || inB;
    if (v === state) length += c;
    else {
      out.push(length);
      state = v;
      length = c;
    }
  });
  out.push(length);
  return out;
}

/**
 * Bounding box [x, y, w, h] of an RLE in whole pixels (pycocotools `toBbox`); [0, 0, 0, 0] for an
 * empty mask.
 */
export function rleToBox(rle: UncompressedRle): [number, number, number, number] {
  const [h, w] = rle.size;
  const m = Math.floor(rle.counts.length / 2) * 2;
  if (m === 0 || h === 0) return [0, 0, 0, 0];
  let xs = w;
  let ys = h;
  let xe = 0;
  let ye = 0;
  let cc = 0;
  let xp = 0;
  for (let j = 0; j < m; j++) {
    cc += rle.counts[j]!;
    // Last pixel of a foreground run (odd j) or first pixel of one (even j).
    const t = cc - (j % 2);
    const yy = t % h;
    const xx = (t - yy) / h;
    if (j % 2 === 0) xp = xx;
    else if (xp < xx) {
      // The run spans columns: it covers full column heights.
      ys = 0;
      ye = h - 1;
    }
    xs = Math.min(xs, xx);
    xe = Math.max(xe, xx);
    ys = Math.min(ys, yy);
    ye = Math.max(ye, yy);
  }
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}

/**
 * IoU of every detection box with every ground-truth box (pycocotools `bbIou`), as rows of
 * detections: `out[d][g]`. For a crowd ground truth the union is the detection's own area.
 */
export function boxIou(dt: readonly XywhBox[], gt: readonly XywhBox[], iscrowd: readonly boolean[]): number[][] {
  const out = dt.map(() => new Array<number>(gt.length).fill(0));
  for (let g = 0; g < gt.length; g++) {
    const G = gt[g]!;
    const ga = G[2] * G[3];
    for (let d = 0; d < dt.length; d++) {
      const D = dt[d]!;
      const da = D[2] * D[3];
      const iw = Math.min(D[2] + D[0], G[2] + G[0]) - Math.max(D[0], G[0]);
      if (iw <= 0) continue;
      const ih = Math.min(D[3] + D[1], G[3] + G[1]) - Math.max(D[1], G[1]);
      if (ih <= 0) continue;
      const inter = iw * ih;
      out[d]![g] = inter / (iscrowd[g] ? da : da + ga - inter);
    }
  }
  return out;
}

/**
 * Mask IoU of every detection with every ground truth (pycocotools `rleIou`), `out[d][g]`. A crowd
 * ground truth's union is the detection's area. Masks of different sizes do not overlap (-1, as
 * pycocotools, which never matches).
 */
export function maskIou(dt: readonly UncompressedRle[], gt: readonly UncompressedRle[], iscrowd: readonly boolean[]): number[][] {
  const out = dt.map(() => new Array<number>(gt.length).fill(0));
  const dtBoxes = dt.map(rleToBox);
  const gtBoxes = gt.map(rleToBox);
  const boxes = boxIou(dtBoxes, gtBoxes, iscrowd);
  for (let g = 0; g < gt.length; g++) {
    for (let d = 0; d < dt.length; d++) {
      // Disjoint boxes: disjoint masks.
      if (!(boxes[d]![g]! > 0)) continue;
      const A = dt[d]!;
      const B = gt[g]!;
      if (A.size[0] !== B.size[0] || A.size[1] !== B.size[1]) {
        out[d]![g] = -1;
        continue;
      }
      const [inter, union] = intersectionAndUnion(A.counts, B.counts);
      out[d]![g] = inter === 0 ? 0 : inter / (iscrowd[g] ? rleArea(A) : union);
    }
  }
  return out;
}

/** Foreground pixels in both and in either of two RLEs of one size, by walking their runs. */
export function intersectionAndUnion(a: readonly number[], b: readonly number[]): [number, number] {
  let inter = 0;
  let union = 0;
  walkRuns(a, b, (c, inA, inB) => {
    if (inA || inB) union += c;
    if (inA && inB) inter += c;
  });
  return [inter, union];
}

function isRle(s: unknown): s is UncompressedRle | CocoRle {
  return typeof s === 'object' && s !== null && !Array.isArray(s) && 'counts' in s && 'size' in s;
}

/**
 * A COCO `segmentation` as one RLE, as pycocotools' `COCO.annToRLE`: polygons are rasterised at
 * the image's h x w and united; an uncompressed RLE keeps its own size; a compressed one is
 * expanded. As in pycocotools, a polygon list whose first entry has exactly 4 numbers is read as
 * boxes [x, y, w, h]. An empty polygon list is an empty mask.
 */
export function segmentationToRle(segmentation: unknown, h: number, w: number, what = 'segmentation'): UncompressedRle {
  if (Array.isArray(segmentation)) {
    if (segmentation.length === 0) return { size: [h, w], counts: [h * w] };
    const polys = segmentation as unknown[];
    for (const [i, p] of polys.entries()) {
      if (!Array.isArray(p) || p.some((v) => typeof v !== 'number')) throw new InputError(`${what}: polygon ${i} is not a list of numbers`);
    }
    const list = polys as number[][];
    if (list[0]!.length === 4) return mergeRles(list.map((b) => rleFromBox(b, h, w)));
    if (list[0]!.length < 4) throw new InputError(`${what}: polygon 0 has ${list[0]!.length} numbers; a polygon needs at least 3 points (6 numbers)`);
    return mergeRles(list.map((p) => rleFromPolygon(p, h, w)));
  }
  if (isRle(segmentation)) {
    const size = segmentation.size;
    if (!Array.isArray(size) || size.length !== 2) throw new InputError(`${what}: RLE size must be [height, width]`);
    let rle: UncompressedRle;
    if (typeof segmentation.counts === 'string') rle = decompressRle(segmentation as CocoRle);
    else if (Array.isArray(segmentation.counts)) rle = { size: [size[0], size[1]], counts: [...segmentation.counts] };
    else throw new InputError(`${what}: RLE counts must be a string or a list of run lengths`);
    checkRuns(rle, what);
    return rle;
  }
  throw new InputError(`${what} must be a list of polygons or an RLE {size, counts}`);
}

/** Run lengths must be non-negative integers covering the mask exactly (pycocotools would loop or read past them). */
function checkRuns(rle: UncompressedRle, what: string): void {
  const [h, w] = rle.size;
  checkDims(h, w, what);
  let total = 0;
  for (const c of rle.counts) {
    if (!Number.isInteger(c) || c < 0) throw new InputError(`${what}: RLE run length ${c} is not a non-negative integer`);
    total += c;
  }
  if (total !== h * w) throw new InputError(`${what}: RLE runs sum to ${total}, but the mask is ${h} x ${w} = ${h * w} pixels`);
}

function checkDims(h: number, w: number, what: string): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0) throw new InputError(`${what}: image size ${h} x ${w} is not a pair of non-negative integers`);
}
