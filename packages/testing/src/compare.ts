/**
 * The parity tolerances of rcnn-node, as functions returning a verdict with the numbers behind it
 * (so a failing test says how far off it was, and a passing one can be reported).
 */
import type { HostTensor } from '@rcnn/core';

/** Outcome of one comparison. */
export interface Verdict {
  readonly name: string;
  readonly pass: boolean;
  /** One line with the measured error and the tolerance. */
  readonly detail: string;
  /** The measured error (metric depends on the comparison). */
  readonly error: number;
}

const shapeOf = (t: HostTensor): string => `[${t.dims.join(', ')}]`;

function numbers(t: HostTensor): ArrayLike<number> {
  if (t.dtype === 'int64') return Array.from(t.data as BigInt64Array, Number);
  return t.data as ArrayLike<number>;
}

/** Dense tensors: same shape and max|a−b| ≤ relTol·max(1, max|ref|) (default 1e-4). */
export function compareDense(name: string, actual: HostTensor, reference: HostTensor, relTol = 1e-4): Verdict {
  if (actual.dims.join(',') !== reference.dims.join(',')) {
    return { name, pass: false, error: Infinity, detail: `shape ${shapeOf(actual)} != reference ${shapeOf(reference)}` };
  }
  const a = numbers(actual);
  const r = numbers(reference);
  let maxRef = 0;
  let maxDiff = 0;
  let worst = -1;
  for (let i = 0; i < r.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(r[i]!));
    const d = Math.abs(a[i]! - r[i]!);
    if (!(d <= maxDiff)) {
      maxDiff = Number.isNaN(d) ? Infinity : d;
      worst = i;
    }
  }
  const tol = relTol * Math.max(1, maxRef);
  return {
    name,
    pass: maxDiff <= tol,
    error: maxDiff,
    detail: `max|a-b| = ${maxDiff.toExponential(3)} (tol ${tol.toExponential(3)}, max|ref| ${maxRef.toPrecision(4)}${worst >= 0 ? `, worst at flat ${worst}` : ''})`,
  };
}

/** Exact equality of integer tensors (labels). */
export function compareExact(name: string, actual: HostTensor, reference: HostTensor): Verdict {
  if (actual.dims.join(',') !== reference.dims.join(',')) {
    return { name, pass: false, error: Infinity, detail: `shape ${shapeOf(actual)} != reference ${shapeOf(reference)}` };
  }
  const a = numbers(actual);
  const r = numbers(reference);
  let mismatches = 0;
  for (let i = 0; i < r.length; i++) if (a[i] !== r[i]) mismatches++;
  return { name, pass: mismatches === 0, error: mismatches, detail: `${mismatches} of ${r.length} differ` };
}

/** IoU of two (x1,y1,x2,y2) boxes. */
export function boxIoU(a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number): number {
  const ix = Math.max(0, Math.min(a[ai + 2]!, b[bi + 2]!) - Math.max(a[ai]!, b[bi]!));
  const iy = Math.max(0, Math.min(a[ai + 3]!, b[bi + 3]!) - Math.max(a[ai + 1]!, b[bi + 1]!));
  const inter = ix * iy;
  const ua = (a[ai + 2]! - a[ai]!) * (a[ai + 3]! - a[ai + 1]!) + (b[bi + 2]! - b[bi]!) * (b[bi + 3]! - b[bi + 1]!) - inter;
  return ua > 0 ? inter / ua : a[ai] === b[bi] && a[ai + 1] === b[bi + 1] && a[ai + 2] === b[bi + 2] && a[ai + 3] === b[bi + 3] ? 1 : 0;
}

/**
 * Proposals: same count; every reference box matched by one of ours (one-to-one, greedy by IoU)
 * with IoU ≥ minIoU and |score diff| ≤ scoreTol. `matching[i]` is our row for reference row i
 * (-1 if unmatched), for aligning per-proposal tensors whose order differs at score ties.
 */
