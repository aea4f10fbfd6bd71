/**
 * @rcnn/keypoint-head/web: heatmap decoding for browser pages and bundlers — no graph code, no
 * Node API. `heatmapsToKeypoints` is the host post-processor an exported Keypoint R-CNN's
 * `det.keypoint_heatmaps` need (registry name `heatmaps_to_keypoints`, listed in the model's
 * `rcnn.host_postprocessors` metadata).
 */
export { type DecodeOptions, type DecodedKeypoints, KEYPOINT_DECODER, decodeHeatmaps, heatmapsToKeypoints, resizeKeypoints } from './heatmaps-to-keypoints.js';
export { ArgmaxWorkspace, type CubicAxis, PYTORCH_CUBIC_A, type ResizedArgmax, bicubicArgmax, cubicAxis, denseBicubicArgmax } from './bicubic-argmax.js';
