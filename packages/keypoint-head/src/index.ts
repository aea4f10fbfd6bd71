/** @rcnn/keypoint-head: Keypoint R-CNN keypoint head and heatmap-to-keypoint decoding. */
export {};
