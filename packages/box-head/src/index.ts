/** @rcnn/box-head: Fast R-CNN box heads (2-MLP), box predictor and in-graph detection post-processing. */
export { register } from './register.js';
export { BOX_HEAD_PREFIX, TWO_MLP_HEAD, twoMlpHead } from './two-mlp-head.js';
export { BBOX_PRED_INIT, BOX_PREDICTOR_PREFIX, BOX_TRAINING_INPUTS, CLS_SCORE_INIT, FAST_RCNN_OUTPUTS, fastRcnnOutputs, fastRcnnTraining } from './fast-rcnn-outputs.js';
export {
  type DetectionPostprocessInputs,
  type DetectionPostprocessOptions,
  boxRegressionOutputs,
  detectionPostprocessOptions,
  postprocessDetections,
} from './detection-postprocess.js';
