/**
 * Test-time proposal generation in the graph: torchvision's `RegionProposalNetwork.filter_proposals`
 * for a whole batch at once, with every image filtered against its own size and the result padded
 * to a common number of slots K (core's `Proposals` layout).
 */
import { type Blob, type GraphBuilder, type Proposals, batchedNmsKeep, clipBoxes, decodeBoxes, imageBounds, keepLargeBoxes, ops } from '@rcnn/core';

/** The flattened RPN outputs of one level and its anchors. */
export interface LevelCandidates {
  /** [N, M] objectness logits in (y, x, a) order. */
  readonly logits: Blob;
  /** [N, M, 4] box deltas (dx, dy, dw, dh) in the same order. */
  readonly deltas: Blob;
  /** [M, 4] anchors (x1, y1, x2, y2), shared by every image. */
  readonly anchors: Blob;
}

/** Numbers of {@link filterProposals}, read from config by the caller. */
export interface ProposalFilterOptions {
  /** TEST.RPN_PRE_NMS_TOP_N: candidates per level and image, by logit. */
  readonly preNmsTopN: number;
  /** TEST.RPN_POST_NMS_TOP_N: proposals kept per image. */
  readonly postNmsTopN: number;
  /** TEST.RPN_NMS_THRESH. */
  readonly nmsThresh: number;
  /** TEST.RPN_MIN_SIZE. */
  readonly minSize: number;
  /**
   * TEST.RPN_MIN_SIZE_RULE: `torchvision` keeps boxes with width and height >= minSize
   * (remove_small_boxes); `detectron2` keeps width and height > minSize (Boxes.nonempty). Default torchvision.
   */
  readonly minSizeRule?: 'torchvision' | 'detectron2';
  /** TEST.RPN_SCORE_THRESH (kept when score >= it). */
  readonly scoreThresh: number;
  /** RPN.BBOX_REG_WEIGHTS. */
  readonly weights: readonly number[];
  /** MODEL.BBOX_XFORM_CLIP. */
  readonly bboxXformClip: number;
  /** MODEL.LEGACY_PLUS_ONE. */
  readonly plusOne: boolean;
  /** TEST.NMS_COORDINATE_TRICK_MAX_BOXES. */
  readonly coordinateTrickMaxBoxes: number;
}

/**
 * Detectron2 `Boxes.nonempty(threshold)`: width > threshold and height > threshold (float32
 * x2 - x1 and y2 - y1), so with threshold 0 a box clipped to zero width or height is dropped.
 */
export function keepNonEmptyBoxes(g: GraphBuilder, boxes: Blob, threshold: number): Blob {
  return g.withScope('nonempty', () => {
    const [x1, y1, x2, y2] = ops.split(g, boxes, [1, 1, 1, 1], -1, 'coords');
    const t = g.constFloat32(threshold);
    const wide = ops.greater(g, ops.sub(g, x2, x1, 'w'), t, 'wide');
    const tall = ops.greater(g, ops.sub(g, y2, y1, 'h'), t, 'tall');
    return ops.squeeze(g, ops.and(g, wide, tall, 'both'), [-1], 'keep');
  });
}

/** Pads axis 1 of `x` (rank `rank`) from its size to `target` (int64 [1] blobs) with zeros / false. */
function padAxis1(g: GraphBuilder, x: Blob, size: Blob, target: Blob, rank: number, name: string): Blob {
  const zeros = (n: number): Blob[] => (n > 0 ? [g.constInt64(new Array<number>(n).fill(0))] : []);
  // ONNX pads: [begin_0 .. begin_{r-1}, end_0 .. end_{r-1}]; only end_1 is non-zero.
  const pads = ops.concat(g, [...zeros(rank + 1), ops.sub(g, target, size, `${name}_amount`), ...zeros(rank - 2)], 0, `${name}_pads`);
  return g.op('Pad', [x, pads], { mode: 'constant' }, name);
}

/**
 * Per level: top-k logits (k = min(preNmsTopN, M)), decode those candidates, sigmoid, clip to each
 * image's size, drop small boxes and low scores, NMS per level (torchvision `batched_nms` with the
 * level as the group); then the best `postNmsTopN` of each image sorted by score.
 *
 * Returns K = min(postNmsTopN, sum_l k_l) slots per image (so K >= 1 whenever there is an anchor):
 * slots past an image's count have valid = false, score -inf and box (0, 0, 0, 0).
 */
