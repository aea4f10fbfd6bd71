/**
 * The training targets inside the graph (TRAIN.PROPOSALS_IN_GRAPH): the same torchvision 0.14.1
 * float32 arithmetic as the host functions of `matching.ts` / `roi-sampling.ts` — `box_iou`, the
 * `Matcher` (with its -1 / -2 codes and low-quality matches), the balanced sampler, `BoxCoder.encode`
 * — written as graph nodes over a padded batch, so that the training graph can compute the RPN's
 * proposals, match and sample them and build every head's targets in the same session run as the
 * losses and their backward (one forward of the body per step instead of two).
 *
 * Randomness stays on the host: each sampler takes one key per candidate (uniform in [0, 1), drawn
 * from the step's seed) and keeps the candidates of the highest keys — a uniform random subset,
 * as torchvision's `randperm`. A recorded sample is replayed with keys 1 on its members and 0
 * elsewhere ({@link replayKeys}).
 *
 * Nothing here carries a gradient (torchvision detaches proposals; targets are constants of the
 * loss): the proposals enter through a StopGradient and every other input is GT or integer.
 */
import type { RcnnConfig } from '../config/config.js';
import { ConfigError, TargetError } from '../errors.js';
import type { Blob, GraphBuilder } from '../graph/builder.js';
import { type HostTensor, hostTensor } from '../graph/dtypes.js';
import * as ops from '../graph/onnx-ops.js';
import type { Proposals, TrainingRois } from '../model/contracts.js';
import type { BalancedSample, MatcherOptions, SamplerOptions } from './matching.js';
import type { ResizedTargets } from './targets.js';

/** Graph inputs of the ground truth and the sampling keys (TRAIN.PROPOSALS_IN_GRAPH). */
export const GT_TRAINING_INPUTS = {
  /** [N,G,4] float32: each image's GT boxes in resized-image pixels, padded with zero boxes to the batch's largest count G (at least 1). */
  boxes: 'train.gt.boxes',
  /** [N,G] int64: GT classes, 0 in padding slots. */
  labels: 'train.gt.labels',
  /** [N,G] bool: slot holds a GT object. */
  valid: 'train.gt.valid',
  /** [N·G,1,H,W] float32: slot n·G + g holds GT g's 0/1 mask of image n at the padded batch size (Mask R-CNN). */
  masks: 'train.gt.masks',
  /** [N,G,K,3] float32: (x, y, visibility) of each GT's keypoints (Keypoint R-CNN). */
  keypoints: 'train.gt.keypoints',
  /** [N, ≥A] float32 in [0, 1): the RPN sampler's key of every anchor (the first A are read). */
  rpnKeys: 'train.rpn.sample_keys',
  /** [N, TRAIN.RPN_POST_NMS_TOP_N + G] float32 in [0, 1): the RoI sampler's key of every proposal slot, then of every GT slot. */
  roiKeys: 'train.roi.sample_keys',
} as const;

/** The ground truth as graph values. */
export interface GroundTruthBlobs {
  readonly boxes: Blob;
  readonly labels: Blob;
  readonly valid: Blob;
  /** Only when the graph declares it (a mask head's targets). */
  readonly masks: () => Blob;
  /** Only when the graph declares it (a keypoint head's targets). */
  readonly keypoints: () => Blob;
}

/** `hi - lo`, plus 1 with Detectron's +1 widths (`plusOne`): a box side in the host's operation order. */
function side(g: GraphBuilder, hi: Blob, lo: Blob, plusOne: boolean, tag: string): Blob {
  const d = ops.sub(g, hi, lo, tag);
  return plusOne ? ops.add(g, d, g.constFloat32(1), `${tag}_plus1`) : d;
}

/**
 * torchvision `box_iou(gt, boxes)` per image in float32 (the host's `boxIouFloat32`, same operation
 * order): `gt` [N,G,4], `boxes` [N,M,4] or [1,M,4] (shared anchors); returns [N,G,M].
 */