export function compareProposals(
  name: string,
  boxes: HostTensor,
  scores: HostTensor,
  refBoxes: HostTensor,
  refScores: HostTensor,
  minIoU = 0.999,
  scoreTol = 1e-4,
): Verdict & { readonly matching: Int32Array } {
  const n = refBoxes.dims[0]!;
  const matching = new Int32Array(n).fill(-1);
  if (boxes.dims[0] !== n) return { name, pass: false, error: Infinity, detail: `count ${boxes.dims[0]} != reference ${n}`, matching };
  const a = numbers(boxes);
  const r = numbers(refBoxes);
  const s = numbers(scores);
  const rs = numbers(refScores);
  const used = new Uint8Array(n);
  let worstIoU = 1;
  let worstScore = 0;
  let unmatched = 0;
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bestIoU = -1;
    // Same index first (the usual case), then any unused box.
    if (!used[i]) {
      const iou = boxIoU(a, 4 * i, r, 4 * i);
      if (iou >= minIoU && Math.abs(s[i]! - rs[i]!) <= scoreTol) {
        best = i;
        bestIoU = iou;
      }
    }
    if (best < 0) {
      for (let j = 0; j < n; j++) {
        if (used[j]) continue;
        const iou = boxIoU(a, 4 * j, r, 4 * i);
        if (iou > bestIoU && Math.abs(s[j]! - rs[i]!) <= scoreTol) {
          bestIoU = iou;
          best = j;
        }
      }
    }
    if (best < 0 || bestIoU < minIoU) {
      unmatched++;
      worstIoU = Math.min(worstIoU, Math.max(bestIoU, 0));
      continue;
    }
    used[best] = 1;
    matching[i] = best;
    worstIoU = Math.min(worstIoU, bestIoU);
    worstScore = Math.max(worstScore, Math.abs(s[best]! - rs[i]!));
  }
  return {
    name,
    pass: unmatched === 0,
    error: unmatched,
    detail: `${n} proposals, ${unmatched} unmatched, worst IoU ${worstIoU.toFixed(6)}, worst |Δscore| ${worstScore.toExponential(2)}`,
    matching,
  };
}

/** Final detections: same count; boxes matched one-to-one with |Δ| ≤ boxTol px, scores ≤ scoreTol, labels equal. */
export function compareDetections(
  name: string,
  actual: { boxes: HostTensor; scores: HostTensor; labels: HostTensor },
  reference: { boxes: HostTensor; scores: HostTensor; labels: HostTensor },
  boxTol = 1e-2,
  scoreTol = 1e-4,
): Verdict & { readonly matching: Int32Array } {
  const n = reference.boxes.dims[0]!;
  const matching = new Int32Array(n).fill(-1);
  if (actual.boxes.dims[0] !== n) {
    return { name, pass: false, error: Infinity, detail: `count ${actual.boxes.dims[0]} != reference ${n}`, matching };
  }
  const a = numbers(actual.boxes);
  const r = numbers(reference.boxes);
  const s = numbers(actual.scores);
  const rs = numbers(reference.scores);
  const l = numbers(actual.labels);
  const rl = numbers(reference.labels);
  const used = new Uint8Array(n);
  let worstBox = 0;
  let worstScore = 0;
  let unmatched = 0;
  const fits = (j: number, i: number): number => {
    if (l[j] !== rl[i] || Math.abs(s[j]! - rs[i]!) > scoreTol) return Infinity;
    let d = 0;
    for (let c = 0; c < 4; c++) d = Math.max(d, Math.abs(a[4 * j + c]! - r[4 * i + c]!));
    return d;
  };
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bestD = Infinity;
    if (!used[i] && fits(i, i) <= boxTol) {
      best = i;
      bestD = fits(i, i);
    } else {
      for (let j = 0; j < n; j++) {
        if (used[j]) continue;
        const d = fits(j, i);
        if (d < bestD) {
          bestD = d;
          best = j;
        }
      }
    }
    if (best < 0 || bestD > boxTol) {
      unmatched++;
      continue;
    }
    used[best] = 1;
    matching[i] = best;
    worstBox = Math.max(worstBox, bestD);
    worstScore = Math.max(worstScore, Math.abs(s[best]! - rs[i]!));
  }
  return {
    name,
    pass: unmatched === 0,
    error: unmatched,
    detail: `${n} detections, ${unmatched} unmatched, worst |Δbox| ${worstBox.toExponential(2)} px, worst |Δscore| ${worstScore.toExponential(2)}`,
    matching,
  };
}

