/** @rcnn/keypoint-head: Keypoint R-CNN keypoint head and heatmap-to-keypoint decoding. */
export { register } from './register.js';
export {
  KEYPOINT_DECODER,
  KEYPOINT_HEAD_PREFIX,
  KEYPOINT_PREDICTOR_PREFIX,
  KEYPOINT_RCNN_HEADS,
  KEYPOINT_TRAINING_INPUTS,
  type KeypointHeadShape,
  keypointHeadShape,
  buildKeypointHeatmapTargets,
  keypointHeatmapTargets,
  keypointRcnnHeads,
} from './keypoint-rcnn-heads.js';
export {
  type DecodeOptions,
  type DecodedKeypoints,
  HEATMAPS_TO_KEYPOINTS,
  decodeHeatmaps,
  heatmapsToKeypoints,
  resizeKeypoints,
} from './heatmaps-to-keypoints.js';
export { ArgmaxWorkspace, type CubicAxis, PYTORCH_CUBIC_A, type ResizedArgmax, bicubicArgmax, cubicAxis, denseBicubicArgmax } from './bicubic-argmax.js';
export { detectron2KeypointScore } from './heatmaps-to-keypoints.js';
