/**
 * Host-side target assignment of the training pass, in torchvision 0.14.1's float32 arithmetic:
 * `box_iou`, the `Matcher` (with its -1 / -2 codes and low-quality matches), the
 * `BalancedPositiveNegativeSampler` (seeded or injected) and `BoxCoder.encode`; IoU and encoding also
 * in Detectron's +1 box convention (MODEL.LEGACY_PLUS_ONE).
 *
 * These run on the host because they depend only on GT boxes, anchors and (detached) proposals,
 * none of which carries a gradient; their results are fed to the training graph as inputs.
 */
import { TargetError } from '../errors.js';

const f = Math.fround;

/** Matcher code of a box whose best IoU is below the low threshold (background). */
export const BELOW_LOW_THRESHOLD = -1;
/** Matcher code of a box whose best IoU is between the thresholds (ignored). */
export const BETWEEN_THRESHOLDS = -2;

/**
 * torchvision `box_iou(gt, boxes)` in float32: areas (x2 - x1) * (y2 - y1), intersection clamped at
 * 0, `inter / (area_a + area_b - inter)`. With `plusOne` (MODEL.LEGACY_PLUS_ONE), Detectron's
 * `bbox_overlaps`: widths, heights and the intersection's sides are x2 - x1 + 1 (a box of
 * integer pixel indices includes both ends). Returns [G * M], row g = GT g.
 */
export function boxIouFloat32(gt: Float32Array, boxes: Float32Array, plusOne = false): Float32Array {
  const g = gt.length / 4;
  const m = boxes.length / 4;
  const one = plusOne ? 1 : 0;
  // f(f(a - b) + 0) is f(a - b): the torchvision path keeps its exact float32 rounding.
  const side = (hi: number, lo: number): number => f(f(hi - lo) + one);
  const out = new Float32Array(g * m);
  const areaB = new Float32Array(m);
  for (let j = 0; j < m; j++) areaB[j] = f(side(boxes[4 * j + 2]!, boxes[4 * j]!) * side(boxes[4 * j + 3]!, boxes[4 * j + 1]!));
  for (let i = 0; i < g; i++) {
    const [ax1, ay1, ax2, ay2] = [gt[4 * i]!, gt[4 * i + 1]!, gt[4 * i + 2]!, gt[4 * i + 3]!];
    const areaA = f(side(ax2, ax1) * side(ay2, ay1));
    for (let j = 0; j < m; j++) {
      const w = side(Math.min(ax2, boxes[4 * j + 2]!), Math.max(ax1, boxes[4 * j]!));
      const h = side(Math.min(ay2, boxes[4 * j + 3]!), Math.max(ay1, boxes[4 * j + 1]!));
      const inter = f(Math.max(w, 0) * Math.max(h, 0));
      out[i * m + j] = f(inter / f(f(areaA + areaB[j]!) - inter));
    }
  }
  return out;
}

/** Thresholds of {@link matchBoxes} (torchvision `Matcher`). */
export interface MatcherOptions {
  /** IoU >= high: matched (fg_iou_thresh). */
  readonly high: number;
  /** IoU < low: BELOW_LOW_THRESHOLD (bg_iou_thresh); [low, high): BETWEEN_THRESHOLDS. */
  readonly low: number;
  /** Give every GT its highest-IoU boxes back (ties included, exact float equality). */
  readonly allowLowQualityMatches: boolean;
}

/**
 * torchvision `Matcher.__call__` on an IoU matrix [G, M]: per box the GT of the highest IoU (first
 * on ties), -1 below `low`, -2 in [low, high); then the low-quality matches. With no GT every box
 * is -1 (what the RPN and RoI heads do for an image without GT). Returns [M] int32.
 */
export function matchBoxes(iou: Float32Array, numGt: number, numBoxes: number, o: MatcherOptions): Int32Array {
  const matches = new Int32Array(numBoxes).fill(BELOW_LOW_THRESHOLD);
  if (numGt === 0) return matches;
  const best = new Float32Array(numBoxes).fill(-Infinity);
  const argmax = new Int32Array(numBoxes);
  for (let gi = 0; gi < numGt; gi++) {
    for (let j = 0; j < numBoxes; j++) {
      const v = iou[gi * numBoxes + j]!;
      if (v > best[j]!) {
        best[j] = v;
        argmax[j] = gi;
      }
    }
  }
  for (let j = 0; j < numBoxes; j++) {
    const v = best[j]!;
    matches[j] = v < o.low ? BELOW_LOW_THRESHOLD : v < o.high ? BETWEEN_THRESHOLDS : argmax[j]!;
  }
  if (o.allowLowQualityMatches) {
    for (let gi = 0; gi < numGt; gi++) {
      let highest = -Infinity;
      for (let j = 0; j < numBoxes; j++) highest = Math.max(highest, iou[gi * numBoxes + j]!);
      for (let j = 0; j < numBoxes; j++) if (iou[gi * numBoxes + j] === highest) matches[j] = argmax[j]!;
    }
  }
  return matches;
}

