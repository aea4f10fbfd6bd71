/**
 * Detection post-processing in the graph (torchvision `RoIHeads.postprocess_detections`) for a
 * whole batch at once: softmax, per-class decode, clip to each image, drop background, score and
 * size thresholds, per-class NMS per image, top detections per image, flattened over the batch.
 *
 * torchvision lays the candidates of an image out proposal-major ([K, C-1]); here they are
 * class-major ([N, C-1, K]) because that is core's `batchedNmsKeep` layout. Both give the same
 * detections: NMS and TopK order candidates by score, not by position.
 */
import {
  type Blob,
  ConfigError,
  type Detections,
  type GraphBuilder,
  type Proposals,
  type RcnnConfig,
  batchedNmsKeep,
  clipBoxes,
  compactValid,
  decodeBoxes,
  imageBounds,
  keepLargeBoxes,
  ops,
} from '@rcnn/core';

/** Everything the post-processing reads from config. */
export interface DetectionPostprocessOptions {
  /** Classes including background (MODEL.NUM_CLASSES). */
  readonly numClasses: number;
  /** Box regression is (background, foreground) and the foreground deltas apply to every class (MODEL.CLS_AGNOSTIC_BBOX_REG). */
  readonly clsAgnosticBboxReg: boolean;
  /** Box coder weights (MODEL.BBOX_REG_WEIGHTS). */
  readonly bboxRegWeights: readonly number[];
  /** Clamp of dw, dh (MODEL.BBOX_XFORM_CLIP). */
  readonly bboxXformClip: number;
  /** Detectron's +1 box convention in decode, clip and size checks (MODEL.LEGACY_PLUS_ONE). */
  readonly legacyPlusOne: boolean;
  /** Scores must be strictly greater (TEST.SCORE_THRESH). */
  readonly scoreThresh: number;
  /** Per-class NMS IoU threshold (TEST.NMS). */
  readonly nmsThresh: number;
  /** Detections kept per image (TEST.DETECTIONS_PER_IM). */
  readonly detectionsPerImage: number;
  /** Boxes narrower or lower than this are dropped (TEST.BBOX_MIN_SIZE). */
  readonly minSize: number;
  /** batched_nms path choice (TEST.NMS_COORDINATE_TRICK_MAX_BOXES). */
  readonly coordinateTrickMaxBoxes: number;
}

/** Reads {@link DetectionPostprocessOptions} from a config. */
export function detectionPostprocessOptions(config: RcnnConfig): DetectionPostprocessOptions {
  const { MODEL: m, TEST: t } = config;
  return {
    numClasses: m.NUM_CLASSES,
    clsAgnosticBboxReg: m.CLS_AGNOSTIC_BBOX_REG,
    bboxRegWeights: m.BBOX_REG_WEIGHTS,
    bboxXformClip: m.BBOX_XFORM_CLIP,
    legacyPlusOne: m.LEGACY_PLUS_ONE,
    scoreThresh: t.SCORE_THRESH,
    nmsThresh: t.NMS,
    detectionsPerImage: t.DETECTIONS_PER_IM,
    minSize: t.BBOX_MIN_SIZE,
    coordinateTrickMaxBoxes: t.NMS_COORDINATE_TRICK_MAX_BOXES,
  };
}

/** Number of box-regression outputs per RoI: 4 per class, or 8 (background, foreground) when class-agnostic. */
export function boxRegressionOutputs(numClasses: number, clsAgnostic: boolean): number {
  return clsAgnostic ? 8 : 4 * numClasses;
}

/** Inputs of {@link postprocessDetections}. */
export interface DetectionPostprocessInputs {
  /** [N*K, C] class logits, one row per proposal slot. */
  readonly classLogits: Blob;
  /** [N*K, 4C] (or [N*K, 8] class-agnostic) deltas, not yet divided by the box coder weights. */
  readonly boxRegression: Blob;
  /** The proposals the rows belong to ([N,K,…], padding marked invalid). */
  readonly proposals: Proposals;
  /** [N,2] int64 (h, w) of each resized image, for clipping. */
  readonly imageSizes: Blob;
}

/**
 * Turns per-proposal class logits and deltas into final detections, flattened over the batch in
 * image order and score-descending within an image. An image (or a batch) without detections
 * gives zero rows, never an error.
 */
