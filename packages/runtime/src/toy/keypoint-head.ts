/** The toy keypoint head: RoIAlign at the heatmap size and a 1x1 conv to one heatmap per keypoint. */
import { type BuildContext, type Detections, type FeatureMaps, type RoiKeypointHead, ops } from '@rcnn/core';
import { poolDetections } from './pool.js';

/** `Toy.keypoint_head`: [D,K,S,S] heatmap logits (K = KRCNN.NUM_KEYPOINTS, S = KRCNN.HEATMAP_SIZE). */
export const toyKeypointHead: RoiKeypointHead = {
  weightPrefixes: ['toy.keypoint.'],
  hostPostprocessor: 'Toy.heatmaps_to_keypoints',
  build(ctx: BuildContext, features: FeatureMaps, detections: Detections) {
    const g = ctx.graph;
    const cfg = ctx.config;
    const pooled = poolDetections(ctx, features, detections, cfg.KRCNN.HEATMAP_SIZE, {
      samplingRatio: cfg.KRCNN.ROI_XFORM_SAMPLING_RATIO,
      aligned: cfg.KRCNN.ROI_XFORM_ALIGNED,
    });
    const c = features[0]!.channels;
    const k = cfg.KRCNN.NUM_KEYPOINTS;
    const w = g.initializer('w', { dtype: 'float32', dims: [k, c, 1, 1], data: ctx.weights.take('toy.keypoint.weight', [k, c, 1, 1], { kind: 'normal', std: 0.5 }) });
    return { heatmaps: ops.conv(g, pooled, w, null, { kernel: 1, name: 'heatmaps' }) };
  },
};
