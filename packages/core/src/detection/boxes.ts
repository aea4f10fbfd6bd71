/**
 * Box arithmetic as ONNX subgraphs, shared by the RPN and the RoI heads so that both decode,
 * clip and suppress exactly alike. Float32 operation order follows torchvision's
 * `BoxCoder.decode_single`, `clip_boxes_to_image`, `remove_small_boxes` and `batched_nms`, so
 * results round the same way.
 */
import { type Blob, type GraphBuilder, attr } from '../graph/builder.js';
import * as ops from '../graph/onnx-ops.js';
import { DIMS } from '../model/dims.js';

/** Box-coder parameters (torchvision `BoxCoder(weights, bbox_xform_clip)`). */
export interface BoxCoderOptions {
  /** (wx, wy, ww, wh): deltas are divided by these. */
  readonly weights: readonly [number, number, number, number] | readonly number[];
  /** Upper clamp of dw and dh before exp(). */
  readonly clip: number;
  /** Detectron's convention: width = x2 - x1 + 1 and x2 = ctr + w/2 - 1. */
  readonly plusOne?: boolean;
}

/**
 * Decodes `deltas` [..., 4] (dx, dy, dw, dh) against reference boxes `boxes` [..., 4]
 * (broadcastable) into (x1, y1, x2, y2) [..., 4].
 */
export function decodeBoxes(g: GraphBuilder, deltas: Blob, boxes: Blob, o: BoxCoderOptions): Blob {
  return g.withScope('decode', () => {
    const [x1, y1, x2, y2] = ops.split(g, boxes, [1, 1, 1, 1], -1, 'ref');
    const one = o.plusOne ? g.constFloat32(1) : undefined;
    const half = g.constFloat32(0.5);
    let widths = ops.sub(g, x2, x1, 'w');
    let heights = ops.sub(g, y2, y1, 'h');
    if (one) {
      widths = ops.add(g, widths, one, 'w1');
      heights = ops.add(g, heights, one, 'h1');
    }
    const ctrX = ops.add(g, x1, ops.mul(g, half, widths), 'ctr_x');
    const ctrY = ops.add(g, y1, ops.mul(g, half, heights), 'ctr_y');
    const [rdx, rdy, rdw, rdh] = ops.split(g, deltas, [1, 1, 1, 1], -1, 'rel');
    const [wx, wy, ww, wh] = o.weights;
    // torchvision divides by the weight (not multiplies by its reciprocal): same rounding here.
    const dx = wx === 1 ? rdx : ops.div(g, rdx, g.constFloat32(wx), 'dx');
    const dy = wy === 1 ? rdy : ops.div(g, rdy, g.constFloat32(wy), 'dy');
    const clipMax = g.constFloat32(o.clip);
    const dw = ops.clip(g, ww === 1 ? rdw : ops.div(g, rdw, g.constFloat32(ww)), null, clipMax, 'dw');
    const dh = ops.clip(g, wh === 1 ? rdh : ops.div(g, rdh, g.constFloat32(wh)), null, clipMax, 'dh');
    const predCtrX = ops.add(g, ops.mul(g, dx, widths), ctrX, 'pred_ctr_x');
    const predCtrY = ops.add(g, ops.mul(g, dy, heights), ctrY, 'pred_ctr_y');
    const predW = ops.mul(g, ops.exp(g, dw), widths, 'pred_w');
    const predH = ops.mul(g, ops.exp(g, dh), heights, 'pred_h');
    const halfW = ops.mul(g, half, predW, 'half_w');
    const halfH = ops.mul(g, half, predH, 'half_h');
    const px1 = ops.sub(g, predCtrX, halfW, 'x1');
    const py1 = ops.sub(g, predCtrY, halfH, 'y1');
    let px2 = ops.add(g, predCtrX, halfW, 'x2');
    let py2 = ops.add(g, predCtrY, halfH, 'y2');
    if (one) {
      px2 = ops.sub(g, px2, one, 'x2m1');
      py2 = ops.sub(g, py2, one, 'y2m1');
    }
    return ops.concat(g, [px1, py1, px2, py2], -1, 'boxes');
  });
}

/**
 * Upper bounds (w, h, w, h) [N,1,4] float32 for clipping boxes of each image, from image sizes
 * [N,2] int64 (h, w). With `plusOne`, bounds are (w-1, h-1) as in Detectron.
 */
export function imageBounds(g: GraphBuilder, imageSizes: Blob, plusOne = false): Blob {
  return g.withScope('bounds', () => {
    const hw = ops.cast(g, imageSizes, 'float32', 'hw');
    const [h, w] = ops.split(g, hw, [1, 1], 1, 'split');
    let whwh = ops.concat(g, [w, h, w, h], 1, 'whwh');
    if (plusOne) whwh = ops.sub(g, whwh, g.constFloat32(1), 'minus1');
    return ops.unsqueeze(g, whwh, [1], 'bounds');
  });
}