export function boxIouGraph(g: GraphBuilder, gt: Blob, boxes: Blob, plusOne: boolean, name = 'iou'): Blob {
  return g.withScope(name, () => {
    const [ax1, ay1, ax2, ay2] = ops.split(g, gt, [1, 1, 1, 1], 2, 'gt'); // [N,G,1]
    const [bx1, by1, bx2, by2] = ops.split(g, ops.transpose(g, boxes, [0, 2, 1], 'boxes_t'), [1, 1, 1, 1], 1, 'b'); // [N|1,1,M]
    const areaA = ops.mul(g, side(g, ax2, ax1, plusOne, 'aw'), side(g, ay2, ay1, plusOne, 'ah'), 'area_a');
    const areaB = ops.mul(g, side(g, bx2, bx1, plusOne, 'bw'), side(g, by2, by1, plusOne, 'bh'), 'area_b');
    const zero = g.constFloat32(0);
    const w = side(g, ops.min(g, [ax2, bx2], 'ix2'), ops.max(g, [ax1, bx1], 'ix1'), plusOne, 'iw');
    const h = side(g, ops.min(g, [ay2, by2], 'iy2'), ops.max(g, [ay1, by1], 'iy1'), plusOne, 'ih');
    const inter = ops.mul(g, ops.max(g, [w, zero], 'iw0'), ops.max(g, [h, zero], 'ih0'), 'inter');
    return ops.div(g, inter, ops.sub(g, ops.add(g, areaA, areaB, 'areas'), inter, 'union'), 'iou');
  });
}

/**
 * torchvision `Matcher` per image on `iou` [N,G,M] with `valid` [N,G] GT slots: the GT of the
 * highest IoU (first on ties), -1 below `low`, -2 in [low, high), then the low-quality matches;
 * every box -1 for an image without GT. Returns [N,M] int64.
 */
export function matchBoxesGraph(g: GraphBuilder, iou: Blob, valid: Blob, o: MatcherOptions, name = 'match'): Blob {
  return g.withScope(name, () => {
    const valid3 = ops.unsqueeze(g, valid, [2], 'valid3');
    const masked = ops.where(g, valid3, iou, g.constFloat32(-Infinity), 'masked'); // [N,G,M]
    const best = ops.reduceMax(g, masked, [1], false, 'best'); // [N,M]
    const argmax = g.op('ArgMax', [masked], { axis: 1, keepdims: 0, select_last_index: 0 }, 'argmax'); // [N,M]
    const code = (v: number): Blob => g.constInt64(v, []);
    const matched = ops.where(
      g,
      ops.less(g, best, g.constFloat32(o.low), 'below'),
      code(-1),
      ops.where(g, ops.less(g, best, g.constFloat32(o.high), 'between'), code(-2), argmax, 'fg'),
      'matched',
    );
    if (!o.allowLowQualityMatches) return matched;
    // Each GT's highest IoU over the boxes; every box reaching it (exact equality) gets its own best GT back.
    const highest = ops.reduceMax(g, masked, [2], true, 'highest'); // [N,G,1]
    const reaches = ops.and(g, ops.equal(g, masked, highest, 'eq'), valid3, 'reaches');
    const any = ops.greater(g, ops.reduceMax(g, ops.cast(g, reaches, 'float32', 'reaches_f'), [1], false, 'any_f'), g.constFloat32(0), 'any');
    return ops.where(g, any, argmax, matched, 'matched_lq');
  });
}

/**
 * torchvision `BalancedPositiveNegativeSampler` per image on `kinds` [N,M] int64 (1 positive, 0
 * negative, -1 ignored): num_pos = min(#positives, int(batch · fraction)), num_neg = min(#negatives,
 * batch - num_pos); the members of each kind with the highest `keys` [N,M] are taken. Returns the
 * [N,M] bool masks of the sampled positives and negatives.
 */