export function postprocessDetections(g: GraphBuilder, inputs: DetectionPostprocessInputs, o: DetectionPostprocessOptions): Detections {
  if (o.numClasses < 2) throw new ConfigError(`MODEL.NUM_CLASSES is ${o.numClasses}: the box head needs background plus at least one class`, { key: 'MODEL.NUM_CLASSES' });
  const numFg = o.numClasses - 1;
  return g.withScope('postprocess', () => {
    const { proposals } = inputs;
    const nk = ops.shape(g, proposals.boxes, 0, 2, 'nk'); // [N, K]
    const k = ops.shape(g, proposals.boxes, 1, 2, 'k');

    // Class probabilities of the foreground classes, [N, G, K] (G = C - 1).
    const probs = ops.softmax(g, inputs.classLogits, -1, 'softmax');
    const fgProbs = ops.slice(g, probs, [1], [o.numClasses], [1], undefined, 'fg_probs');
    const scores = ops.transpose(g, ops.reshape(g, fgProbs, ops.concat(g, [nk, g.constInt64([numFg])], 0, 'nkg'), 'scores_nkg'), [0, 2, 1], 'scores');

    // Boxes: decode each class's deltas against its proposal, clip to its image, [N, G, K, 4].
    const boxes = g.withScope('boxes', () => {
      const perClass = o.clsAgnosticBboxReg ? 1 : numFg;
      // Skip the background deltas: torchvision decodes and then drops them, the result is the same.
      const fgDeltas = ops.slice(g, inputs.boxRegression, [4], [4 + 4 * perClass], [1], undefined, 'fg_deltas');
      const deltas = ops.reshape(g, fgDeltas, [-1, perClass, 4], 'deltas'); // [R, G', 4]
      const refs = ops.reshape(g, proposals.boxes, [-1, 1, 4], 'refs'); // [R, 1, 4]
      const decoded = decodeBoxes(g, deltas, refs, { weights: o.bboxRegWeights, clip: o.bboxXformClip, plusOne: o.legacyPlusOne });
      const perImage = ops.reshape(g, decoded, ops.concat(g, [nk, g.constInt64([perClass, 4])], 0, 'nkg4'), 'per_image'); // [N, K, G', 4]
      const bounds = ops.unsqueeze(g, imageBounds(g, inputs.imageSizes, o.legacyPlusOne), [1], 'bounds4'); // [N, 1, 1, 4]
      let clipped = clipBoxes(g, perImage, bounds);
      if (o.clsAgnosticBboxReg) {
        // Detectron's class-agnostic regression: the one foreground box serves every class.
        clipped = ops.expand(g, clipped, ops.concat(g, [nk, g.constInt64([numFg, 4])], 0, 'nkG4'), 'every_class');
      }
      return ops.transpose(g, clipped, [0, 2, 1, 3], 'class_major'); // [N, G, K, 4]
    });

    // Candidates: real proposal, score > SCORE_THRESH (strict), box at least BBOX_MIN_SIZE.
    const valid = g.withScope('candidates', () => {
      const realSlot = ops.unsqueeze(g, proposals.valid, [1], 'real'); // [N, 1, K]
      const confident = ops.greater(g, scores, g.constFloat32(o.scoreThresh), 'confident');
      const large = keepLargeBoxes(g, boxes, o.minSize, o.legacyPlusOne);
      return ops.and(g, ops.and(g, realSlot, confident, 'real_confident'), large, 'valid');
    });

    // A batch without any proposal has K = 0; one padding slot (invalid) keeps every shape non-empty
    // for NMS, whose dynamic reshapes cannot express a zero-sized axis.
    const slots = g.withScope('at_least_one_slot', () => {
      const extra = ops.max(g, [ops.sub(g, g.constInt64([1]), k, 'one_minus_k'), g.constInt64([0])], 'extra');
      const padLast = (x: Blob, rank: number, axis: number, name: string): Blob => {
        const pads = Array<Blob>(2 * rank).fill(g.constInt64([0]));
        pads[rank + axis] = extra;
        return g.op('Pad', [x, ops.concat(g, pads, 0, `${name}_pads`)], {}, name);
      };
      return {
        scores: padLast(scores, 3, 2, 'scores'),
        boxes: padLast(boxes, 4, 2, 'boxes'),
        valid: padLast(valid, 3, 2, 'valid'),
        k: ops.add(g, k, extra, 'k'),
      };
    });

    const kept = batchedNmsKeep(g, {
      boxes: slots.boxes,
      scores: slots.scores,
      valid: slots.valid,
      iouThreshold: o.nmsThresh,
      coordinateTrickMaxBoxes: o.coordinateTrickMaxBoxes,
      // Labels run 1..C-1 (background is dropped); torchvision offsets boxes by the label.
      firstGroupId: 1,
    }); // [N, G*K]: score where kept, -inf elsewhere

    return g.withScope('select', () => {
      const candidates = ops.shape(g, kept, 1, 2, 'candidates'); // [1] = G*K
      const topN = ops.min(g, [candidates, g.constInt64([o.detectionsPerImage])], 'top_n');
      const [topScores, topIndex] = ops.topK(g, kept, topN, 1, 'top'); // [N, top_n], score-descending
      const isKept = ops.greater(g, topScores, g.constFloat32(-Infinity), 'is_kept');
      const { flatIndex, batchIndex } = compactValid(g, isKept);
      const outScores = ops.gather(g, ops.reshape(g, topScores, [-1], 'flat_scores'), flatIndex, 0, 'scores');
      const candidate = ops.gather(g, ops.reshape(g, topIndex, [-1], 'flat_candidates'), flatIndex, 0, 'candidate'); // index in G*K
      const row = ops.add(g, candidate, ops.mul(g, batchIndex, candidates, 'image_offset'), 'row'); // index in N*G*K
      const outBoxes = ops.gather(g, ops.reshape(g, slots.boxes, [-1, 4], 'flat_boxes'), row, 0, 'boxes');
      // Class-major layout: candidate = (label - 1) * K + proposal.
      const labels = ops.add(g, ops.div(g, candidate, slots.k, 'class'), g.constInt64([1]), 'labels');
      return { boxes: outBoxes, scores: outScores, labels, batchIndex };
    });
  });
}
