/** The toy box predictor: class scores on the proposal boxes (no regression, no NMS). */
import {
  type BoxHeadOutput,
  type BuildContext,
  DIMS,
  type Detections,
  type Proposals,
  type RoiBoxOutputs,
  batchIndexGrid,
  compactValid,
  ops,
} from '@rcnn/core';

/**
 * `Toy.box_outputs`: softmax over MODEL.NUM_CLASSES; each proposal keeps its best foreground class
 * if that score is above TEST.SCORE_THRESH; the best TEST.DETECTIONS_PER_IM per image are kept.
 */
export const toyBoxOutputs: RoiBoxOutputs = {
  weightPrefixes: ['toy.cls.'],
  build(ctx: BuildContext, head: BoxHeadOutput, proposals: Proposals): Detections {
    const g = ctx.graph;
    const cfg = ctx.config;
    const nc = cfg.MODEL.NUM_CLASSES;
    const w = g.initializer('cls_w', { dtype: 'float32', dims: [nc, head.dim], data: ctx.weights.take('toy.cls.weight', [nc, head.dim], { kind: 'normal', std: 0.3 }) });
    const b = g.initializer('cls_b', { dtype: 'float32', dims: [nc], data: ctx.weights.take('toy.cls.bias', [nc], { kind: 'constant', value: 0 }) });
    const logits = ops.gemm(g, head.features, w, b, { transB: true, name: 'cls' });
    ctx.tap('roi.class_logits', logits, 'float32', 'proposal-rows', [DIMS.rois, nc]);
    const fg = ops.slice(g, ops.softmax(g, logits, 1), [1], [nc], [1], undefined, 'fg');
    const best = ops.reduceMax(g, fg, [1], false, 'best');
    const label = ops.add(g, g.op('ArgMax', [fg], { axis: 1, keepdims: 0 }, 'argmax'), g.constInt64(1), 'label');
    const nk = ops.shape(g, proposals.scores, 0, 2, 'nk');
    const bestNK = ops.reshape(g, best, nk, 'best_nk');
    const valid = ops.and(g, proposals.valid, ops.greater(g, bestNK, g.constFloat32(cfg.TEST.SCORE_THRESH)), 'valid');
    const negInf = g.constFloat32(-Infinity);
    const masked = ops.where(g, valid, bestNK, negInf, 'masked');
    const k = ops.min(g, [g.constInt64([cfg.TEST.DETECTIONS_PER_IM]), ops.dim(g, masked, 1)], 'k');
    const [topScores, topIdx] = ops.topK(g, masked, k, 1, 'top');
    const keep = ops.greater(g, topScores, negInf, 'keep');
    const { flatIndex, batchIndex } = compactValid(g, keep);
    const rowOfSlot = ops.add(g, topIdx, ops.mul(g, batchIndexGrid(g, topIdx), ops.dim(g, masked, 1)), 'row_of_slot');
    const rows = ops.gather(g, ops.reshape(g, rowOfSlot, [-1]), flatIndex, 0, 'rows');
    return {
      boxes: ops.gather(g, ops.reshape(g, proposals.boxes, [-1, 4]), rows, 0, 'boxes'),
      scores: ops.gather(g, best, rows, 0, 'scores'),
      labels: ops.gather(g, label, rows, 0, 'labels'),
      batchIndex,
    };
  },
};