/** A balanced sample of one image: ascending indices of the sampled positives and negatives. */
export interface BalancedSample {
  readonly positive: Int32Array;
  readonly negative: Int32Array;
}

/** Numbers of {@link sampleBalanced} (torchvision `BalancedPositiveNegativeSampler`). */
export interface SamplerOptions {
  readonly batchSizePerImage: number;
  readonly positiveFraction: number;
}

/** `count` distinct members of `pool`, drawn with `rand` (partial Fisher-Yates), ascending. */
function drawSubset(pool: number[], count: number, rand: () => number): Int32Array {
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rand() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return Int32Array.from(pool.slice(0, count)).sort();
}

/**
 * torchvision's sampler on labels (1 positive, 0 negative, -1 ignored): num_pos = min(#positives,
 * int(batch * fraction)), num_neg = min(#negatives, batch - num_pos), uniform random subsets.
 */
export function sampleBalanced(labels: Int8Array, o: SamplerOptions, rand: () => number): BalancedSample {
  const pos: number[] = [];
  const neg: number[] = [];
  labels.forEach((l, i) => {
    if (l === 1) pos.push(i);
    else if (l === 0) neg.push(i);
  });
  const numPos = Math.min(pos.length, Math.trunc(o.batchSizePerImage * o.positiveFraction));
  const numNeg = Math.min(neg.length, o.batchSizePerImage - numPos);
  return { positive: drawSubset(pos, numPos, rand), negative: drawSubset(neg, numNeg, rand) };
}

/**
 * Checks an injected sample against this run's labels: every index in range and of the right kind
 * (a positive that is not positive here means the run and the recording disagree, e.g. a Matcher
 * decision flipped). Returns it as ascending int32 arrays.
 */
export function checkInjectedSample(sample: BalancedSample, labels: Int8Array, what: string): BalancedSample {
  const sorted = (a: Int32Array): Int32Array => Int32Array.from(a).sort();
  const check = (indices: Int32Array, want: number, kind: string): void => {
    for (const i of indices) {
      if (!(i >= 0 && i < labels.length)) throw new TargetError(`${what}: injected ${kind} index ${i} is out of range [0, ${labels.length})`, { source: what });
      if (labels[i] !== want) {
        throw new TargetError(`${what}: injected ${kind} index ${i} is labelled ${labels[i]} (1 positive, 0 negative, -1 ignored) in this run`, {
          source: what,
          hint: 'the recorded sample does not fit this run: different proposals (inject them too) or a different matching',
        });
      }
    }
  };
  check(sample.positive, 1, 'positive');
  check(sample.negative, 0, 'negative');
  return { positive: sorted(sample.positive), negative: sorted(sample.negative) };
}

/**
 * torchvision `BoxCoder.encode_single` in float32: (dx, dy, dw, dh) of `gt` [4] relative to `box`
 * [4] with `weights` (wx, wy, ww, wh); centres x1 + 0.5 w, widths x2 - x1. With `plusOne`
 * (MODEL.LEGACY_PLUS_ONE), Detectron's `bbox_transform_inv`: widths x2 - x1 + 1 (centres follow).
 * Writes into `out` at `at`.
 */
export function encodeBox(gt: ArrayLike<number>, gtAt: number, box: ArrayLike<number>, boxAt: number, weights: readonly number[], out: Float32Array, at: number, plusOne = false): void {
  // `weights` is (wx, wy, ww, wh) by contract; read directly (no allocation per box).
  const [wx, wy, ww, wh] = [f(weights[0]!), f(weights[1]!), f(weights[2]!), f(weights[3]!)];
  const one = plusOne ? 1 : 0;
  const exW = f(f(box[boxAt + 2]! - box[boxAt]!) + one);
  const exH = f(f(box[boxAt + 3]! - box[boxAt + 1]!) + one);
  const exX = f(box[boxAt]! + f(0.5 * exW));
  const exY = f(box[boxAt + 1]! + f(0.5 * exH));
  const gW = f(f(gt[gtAt + 2]! - gt[gtAt]!) + one);
  const gH = f(f(gt[gtAt + 3]! - gt[gtAt + 1]!) + one);
  const gX = f(gt[gtAt]! + f(0.5 * gW));
  const gY = f(gt[gtAt + 1]! + f(0.5 * gH));
  out[at] = f(f(wx * f(gX - exX)) / exW);
  out[at + 1] = f(f(wy * f(gY - exY)) / exH);
  out[at + 2] = f(ww * f(Math.log(f(gW / exW))));
  out[at + 3] = f(wh * f(Math.log(f(gH / exH))));
}
