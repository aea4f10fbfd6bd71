/**
 * Detectron's `fast_rcnn_heads.add_fast_rcnn_outputs` / torchvision's `FastRCNNPredictor`: the
 * class-score and box-regression layers on the box head's representation, followed by the
 * in-graph detection post-processing.
 */
import { type BoxHeadOutput, type BuildContext, type Detections, type Implementation, type Proposals, type RandomInit, type RoiBoxOutputs, linear } from '@rcnn/core';
import { boxRegressionOutputs, detectionPostprocessOptions, postprocessDetections } from './detection-postprocess.js';

/** State-dict prefix of the predictor's weights (torchvision `roi_heads.box_predictor`). */
export const BOX_PREDICTOR_PREFIX = 'roi_heads.box_predictor.';

/** Random init of cls_score (torchvision's reference init of the predictor: N(0, 0.01²), bias 0). */
export const CLS_SCORE_INIT: RandomInit = { kind: 'normal', std: 0.01 };
/** Random init of bbox_pred (N(0, 0.001²), bias 0): small deltas keep random boxes near their proposals. */
export const BBOX_PRED_INIT: RandomInit = { kind: 'normal', std: 0.001 };

function buildFastRcnnOutputs(ctx: BuildContext, head: BoxHeadOutput, proposals: Proposals): Detections {
  const { config } = ctx;
  const numClasses = config.MODEL.NUM_CLASSES;
  const classLogits = linear(ctx, head.features, { key: `${BOX_PREDICTOR_PREFIX}cls_score`, inFeatures: head.dim, outFeatures: numClasses, weightInit: CLS_SCORE_INIT });
  const regOutputs = boxRegressionOutputs(numClasses, config.MODEL.CLS_AGNOSTIC_BBOX_REG);
  const boxRegression = linear(ctx, head.features, { key: `${BOX_PREDICTOR_PREFIX}bbox_pred`, inFeatures: head.dim, outFeatures: regOutputs, weightInit: BBOX_PRED_INIT });
  ctx.tap('roi.class_logits', classLogits, 'float32', 'proposal-rows');
  ctx.tap('roi.box_regression', boxRegression, 'float32', 'proposal-rows');
  return postprocessDetections(ctx.graph, { classLogits, boxRegression, proposals, imageSizes: ctx.batch.imageSizes }, detectionPostprocessOptions(config));
}

/** The Fast R-CNN predictor and post-processing as a {@link RoiBoxOutputs}. */
export const fastRcnnOutputs: RoiBoxOutputs = {
  build: buildFastRcnnOutputs,
  weightPrefixes: [BOX_PREDICTOR_PREFIX],
};

/** Registry entry of the predictor + post-processing (slot roi-box-outputs). */
export const FAST_RCNN_OUTPUTS: Implementation<RoiBoxOutputs> = {
  name: 'fast_rcnn_heads.add_fast_rcnn_outputs',
  aliases: ['FastRCNNPredictor'],
  provider: '@rcnn/box-head',
  description:
    'cls_score (MODEL.NUM_CLASSES) and bbox_pred (4 per class, or 8 with MODEL.CLS_AGNOSTIC_BBOX_REG), then softmax, decode, clip, score threshold, per-class NMS and top TEST.DETECTIONS_PER_IM per image',
  value: fastRcnnOutputs,
};