export function sampleBalancedGraph(g: GraphBuilder, kinds: Blob, keys: Blob, o: SamplerOptions, name = 'sample'): { readonly positive: Blob; readonly negative: Blob } {
  return g.withScope(name, () => {
    const maxPositives = Math.trunc(o.batchSizePerImage * o.positiveFraction);
    const isPos = ops.equal(g, kinds, g.constInt64(1, []), 'is_pos');
    const isNeg = ops.equal(g, kinds, g.constInt64(0, []), 'is_neg');
    const count = (mask: Blob, tag: string): Blob => ops.reduceSum(g, ops.cast(g, mask, 'int64', `${tag}_i64`), [1], true, `${tag}_count`); // [N,1]
    const numPos = ops.min(g, [count(isPos, 'pos'), g.constInt64(maxPositives, [])], 'num_pos');
    const numNeg = ops.min(g, [count(isNeg, 'neg'), ops.sub(g, g.constInt64(o.batchSizePerImage, []), numPos, 'neg_room')], 'num_neg');
    const candidates = ops.dim(g, keys, 1, 'candidates');
    const zeros = ops.constantOfShape(g, ops.shape(g, keys, undefined, undefined, 'keys_shape'), 0, 'float32', 'zeros');
    const take = (mask: Blob, n: Blob, most: number, tag: string): Blob =>
      g.withScope(tag, () => {
        // Keys are in [0, 1): -1 puts every other candidate behind the members of this kind.
        const scored = ops.where(g, mask, keys, g.constFloat32(-1), 'scored');
        const k = ops.min(g, [g.constInt64([most]), candidates], 'k');
        const [, index] = ops.topK(g, scored, k, 1, 'top'); // [N,k]
        const position = ops.unsqueeze(g, ops.range(g, g.constInt64(0, []), ops.squeeze(g, k, [0], 'k_scalar'), g.constInt64(1, []), 'position'), [0], 'position_row');
        const kept = ops.cast(g, ops.less(g, position, n, 'kept'), 'float32', 'kept_f'); // [N,k]: the first n of each image
        const marked = g.op('ScatterElements', [zeros, index, kept], { axis: 1 }, 'marked');
        return ops.greater(g, marked, g.constFloat32(0), 'chosen');
      });
    return { positive: take(isPos, numPos, maxPositives, 'positive'), negative: take(isNeg, numNeg, o.batchSizePerImage, 'negative') };
  });
}

/**
 * torchvision `BoxCoder.encode_single` in float32 (the host's `encodeBox`, same operation order):
 * (dx, dy, dw, dh) of `gt` [R,4] relative to `boxes` [R,4] with `weights` (wx, wy, ww, wh); Detectron's
 * +1 widths with `plusOne`. Returns [R,4].
 */
export function encodeBoxesGraph(g: GraphBuilder, gt: Blob, boxes: Blob, weights: readonly number[], plusOne: boolean, name = 'encode'): Blob {
  if (weights.length !== 4) throw new ConfigError(`box coder weights need 4 values, got ${weights.length}`);
  return g.withScope(name, () => {
    const half = g.constFloat32(0.5);
    const [x1, y1, x2, y2] = ops.split(g, boxes, [1, 1, 1, 1], 1, 'box');
    const [gx1, gy1, gx2, gy2] = ops.split(g, gt, [1, 1, 1, 1], 1, 'gt');
    const exW = side(g, x2, x1, plusOne, 'ex_w');
    const exH = side(g, y2, y1, plusOne, 'ex_h');
    const exX = ops.add(g, x1, ops.mul(g, half, exW, 'ex_hw'), 'ex_x');
    const exY = ops.add(g, y1, ops.mul(g, half, exH, 'ex_hh'), 'ex_y');
    const gW = side(g, gx2, gx1, plusOne, 'gt_w');
    const gH = side(g, gy2, gy1, plusOne, 'gt_h');
    const gX = ops.add(g, gx1, ops.mul(g, half, gW, 'gt_hw'), 'gt_x');
    const gY = ops.add(g, gy1, ops.mul(g, half, gH, 'gt_hh'), 'gt_y');
    const [wx, wy, ww, wh] = weights.map((w) => g.constFloat32(w));
    const dx = ops.div(g, ops.mul(g, wx!, ops.sub(g, gX, exX, 'cx'), 'wdx'), exW, 'dx');
    const dy = ops.div(g, ops.mul(g, wy!, ops.sub(g, gY, exY, 'cy'), 'wdy'), exH, 'dy');
    const dw = ops.mul(g, ww!, ops.log(g, ops.div(g, gW, exW, 'rw'), 'lw'), 'dw');
    const dh = ops.mul(g, wh!, ops.log(g, ops.div(g, gH, exH, 'rh'), 'lh'), 'dh');
    return ops.concat(g, [dx, dy, dw, dh], 1, 'deltas');
  });
}

