/**
 * Detectron's `fast_rcnn_heads.add_roi_2mlp_head` / torchvision's `TwoMLPHead`: RoIAlign, flatten,
 * fc6 + ReLU, fc7 + ReLU.
 */
import {
  DIMS,
  type Blob,
  type BoxHeadOutput,
  type BuildContext,
  type FeatureMaps,
  type Implementation,
  type RandomInit,
  type RoiBoxHead,
  type Rois,
  ops,
} from '@rcnn/core';
import { poolBoxRoisGrouped } from './roi-pooling.js';

/** State-dict prefix of the box head's weights (torchvision `roi_heads.box_head`). */
export const BOX_HEAD_PREFIX = 'roi_heads.box_head.';

/**
 * Random init of a hidden fc layer: Caffe2's XavierFill (Detectron's choice for fc6/fc7),
 * U(±sqrt(3 / fan_in)), so activations keep their scale through the two layers.
 */
export function xavierInit(fanIn: number): RandomInit {
  const bound = Math.sqrt(3 / fanIn);
  return { kind: 'uniform', low: -bound, high: bound };
}

const ZERO: RandomInit = { kind: 'constant', value: 0 };

/**
 * One fully connected layer `x W^T + b` (torchvision `nn.Linear`), weights `<prefix>.weight`
 * [out, in] and `<prefix>.bias` [out]; Gemm with transB reads the state-dict layout as is.
 */
export function linear(ctx: BuildContext, x: Blob, key: string, scope: string, inDim: number, outDim: number, init: { weight: RandomInit; bias: RandomInit }): Blob {
  const g = ctx.graph;
  return g.withScope(scope, () => {
    const w = g.initializer('weight', { dtype: 'float32', dims: [outDim, inDim], data: ctx.weights.take(`${key}.weight`, [outDim, inDim], init.weight) });
    const b = g.initializer('bias', { dtype: 'float32', dims: [outDim], data: ctx.weights.take(`${key}.bias`, [outDim], init.bias) });
    return ops.gemm(g, x, w, b, { transB: true, name: 'fc' });
  });
}

function buildTwoMlpHead(ctx: BuildContext, features: FeatureMaps, rois: Rois): BoxHeadOutput {
  const g = ctx.graph;
  // fc6 and fc7 work row by row, so they run on the pooler's level-grouped rows and only their
  // [R, MLP_HEAD_DIM] output is put back in proposal order (not the [R, C, 7, 7] features).
  const pooled = poolBoxRoisGrouped(ctx, features, rois);
  // Rows are proposal slots (padding included); the runtime's dump keeps the valid ones. (Only
  // built into graphs that output the tap.)
  ctx.tap('roi.box_features', pooled.restore(pooled.features, 'features_restored'), 'float32', 'proposal-rows', [DIMS.rois, pooled.channels, pooled.resolution, pooled.resolution]);
  const inDim = pooled.channels * pooled.resolution * pooled.resolution;
  const dim = ctx.config.FAST_RCNN.MLP_HEAD_DIM;
  const flat = ops.flatten(g, pooled.features, 1, 'flatten');
  const fc6 = ops.relu(g, linear(ctx, flat, `${BOX_HEAD_PREFIX}fc6`, 'fc6', inDim, dim, { weight: xavierInit(inDim), bias: ZERO }), 'fc6_relu');
  const fc7 = ops.relu(g, linear(ctx, fc6, `${BOX_HEAD_PREFIX}fc7`, 'fc7', dim, dim, { weight: xavierInit(dim), bias: ZERO }), 'fc7_relu');
  return { features: pooled.restore(fc7, 'fc7_restored'), dim };
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
