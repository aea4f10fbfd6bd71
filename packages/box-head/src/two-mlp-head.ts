/**
 * Detectron's `fast_rcnn_heads.add_roi_2mlp_head` / torchvision's `TwoMLPHead`: RoIAlign, flatten,
 * fc6 + ReLU, fc7 + ReLU.
 */
import { DIMS, type BoxHeadOutput, type BuildContext, type FeatureMaps, type Implementation, type RoiBoxHead, type Rois, linear, ops, roiPooler, xavierFill } from '@rcnn/core';

/** State-dict prefix of the box head's weights (torchvision `roi_heads.box_head`). */
export const BOX_HEAD_PREFIX = 'roi_heads.box_head.';

function buildTwoMlpHead(ctx: BuildContext, features: FeatureMaps, rois: Rois): BoxHeadOutput {
  const pooled = roiPooler(ctx, features, rois, ctx.config.FAST_RCNN, { what: 'RoI box head' });
  // Rows are proposal slots (padding included); the runtime's dump keeps the valid ones.
  ctx.tap('roi.box_features', pooled.features, 'float32', 'proposal-rows', [DIMS.rois, pooled.channels, pooled.resolution, pooled.resolution]);
  const inDim = pooled.channels * pooled.resolution * pooled.resolution;
  const dim = ctx.config.FAST_RCNN.MLP_HEAD_DIM;
  // Detectron initialises fc6/fc7 with Caffe2's XavierFill. (The pooler's reordering of the rows
  // into proposal order is moved after fc7 by a graph pass: see docs/architecture.md.)
  let x = ops.flatten(ctx.graph, pooled.features, 1, 'flatten');
  x = linear(ctx, x, { key: `${BOX_HEAD_PREFIX}fc6`, inFeatures: inDim, outFeatures: dim, weightInit: xavierFill(inDim), activation: 'relu' });
  x = linear(ctx, x, { key: `${BOX_HEAD_PREFIX}fc7`, inFeatures: dim, outFeatures: dim, weightInit: xavierFill(dim), activation: 'relu' });
  return { features: x, dim };
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