/** The RoIs of a graph sample, with where each one's GT is. */
export interface SampledRoiBlobs extends TrainingRois {
  /** [R,2] int64 (image, row) of each RoI in the padded rows. */
  readonly pairs: Blob;
  /** [R] int64 matched GT slot of each RoI in its image (-1 / -2 for background / ignored). */
  readonly matched: Blob;
}

/** The positive RoIs of a graph sample. */
export interface PositiveRoiBlobs extends SampledRoiBlobs {
  /** [Rp] int64: position of each positive in the sampled RoIs (the box predictor's row). */
  readonly sampledPosition: Blob;
  /** [Rp,2] int64: (image, GT slot) of each positive's matched GT, for GatherND on [N,G,…] GT values. */
  readonly gtPairs: Blob;
  /** [Rp] int64: n·G + g, the positive's GT slot in the flattened [N·G,…] GT values (masks). */
  readonly gtIndex: Blob;
}

/** What the RoI heads' graph targets build on ({@link sampleRoisGraph}). */
export interface RoiGraphSample {
  /** Every sampled RoI, image by image in ascending row order (the host sample's layout). */
  readonly sampled: SampledRoiBlobs;
  /** The sampled RoIs with a foreground label, in the same order. */
  readonly positives: PositiveRoiBlobs;
  readonly gt: GroundTruthBlobs;
}

/**
 * torchvision `RoIHeads.select_training_samples` in the graph (the host's {@link sampleRois}): each
 * image's proposals with its GT boxes appended (TRAIN.ADD_GT_PROPOSALS), matched without low-quality
 * matches (TRAIN.FG_THRESH / BG_THRESH_HI), balanced sampling by `keys`
 * ({@link GT_TRAINING_INPUTS.roiKeys}), sampled rows in ascending order per image.
 */
export function sampleRoisGraph(g: GraphBuilder, proposals: Proposals, gt: GroundTruthBlobs, keys: Blob, config: RcnnConfig): RoiGraphSample {
  const t = config.TRAIN;
  return g.withScope('roi_sample', () => {
    const proposalBoxes = g.stopGradient(proposals.boxes, 'proposals'); // torchvision detaches them
    const rows = t.ADD_GT_PROPOSALS ? ops.concat(g, [proposalBoxes, gt.boxes], 1, 'rows') : proposalBoxes; // [N,M,4]
    const rowValid = t.ADD_GT_PROPOSALS ? ops.concat(g, [proposals.valid, gt.valid], 1, 'row_valid') : proposals.valid;
    const iou = boxIouGraph(g, gt.boxes, rows, config.MODEL.LEGACY_PLUS_ONE);
    const matched = matchBoxesGraph(g, iou, gt.valid, { high: t.FG_THRESH, low: t.BG_THRESH_HI, allowLowQualityMatches: false });
    const zero = g.constInt64(0, []);
    const gtLabel = ops.gatherElements(g, gt.labels, ops.max(g, [matched, zero], 'matched0'), 1, 'gt_label');
    const labels = ops.where(g, ops.greaterOrEqual(g, matched, zero, 'is_matched'), gtLabel, ops.where(g, ops.equal(g, matched, g.constInt64(-1, []), 'is_bg'), zero, g.constInt64(-1, []), 'bg_or_ignored'), 'labels');
    const kinds = ops.where(g, rowValid, ops.where(g, ops.greater(g, labels, zero, 'fg'), g.constInt64(1, []), labels, 'kind'), g.constInt64(-1, []), 'kinds');
    // Keys: one per proposal slot (the first K of TRAIN.RPN_POST_NMS_TOP_N), then one per GT slot.
    const slots = ops.dim(g, proposals.boxes, 1, 'slots');
    const proposalKeys = ops.slice(g, keys, g.constInt64([0]), slots, [1], undefined, 'proposal_keys');
    const rowKeys = t.ADD_GT_PROPOSALS
      ? ops.concat(g, [proposalKeys, ops.slice(g, keys, [t.RPN_POST_NMS_TOP_N], ops.add(g, g.constInt64([t.RPN_POST_NMS_TOP_N]), ops.dim(g, gt.boxes, 1, 'gt_slots'), 'gt_end'), [1], undefined, 'gt_keys')], 1, 'row_keys')
      : proposalKeys;
    const sample = sampleBalancedGraph(g, kinds, rowKeys, { batchSizePerImage: t.BATCH_SIZE_PER_IM, positiveFraction: t.FG_FRACTION });
    const chosen = g.op('Or', [sample.positive, sample.negative], {}, 'chosen');
    const pairs = ops.transpose(g, ops.nonZero(g, chosen, 'chosen_at'), [1, 0], 'pairs'); // [R,2]
    const sampled: SampledRoiBlobs = {
      pairs,
      boxes: ops.gatherND(g, rows, pairs, 0, 'boxes'),
      batchIndex: ops.gather(g, pairs, zero, 1, 'batch_index'),
      labels: ops.gatherND(g, labels, pairs, 0, 'sampled_labels'),
      matched: ops.gatherND(g, matched, pairs, 0, 'sampled_matched'),
    };
    const sampledPosition = ops.squeeze(g, ops.nonZero(g, ops.greater(g, sampled.labels, zero, 'positive'), 'positive_at'), [0], 'positive_position');
    const pick = (x: Blob, tag: string): Blob => ops.gather(g, x, sampledPosition, 0, tag);
    const positivePairs = pick(pairs, 'positive_pairs');
    const positiveMatched = pick(sampled.matched, 'positive_matched');
    const image = ops.gather(g, positivePairs, zero, 1, 'positive_batch_index');
    const gtPairs = ops.concat(g, [ops.unsqueeze(g, image, [1], 'image_col'), ops.unsqueeze(g, positiveMatched, [1], 'gt_col')], 1, 'gt_pairs');
    const gtIndex = ops.add(g, ops.mul(g, image, ops.dim(g, gt.boxes, 1, 'gt_per_image'), 'gt_base'), positiveMatched, 'gt_index');
    const positives: PositiveRoiBlobs = {
      pairs: positivePairs,
      boxes: pick(sampled.boxes, 'positive_boxes'),
      batchIndex: image,
      labels: pick(sampled.labels, 'positive_labels'),
      matched: positiveMatched,
      sampledPosition,
      gtPairs,
      gtIndex,
    };
    return { sampled, positives, gt };
  });
}