/** Clamps boxes [..., 4] to [0, bound] per coordinate; `bounds` broadcasts against `boxes` (see {@link imageBounds}). */
export function clipBoxes(g: GraphBuilder, boxes: Blob, bounds: Blob): Blob {
  return g.withScope('clip', () => ops.min(g, [ops.max(g, [boxes, g.constFloat32(0)], 'lo'), bounds], 'hi'));
}

/** Bool mask [...] of boxes [..., 4] whose width and height are both >= `minSize` (torchvision remove_small_boxes). */
export function keepLargeBoxes(g: GraphBuilder, boxes: Blob, minSize: number, plusOne = false): Blob {
  return g.withScope('min_size', () => {
    const [x1, y1, x2, y2] = ops.split(g, boxes, [1, 1, 1, 1], -1, 'c');
    let ws = ops.sub(g, x2, x1, 'ws');
    let hs = ops.sub(g, y2, y1, 'hs');
    if (plusOne) {
      ws = ops.add(g, ws, g.constFloat32(1));
      hs = ops.add(g, hs, g.constFloat32(1));
    }
    const m = g.constFloat32(minSize);
    const keep = ops.and(g, ops.greaterOrEqual(g, ws, m), ops.greaterOrEqual(g, hs, m), 'keep');
    return ops.squeeze(g, keep, [-1], 'squeeze');
  });
}

/** Options of {@link batchedNmsKeep}. */
export interface BatchedNmsOptions {
  /** Candidate boxes [N, G, P, 4]: N images, G groups (levels or classes), P candidates per group. */
  readonly boxes: Blob;
  /** Scores [N, G, P] float32 (non-negative). */
  readonly scores: Blob;
  /** [N, G, P] bool: candidate takes part (passed thresholds, not padding). */
  readonly valid: Blob;
  /** A box is suppressed by a higher-scoring one of its group when IoU > this. */
  readonly iouThreshold: number;
  /**
   * torchvision's `batched_nms` runs one NMS on boxes offset by `group_id * (max_coord + 1)` when an
   * image has at most this many candidates, else one NMS per group. Both give the same set up to
   * float32 rounding of the offset boxes; reproducing the choice reproduces the rounding.
   * 0 = always per group.
   */
  readonly coordinateTrickMaxBoxes: number;
  /** Id of group 0 in torchvision's idxs (0 for FPN levels, 1 for classes that skip background). */
  readonly firstGroupId: number;
}

const MAX_INT32 = 2 ** 31 - 1;
const LOWEST_FLOAT32 = -3.4028234663852886e38;

/**
 * Per-image, per-group NMS (torchvision `batched_nms` applied to each image of the batch).
 * Returns [N, G*P] float32: the candidate's score where it is kept, -inf where it is suppressed
 * or invalid. `TopK` on the result yields the kept candidates sorted by score, as torchvision
 * returns them.
 */