/** Binary masks [D,1,H,W] u8: IoU ≥ minIoU per detection (rows paired by `matching`, default identity). */
export function compareMasks(name: string, actual: HostTensor, reference: HostTensor, minIoU = 0.99, matching?: Int32Array): Verdict {
  if (actual.dims.join(',') !== reference.dims.join(',')) {
    return { name, pass: false, error: Infinity, detail: `shape ${shapeOf(actual)} != reference ${shapeOf(reference)}` };
  }
  const d = reference.dims[0]!;
  const per = reference.dims.slice(1).reduce((x, y) => x * y, 1);
  const a = actual.data as Uint8Array;
  const r = reference.data as Uint8Array;
  let worst = 1;
  let failing = 0;
  for (let i = 0; i < d; i++) {
    const j = matching ? matching[i]! : i;
    let inter = 0;
    let union = 0;
    for (let p = 0; p < per; p++) {
      const x = a[j * per + p] !== 0;
      const y = r[i * per + p] !== 0;
      if (x && y) inter++;
      if (x || y) union++;
    }
    const iou = union === 0 ? 1 : inter / union;
    worst = Math.min(worst, iou);
    if (iou < minIoU) failing++;
  }
  return { name, pass: failing === 0, error: 1 - worst, detail: `${d} masks, worst IoU ${worst.toFixed(5)} (min ${minIoU}), ${failing} below` };
}

/**
 * Keypoints [D,K,3]: at least `minFraction` of keypoints within `px` pixels, and scores [D,K]
 * within scoreTol where the position matches.
 */
export function compareKeypoints(
  name: string,
  actual: { keypoints: HostTensor; scores: HostTensor },
  reference: { keypoints: HostTensor; scores: HostTensor },
  px = 1,
  minFraction = 0.99,
  scoreTol = 1e-3,
  matching?: Int32Array,
): Verdict {
  if (actual.keypoints.dims.join(',') !== reference.keypoints.dims.join(',')) {
    return { name, pass: false, error: Infinity, detail: `shape ${shapeOf(actual.keypoints)} != reference ${shapeOf(reference.keypoints)}` };
  }
  const [d = 0, k = 0] = reference.keypoints.dims; // [R, K, 3]; shapes equal, checked above
  const a = numbers(actual.keypoints);
  const r = numbers(reference.keypoints);
  const s = numbers(actual.scores);
  const rs = numbers(reference.scores);
  let within = 0;
  let badScores = 0;
  let worstScore = 0;
  for (let i = 0; i < d; i++) {
    const j = matching ? matching[i]! : i;
    for (let q = 0; q < k; q++) {
      const ai = (j * k + q) * 3;
      const ri = (i * k + q) * 3;
      const dist = Math.hypot(a[ai]! - r[ri]!, a[ai + 1]! - r[ri + 1]!);
      if (dist <= px) {
        within++;
        const ds = Math.abs(s[j * k + q]! - rs[i * k + q]!);
        worstScore = Math.max(worstScore, ds);
        if (ds > scoreTol) badScores++;
      }
    }
  }
  const total = d * k;
  const fraction = total === 0 ? 1 : within / total;
  return {
    name,
    pass: fraction >= minFraction && badScores === 0,
    error: 1 - fraction,
    detail: `${(100 * fraction).toFixed(2)}% of ${total} keypoints within ${px}px (need ${100 * minFraction}%), ${badScores} matched scores off by > ${scoreTol} (worst ${worstScore.toExponential(2)})`,
  };
}