/** Host data of {@link groundTruthFeeds}. */
export interface GroundTruthFeedOptions {
  /** (H, W) of the padded batch (the images input). */
  readonly padded: readonly [number, number];
  /** Width of the RPN keys (≥ the number of anchors per image). */
  readonly rpnKeyWidth: number;
  /** Draws the keys (the step's seeded PRNG). */
  readonly rand: () => number;
  /** Recorded samples to replay instead of drawn keys (tests, parity runs): per image. */
  readonly replay?: { readonly rpn: readonly BalancedSample[]; readonly roi: readonly RoiReplay[] };
}

/** A recorded RoI sample with the number of proposals of its image (the rows before the GT). */
export interface RoiReplay extends BalancedSample {
  readonly proposals: number;
}

/**
 * Keys that make a graph sampler pick `sample` ({@link GT_TRAINING_INPUTS}): 1 on its members, 0
 * elsewhere. `slotOf` maps a recorded index to its key column.
 */
export function replayKeys(width: number, sample: BalancedSample, slotOf: (index: number) => number = (i) => i): Float32Array {
  const keys = new Float32Array(width);
  for (const i of [...sample.positive, ...sample.negative]) {
    const slot = slotOf(i);
    if (!(slot >= 0 && slot < width)) throw new TargetError(`recorded sample index ${i} has no key slot below ${width}`);
    keys[slot] = 1;
  }
  return keys;
}

/**
 * The ground-truth and key feeds of a one-session training step (TRAIN.PROPOSALS_IN_GRAPH), from
 * each image's resized targets: GT padded to the batch's largest count (at least one slot), masks
 * placed in the padded batch's frame with their last row and column repeated once (RoiAlign
 * clamps at the map's border, the padded map's border is further out: the repeated edge gives the
 * clamped value inside the image), keypoints, and uniform keys for both samplers.
 */
