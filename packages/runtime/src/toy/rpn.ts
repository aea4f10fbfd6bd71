/** The toy RPN: a 1x1 objectness conv per level over one square anchor per location; no regression, no NMS. */
import { type BuildContext, DIMS, type FeatureMaps, type Proposals, type RpnHead, type Blob, clipBoxes, imageBounds, keepLargeBoxes, levelSizeDims, ops } from '@rcnn/core';

/** `Toy.rpn`: the top TEST.RPN_POST_NMS_TOP_N anchors of each image by sigmoid(objectness). */
export const toyRpn: RpnHead = {
  weightPrefixes: ['toy.rpn.'],
  build(ctx: BuildContext, features: FeatureMaps): Proposals {
    const g = ctx.graph;
    const cfg = ctx.config;
    const c = features[0]!.channels;
    const w = g.initializer('obj_w', { dtype: 'float32', dims: [1, c, 1, 1], data: ctx.weights.take('toy.rpn.objectness.weight', [1, c, 1, 1], { kind: 'normal', std: 0.5 }) });
    const bias = g.initializer('obj_b', { dtype: 'float32', dims: [1], data: ctx.weights.take('toy.rpn.objectness.bias', [1], { kind: 'constant', value: 0 }) });
    const logits: Blob[] = [];
    const anchors: Blob[] = [];
    for (const f of features) {
      g.withScope(`level_${f.name}`, () => {
        const l = ops.conv(g, f.blob, w, bias, { kernel: 1, name: 'objectness' });
        ctx.tap(`rpn.objectness.${f.name}`, l, 'float32', 'whole', [DIMS.images, 1, ...levelSizeDims(f.name)]);
        logits.push(ops.reshape(g, l, [0, -1], 'flat'));
        const stride = 1 / f.spatialScale;
        const half = (cfg.FPN.RPN_ANCHOR_START_SIZE * 2 ** (f.level - cfg.FPN.RPN_MIN_LEVEL)) / 2;
        const centres = (axis: number, tag: string): Blob => {
          const n = ops.squeeze(g, ops.dim(g, f.blob, axis), [0], `${tag}_n`);
          const r = ops.cast(g, ops.range(g, g.constInt64(0), n, g.constInt64(1), `${tag}_range`), 'float32');
          return ops.mul(g, ops.add(g, r, g.constFloat32(0.5)), g.constFloat32(stride), tag);
        };
        const ys = ops.unsqueeze(g, centres(2, 'cy'), [1]);
        const xs = ops.unsqueeze(g, centres(3, 'cx'), [0]);
        const hw = ops.concat(g, [ops.dim(g, f.blob, 2), ops.dim(g, f.blob, 3)], 0, 'hw');
        const cy = ops.reshape(g, ops.expand(g, ys, hw), [-1, 1], 'cy_flat');
        const cx = ops.reshape(g, ops.expand(g, xs, hw), [-1, 1], 'cx_flat');
        const h = g.constFloat32(half);
        anchors.push(ops.concat(g, [ops.sub(g, cx, h), ops.sub(g, cy, h), ops.add(g, cx, h), ops.add(g, cy, h)], 1, 'anchors'));
      });
    }
    const allAnchors = ops.concat(g, anchors, 0, 'anchors');
    ctx.tap('rpn.anchors', allAnchors, 'float32', 'replicated-per-image', [DIMS.anchors, 4]);
    const logit = ops.concat(g, logits, 1, 'logits');
    const boxes = clipBoxes(g, ops.unsqueeze(g, allAnchors, [0]), imageBounds(g, ctx.batch.imageSizes));
    const scores = ops.sigmoid(g, logit);
    const valid = ops.and(g, ops.greaterOrEqual(g, scores, g.constFloat32(cfg.TEST.RPN_SCORE_THRESH)), keepLargeBoxes(g, boxes, cfg.TEST.RPN_MIN_SIZE));
    const negInf = g.constFloat32(-Infinity);
    const masked = ops.where(g, valid, scores, negInf, 'masked');
    const k = ops.min(g, [g.constInt64([cfg.TEST.RPN_POST_NMS_TOP_N]), ops.dim(g, logit, 1)], 'k');
    const [topScores, topIdx] = ops.topK(g, masked, k, 1, 'top');
    const idx4 = ops.expand(g, ops.unsqueeze(g, topIdx, [2]), ops.concat(g, [ops.shape(g, topIdx), g.constInt64([4])], 0), 'idx4');
    const topBoxes = ops.gatherElements(g, boxes, idx4, 1, 'boxes');
    const topValid = ops.greater(g, topScores, negInf, 'valid');
    const counts = ops.reduceSum(g, ops.cast(g, topValid, 'int64'), [1], false, 'counts');
    return { boxes: topBoxes, scores: topScores, valid: topValid, counts };
  },
};
