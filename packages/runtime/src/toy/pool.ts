/** RoIAlign of the final detections over the pyramid, shared by the toy mask and keypoint heads. */
import { type Blob, type BuildContext, type Detections, type FeatureMaps, multiScaleRoiAlign } from '@rcnn/core';

/** [D, C, size, size] features of each detection box, with FPN's level mapping from the config. */
export function poolDetections(ctx: BuildContext, features: FeatureMaps, detections: Detections, size: number, o: { samplingRatio: number; aligned: boolean }): Blob {
  const fpn = ctx.config.FPN;
  return multiScaleRoiAlign(ctx.graph, features, { boxes: detections.boxes, batchIndex: detections.batchIndex }, {
    outputSize: size,
    samplingRatio: o.samplingRatio,
    aligned: o.aligned,
    canonicalScale: fpn.ROI_CANONICAL_SCALE,
    canonicalLevel: fpn.ROI_CANONICAL_LEVEL,
    eps: fpn.ROI_LEVEL_EPS,
  });
}