export function batchedNmsKeep(g: GraphBuilder, o: BatchedNmsOptions): Blob {
  return g.withScope('batched_nms', () => {
    const negInf = g.constFloat32(-Infinity);
    const iou = g.constFloat32([o.iouThreshold]);
    const maxOut = g.constInt64([MAX_INT32]);
    const scoreThreshold = g.constFloat32([LOWEST_FLOAT32]);
    const masked = ops.where(g, o.valid, o.scores, negInf, 'masked'); // [N,G,P]
    const shapeNGP = ops.shape(g, o.scores, 0, 3, 'ngp');
    const [dN, dG, dP] = ops.split(g, shapeNGP, [1, 1, 1], 0, 'dims');
    const gp = ops.mul(g, dG, dP, 'gp');
    const flatNGP = ops.reshape(g, masked, [-1], 'flat_scores');
    const total = ops.shape(g, flatNGP, 0, 1, 'total');
    const zeros = ops.constantOfShape(g, total, 0, 'float32', 'zeros');
    const ones1 = g.constFloat32([1]);

    // Dense [N, G*P] 0/1 keep mask from the flat indices of the selected boxes.
    const keepFromSelected = (b: GraphBuilder, flatIndex: Blob, tag: string): Blob => {
      const idx = ops.unsqueeze(b, flatIndex, [1], `${tag}_idx`);
      const count = ops.shape(b, flatIndex, 0, 1, `${tag}_n`);
      const upd = ops.expand(b, ones1, count, `${tag}_ones`);
      return ops.reshape(b, ops.scatterND(b, zeros, idx, upd, `${tag}_scatter`), ops.concat(b, [dN, gp], 0, `${tag}_shape`), `${tag}_keep`);
    };

    // Per-group NMS: every (image, group) pair is its own NMS "batch" entry.
    const perGroup = (b: GraphBuilder): Blob =>
      b.withScope('per_group', () => {
        const nG = ops.mul(b, dN, dG, 'ng');
        const boxes = ops.reshape(b, o.boxes, ops.concat(b, [nG, dP, b.constInt64([4])], 0), 'boxes');
        const scores = ops.reshape(b, masked, ops.concat(b, [nG, b.constInt64([1]), dP], 0), 'scores');
        const sel = ops.nonMaxSuppression(b, boxes, scores, { maxOutputPerClass: maxOut, iouThreshold: iou, scoreThreshold });
        const [bi, , p] = ops.split(b, sel, [1, 1, 1], 1, 'sel');
        // flat = b * P + p, which indexes [N, G, P] in row-major order.
        const flat = ops.squeeze(b, ops.add(b, ops.mul(b, bi, dP), p), [1], 'flat');
        return keepFromSelected(b, flat, 'pg');
      });
    if (o.coordinateTrickMaxBoxes <= 0) return ops.where(g, ops.cast(g, perGroup(g), 'bool'), ops.reshape(g, masked, ops.concat(g, [dN, gp], 0)), negInf, 'kept');

    // Offset trick: boxes + group_id * (max_coord + 1), one NMS per image.
    const offset = (b: GraphBuilder): Blob =>
      b.withScope('offset', () => {
        const validBoxes = ops.where(b, ops.unsqueeze(b, o.valid, [3]), o.boxes, negInf, 'valid_boxes');
        const maxCoord = ops.reduceMax(b, validBoxes, [1, 2, 3], true, 'max_coord'); // [N,1,1,1]
        const gIds = ops.cast(b, ops.range(b, b.constInt64(o.firstGroupId), ops.add(b, ops.squeeze(b, dG, [0]), b.constInt64(o.firstGroupId)), b.constInt64(1)), 'float32', 'gids');
        const gIds4 = ops.reshape(b, gIds, [1, -1, 1, 1], 'gids4');
        const offsets = ops.mul(b, gIds4, ops.add(b, maxCoord, b.constFloat32(1)), 'offsets'); // [N,G,1,1]
        const shifted = ops.add(b, o.boxes, offsets, 'shifted');
        const boxes = ops.reshape(b, shifted, ops.concat(b, [dN, gp, b.constInt64([4])], 0), 'boxes');
        const scores = ops.reshape(b, masked, ops.concat(b, [dN, b.constInt64([1]), gp], 0), 'scores');
        const sel = ops.nonMaxSuppression(b, boxes, scores, { maxOutputPerClass: maxOut, iouThreshold: iou, scoreThreshold });
        const [bi, , p] = ops.split(b, sel, [1, 1, 1], 1, 'sel');
        const flat = ops.squeeze(b, ops.add(b, ops.mul(b, bi, gp), p), [1], 'flat');
        return keepFromSelected(b, flat, 'off');
      });
    // Which path torchvision would take for each image: by its number of valid candidates.
    const counts = ops.reduceSum(g, ops.cast(g, ops.reshape(g, o.valid, ops.concat(g, [dN, gp], 0)), 'int64'), [1], true, 'counts');
    const useOffset = ops.not(g, ops.greater(g, counts, g.constInt64([o.coordinateTrickMaxBoxes])), 'use_offset'); // [N,1]
    // Only the paths some image takes are run (If): NMS over thousands of candidates is the
    // costly part, and a batch (always so at batch size 1) usually takes one path only.
    const takes = ops.cast(g, useOffset, 'int64', 'takes');
    const flag = (reduce: 'ReduceMin' | 'ReduceMax', name: string): Blob => ops.cast(g, g.op(reduce, [takes], { keepdims: 0 }, `${name}_i`), 'bool', name);
    // Every branch yields the [N, G*P] keep mask; G*P gets a name of its own (this call's scope):
    // another batched NMS of the model has another number of candidates.
    const keepDims = [DIMS.images, `${g.scope}candidates`];
    const branch = (name: string, fn: (b: GraphBuilder) => Blob): ReturnType<GraphBuilder['subgraph']> => g.subgraph(name, [], (b) => [{ blob: fn(b), dtype: 'float32', dims: keepDims }]);
    const mixed = (b: GraphBuilder): Blob => ops.where(b, useOffset, offset(b), perGroup(b), 'keep_mixed');
    const someOffset = (b: GraphBuilder): Blob =>
      b.node('If', [flag('ReduceMax', 'any_offset')], { then_branch: attr.graph(b.subgraph('mixed', [], (m) => [{ blob: mixed(m), dtype: 'float32', dims: keepDims }])), else_branch: attr.graph(b.subgraph('all_per_group', [], (m) => [{ blob: perGroup(m), dtype: 'float32', dims: keepDims }])) }, { name: 'if_some_offset' })[0];
    const [keep] = g.node('If', [flag('ReduceMin', 'all_offset')], { then_branch: attr.graph(branch('all_offset', offset)), else_branch: attr.graph(branch('not_all_offset', someOffset)) }, { name: 'if_all_offset' });
    const flatScores = ops.reshape(g, masked, ops.concat(g, [dN, gp], 0), 'scores2d');
    return ops.where(g, ops.cast(g, keep, 'bool'), flatScores, negInf, 'kept');
  });
}
