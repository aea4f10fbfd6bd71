/** @rcnn/box-head: Fast R-CNN box heads (2-MLP), box predictor and in-graph detection post-processing. */
export {};
