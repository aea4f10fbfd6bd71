/**
 * Detectron's `fast_rcnn_heads.add_roi_2mlp_head` / torchvision's `TwoMLPHead`: RoIAlign, flatten,
 * fc6 + ReLU, fc7 + ReLU.
 */
import { type BoxHeadOutput, type BuildContext, type FeatureMaps, type Implementation, type RoiBoxHead, type Rois, linear, ops, roiPoolerGrouped, xavierFill } from '@rcnn/core';

/** State-dict prefix of the box head's weights (torchvision `roi_heads.box_head`). */
export const BOX_HEAD_PREFIX = 'roi_heads.box_head.';

function buildTwoMlpHead(ctx: BuildContext, features: FeatureMaps, rois: Rois): BoxHeadOutput {
  const g = ctx.graph;
  // fc6 and fc7 work row by row, so they run on the pooler's level-grouped rows and only their
  // [R, MLP_HEAD_DIM] output is put back in proposal order (not the [R, C, 7, 7] features).
  const pooled = roiPoolerGrouped(ctx, features, rois, ctx.config.FAST_RCNN, { what: 'RoI box head' });
  // Rows are proposal slots (padding included); the runtime's dump keeps the valid ones. (Only
  // built into graphs that output the tap.)
  ctx.tap('roi.box_features', pooled.restore(pooled.features, 'features_restored'), 'float32', 'proposal-rows');
  const inDim = pooled.channels * pooled.resolution * pooled.resolution;
  const dim = ctx.config.FAST_RCNN.MLP_HEAD_DIM;
  // Detectron initialises fc6/fc7 with Caffe2's XavierFill.
  let x = ops.flatten(g, pooled.features, 1, 'flatten');
  x = linear(ctx, x, { key: `${BOX_HEAD_PREFIX}fc6`, inFeatures: inDim, outFeatures: dim, weightInit: xavierFill(inDim), activation: 'relu' });
  x = linear(ctx, x, { key: `${BOX_HEAD_PREFIX}fc7`, inFeatures: dim, outFeatures: dim, weightInit: xavierFill(dim), activation: 'relu' });
  return { features: pooled.restore(x, 'fc7_restored'), dim };
}

/** The 2-MLP box head as a {@link RoiBoxHead}. */
export const twoMlpHead: RoiBoxHead = {
  build: buildTwoMlpHead,
  weightPrefixes: [BOX_HEAD_PREFIX],
};

/** Registry entry of the 2-MLP head (slot roi-box-head). */
export const TWO_MLP_HEAD: Implementation<RoiBoxHead> = {
  name: 'fast_rcnn_heads.add_roi_2mlp_head',
  aliases: ['TwoMLPHead'],
  provider: '@rcnn/box-head',
  description: 'RoIAlign (FAST_RCNN.ROI_XFORM_*), then fc6 + ReLU, fc7 + ReLU of width FAST_RCNN.MLP_HEAD_DIM (torchvision TwoMLPHead)',
  value: twoMlpHead,
};