export function filterProposals(g: GraphBuilder, levels: readonly LevelCandidates[], imageSizes: Blob, o: ProposalFilterOptions): Proposals {
  return g.withScope('proposals', () => {
    const bounds = imageBounds(g, imageSizes, o.plusOne); // [N,1,4]
    const preNms = g.constInt64([o.preNmsTopN]);
    const scoreThresh = g.constFloat32(o.scoreThresh);
    const perLevel = levels.map((level, i) =>
      g.withScope(`level${i}`, () => {
        const count = ops.dim(g, level.logits, 1, 'count');
        const k = ops.min(g, [preNms, count], 'k');
        const [logits, index] = ops.topK(g, level.logits, k, 1, 'top');
        const deltas = ops.gatherND(g, level.deltas, ops.unsqueeze(g, index, [2], 'index3'), 1, 'deltas'); // [N,k,4]
        const anchors = ops.gather(g, level.anchors, index, 0, 'anchors'); // [N,k,4]
        const decoded = decodeBoxes(g, deltas, anchors, { weights: o.weights, clip: o.bboxXformClip, plusOne: o.plusOne });
        const boxes = clipBoxes(g, decoded, bounds);
        // Sigmoid in float64, rounded once to float32: monotone in the logit (ORT's float32 Sigmoid
        // is an approximation that can reorder close logits by an ulp), so slots sorted by logit
        // are sorted by score, and the values are the correctly rounded ones.
        const scores = ops.cast(g, ops.sigmoid(g, ops.cast(g, logits, 'float64', 'logits_f64'), 'sigmoid_f64'), 'float32', 'scores');
        const large = o.minSizeRule === 'detectron2' ? keepNonEmptyBoxes(g, boxes, o.minSize) : keepLargeBoxes(g, boxes, o.minSize, o.plusOne);
        const valid = ops.and(g, large, ops.greaterOrEqual(g, scores, scoreThresh, 'above'), 'valid');
        return { k, boxes, logits, scores, valid };
      }),
    );

    // Common layout [N, G, P] with P = max_l k_l; padding slots are invalid.
    const p = perLevel.length === 1 ? perLevel[0]!.k : ops.max(g, perLevel.map((l) => l.k), 'p');
    const stack = (parts: Blob[], rank: number, name: string): Blob => {
      if (parts.length === 1) return ops.unsqueeze(g, parts[0]!, [1], name);
      const padded = parts.map((x, i) => ops.unsqueeze(g, padAxis1(g, x, perLevel[i]!.k, p, rank, `${name}_pad${i}`), [1], `${name}_u${i}`));
      return ops.concat(g, padded, 1, name);
    };
    const boxes = stack(perLevel.map((l) => l.boxes), 3, 'boxes'); // [N,G,P,4]
    const scores = stack(perLevel.map((l) => l.scores), 2, 'scores'); // [N,G,P]
    const valid = stack(perLevel.map((l) => l.valid), 2, 'valid'); // [N,G,P]
    const logits = stack(perLevel.map((l) => l.logits), 2, 'logits'); // [N,G,P]
    const flatScores = ops.reshape(g, scores, [0, -1], 'flat_scores'); // [N,G*P]

    // torchvision's NMS visits boxes in a stable descending sort of their float32 sigmoid scores.
    // Near 1, distinct logits round to the same score (torch then keeps the top-k order, i.e. the
    // higher logit first), and ORT's sigmoid rounds differently from torch's by an ulp, while
    // ORT's NonMaxSuppression does not document an order for equal scores. So NMS gets each
    // candidate's rank instead: descending logit, then flat (level, top-k rank) index, which is
    // torch's visiting order wherever its sigmoid is monotone. ORT's TopK puts the lower index first on ties.
    const rankScores = g.withScope('rank', () => {
      const masked = ops.reshape(g, ops.where(g, valid, logits, g.constFloat32(-Infinity), 'masked'), [0, -1], 'flat'); // [N,G*P]
      const gp = ops.dim(g, masked, 1, 'gp');
      const [, order] = ops.topK(g, masked, gp, 1, 'order'); // order[n, r] = flat index of rank r
      // rank r gets score G*P - r (distinct, exact in float32, positive).
      const descending = ops.cast(g, ops.range(g, ops.squeeze(g, gp, [0], 'gp_scalar'), g.constInt64(0), g.constInt64(-1), 'desc'), 'float32', 'desc_f');
      const ngp = ops.shape(g, masked, undefined, undefined, 'ngp');
      const updates = ops.expand(g, ops.unsqueeze(g, descending, [0], 'desc_row'), ngp, 'updates');
      const zeros = ops.constantOfShape(g, ngp, 0, 'float32', 'zeros');
      const ranked = g.op('ScatterElements', [zeros, order, updates], { axis: 1 }, 'ranked');
      return ops.reshape(g, ranked, ops.shape(g, scores, undefined, undefined, 'ngp_shape'), 'rank_scores'); // [N,G,P]
    });

    const kept = batchedNmsKeep(g, {
      boxes,
      scores: rankScores,
      valid,
      iouThreshold: o.nmsThresh,
      coordinateTrickMaxBoxes: o.coordinateTrickMaxBoxes,
      firstGroupId: 0,
    }); // [N, G*P]: rank score where kept, -inf elsewhere

    const total = perLevel.slice(1).reduce((acc, l, i) => ops.add(g, acc, l.k, `total${i}`), perLevel[0]!.k);
    const kSlots = ops.min(g, [g.constInt64([o.postNmsTopN]), total], 'k_slots');
    const [topRanks, topIndex] = ops.topK(g, kept, kSlots, 1, 'final');
    const slotValid = ops.greater(g, topRanks, g.constFloat32(-Infinity), 'slot_valid'); // [N,K]
    const topScores = ops.where(g, slotValid, ops.gatherElements(g, flatScores, topIndex, 1, 'picked_scores'), g.constFloat32(-Infinity), 'scores_out');
    const flatBoxes = ops.reshape(g, boxes, [0, -1, 4], 'flat_boxes');
    const picked = ops.gatherND(g, flatBoxes, ops.unsqueeze(g, topIndex, [2], 'final_index3'), 1, 'picked'); // [N,K,4]
    const outBoxes = ops.where(g, ops.unsqueeze(g, slotValid, [2], 'slot_valid3'), picked, g.constFloat32(0), 'boxes_out');
    const counts = ops.reduceSum(g, ops.cast(g, slotValid, 'int64', 'valid_i64'), [1], false, 'counts');
    return { boxes: outBoxes, scores: topScores, valid: slotValid, counts };
  });
}