export function groundTruthFeeds(config: RcnnConfig, targets: readonly ResizedTargets[], o: GroundTruthFeedOptions): Record<string, HostTensor> {
  const n = targets.length;
  const gMax = Math.max(1, ...targets.map((t) => t.labels.length));
  const boxes = new Float32Array(n * gMax * 4);
  const labels = new BigInt64Array(n * gMax);
  const valid = new Uint8Array(n * gMax);
  targets.forEach((t, i) => {
    boxes.set(t.boxes, i * gMax * 4);
    t.labels.forEach((l, j) => {
      labels[i * gMax + j] = BigInt(l);
      valid[i * gMax + j] = 1;
    });
  });
  const feeds: Record<string, HostTensor> = {
    [GT_TRAINING_INPUTS.boxes]: hostTensor('float32', [n, gMax, 4], boxes),
    [GT_TRAINING_INPUTS.labels]: hostTensor('int64', [n, gMax], labels),
    [GT_TRAINING_INPUTS.valid]: hostTensor('bool', [n, gMax], valid),
  };
  if (config.MODEL.MASK_ON) {
    const [hp, wp] = o.padded;
    const masks = new Float32Array(n * gMax * hp * wp);
    targets.forEach((t, i) => {
      const [h, w] = t.size;
      if (!t.masks) {
        if (t.labels.length > 0) throw new TargetError(`image ${i} has GT boxes but no masks (MODEL.MASK_ON)`, { source: `image ${i} masks` });
        return;
      }
      if (h > hp || w > wp) throw new TargetError(`image ${i}: masks of ${w} x ${h} do not fit the padded batch ${wp} x ${hp}`, { source: `image ${i} masks` });
      for (let j = 0; j < t.labels.length; j++) {
        const src = t.masks.subarray(j * h * w, (j + 1) * h * w);
        const base = (i * gMax + j) * hp * wp;
        const rows = Math.min(h + 1, hp);
        const cols = Math.min(w + 1, wp);
        for (let y = 0; y < rows; y++) {
          const sy = Math.min(y, h - 1) * w;
          const dst = base + y * wp;
          masks.set(src.subarray(sy, sy + w), dst);
          if (cols > w) masks[dst + w] = src[sy + w - 1]!;
        }
      }
    });
    feeds[GT_TRAINING_INPUTS.masks] = hostTensor('float32', [n * gMax, 1, hp, wp], masks);
  }
  if (config.MODEL.KEYPOINTS_ON) {
    const k = config.KRCNN.NUM_KEYPOINTS;
    const kps = new Float32Array(n * gMax * k * 3);
    targets.forEach((t, i) => {
      if (!t.keypoints) {
        if (t.labels.length > 0) throw new TargetError(`image ${i} has GT boxes but no keypoints (MODEL.KEYPOINTS_ON)`, { source: `image ${i} keypoints` });
        return;
      }
      kps.set(t.keypoints, i * gMax * k * 3);
    });
    feeds[GT_TRAINING_INPUTS.keypoints] = hostTensor('float32', [n, gMax, k, 3], kps);
  }
  const roiWidth = config.TRAIN.RPN_POST_NMS_TOP_N + gMax;
  const rpnKeys = new Float32Array(n * o.rpnKeyWidth);
  const roiKeys = new Float32Array(n * roiWidth);
  if (o.replay) {
    const { rpn, roi } = o.replay;
    if (rpn.length !== n || roi.length !== n) throw new TargetError(`replayed samples for ${rpn.length} / ${roi.length} image(s), the batch has ${n}`);
    for (let i = 0; i < n; i++) {
      rpnKeys.set(replayKeys(o.rpnKeyWidth, rpn[i]!), i * o.rpnKeyWidth);
      const p = roi[i]!.proposals;
      roiKeys.set(replayKeys(roiWidth, roi[i]!, (r) => (r < p ? r : config.TRAIN.RPN_POST_NMS_TOP_N + (r - p))), i * roiWidth);
    }
  } else {
    for (let i = 0; i < rpnKeys.length; i++) rpnKeys[i] = o.rand();
    for (let i = 0; i < roiKeys.length; i++) roiKeys[i] = o.rand();
  }
  feeds[GT_TRAINING_INPUTS.rpnKeys] = hostTensor('float32', [n, o.rpnKeyWidth], rpnKeys);
  feeds[GT_TRAINING_INPUTS.roiKeys] = hostTensor('float32', [n, roiWidth], roiKeys);
  return feeds;
}
