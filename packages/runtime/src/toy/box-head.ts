/** The toy box head: RoIAlign over the pyramid and one fully connected layer. */
import { type BoxHeadOutput, type BuildContext, DIMS, type FeatureMaps, type RoiBoxHead, type Rois, multiScaleRoiAlign, ops } from '@rcnn/core';

/** `Toy.box_head`: pooled RoI features → fc (FAST_RCNN.MLP_HEAD_DIM) + ReLU. */
export const toyBoxHead: RoiBoxHead = {
  weightPrefixes: ['toy.box.'],
  build(ctx: BuildContext, features: FeatureMaps, rois: Rois): BoxHeadOutput {
    const g = ctx.graph;
    const cfg = ctx.config;
    const s = cfg.FAST_RCNN.ROI_XFORM_RESOLUTION;
    const pooled = multiScaleRoiAlign(g, features, rois, {
      outputSize: s,
      samplingRatio: cfg.FAST_RCNN.ROI_XFORM_SAMPLING_RATIO,
      aligned: cfg.FAST_RCNN.ROI_XFORM_ALIGNED,
      canonicalScale: cfg.FPN.ROI_CANONICAL_SCALE,
      canonicalLevel: cfg.FPN.ROI_CANONICAL_LEVEL,
      eps: cfg.FPN.ROI_LEVEL_EPS,
    });
    ctx.tap('roi.box_features', pooled, 'float32', 'proposal-rows', [DIMS.rois, features[0]!.channels, s, s]);
    const inDim = features[0]!.channels * s * s;
    const dim = cfg.FAST_RCNN.MLP_HEAD_DIM;
    const w = g.initializer('fc_w', { dtype: 'float32', dims: [dim, inDim], data: ctx.weights.take('toy.box.fc.weight', [dim, inDim], { kind: 'he' }) });
    const b = g.initializer('fc_b', { dtype: 'float32', dims: [dim], data: ctx.weights.take('toy.box.fc.bias', [dim], { kind: 'constant', value: 0 }) });
    return { features: ops.relu(g, ops.gemm(g, ops.flatten(g, pooled), w, b, { transB: true, name: 'fc' })), dim };
  },
};
