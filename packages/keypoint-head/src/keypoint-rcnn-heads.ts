/**
 * Detectron's `keypoint_rcnn_heads.add_roi_pose_head_v1convX` / torchvision's `KeypointRCNNHeads` +
 * `KeypointRCNNPredictor`: RoIAlign on the final detections, a stack of conv + ReLU layers, a
 * stride-2 transposed conv to one channel per keypoint and a bilinear upsampling to the heatmaps.
 */
import {
  type Blob,
  type BuildContext,
  ConfigError,
  type Detections,
  type FeatureMaps,
  type Implementation,
  type RoiKeypointHead,
  convTranspose,
  conv2d,
  roiPooler,
  sequentialKey,
  upsampleBilinear,
} from '@rcnn/core';

/** State-dict prefix of the conv stack (torchvision `roi_heads.keypoint_head`, a Sequential of Conv2d, ReLU). */
export const KEYPOINT_HEAD_PREFIX = 'roi_heads.keypoint_head.';
/** State-dict prefix of the predictor (torchvision `roi_heads.keypoint_predictor`). */
export const KEYPOINT_PREDICTOR_PREFIX = 'roi_heads.keypoint_predictor.';
/** Name of the host post-processor that turns the heatmaps into keypoints. */
export const KEYPOINT_DECODER = 'heatmaps_to_keypoints';

/** The predictor's transposed conv is stride 2 by definition (KRCNN.DECONV_KERNEL: "the stride-2 transposed conv"). */
const DECONV_STRIDE = 2;

/** Shapes of the head derived from KRCNN.*, checked against each other. */
export interface KeypointHeadShape {
  readonly inChannels: number;
  readonly numKeypoints: number;
  readonly convs: number;
  readonly convDim: number;
  readonly convKernel: number;
  readonly deconvKernel: number;
  readonly deconvPad: number;
  readonly upScale: number;
  readonly heatmapSize: number;
}

/** Reads KRCNN.* and the pooled channel count, failing with a ConfigError naming the key that does not fit. */
export function keypointHeadShape(ctx: BuildContext, inChannels: number): KeypointHeadShape {
  const k = ctx.config.KRCNN;
  if (k.CONV_HEAD_KERNEL % 2 !== 1) {
    throw new ConfigError(`KRCNN.CONV_HEAD_KERNEL is ${k.CONV_HEAD_KERNEL}; the head convs keep the 'same' size, which needs an odd kernel`, {
      key: 'KRCNN.CONV_HEAD_KERNEL',
    });
  }
  // torchvision: ConvTranspose2d(k, stride=2, padding=k // 2 - 1), then interpolate(scale_factor=UP_SCALE).
  const deconvPad = Math.floor(k.DECONV_KERNEL / 2) - 1;
  const deconvOut = (k.ROI_XFORM_RESOLUTION - 1) * DECONV_STRIDE - 2 * deconvPad + k.DECONV_KERNEL;
  const heatmapSize = deconvOut * k.UP_SCALE;
  if (heatmapSize !== k.HEATMAP_SIZE) {
    throw new ConfigError(
      `KRCNN.HEATMAP_SIZE is ${k.HEATMAP_SIZE} but the head makes ${heatmapSize}x${heatmapSize} heatmaps ` +
        `(ROI_XFORM_RESOLUTION ${k.ROI_XFORM_RESOLUTION}, DECONV_KERNEL ${k.DECONV_KERNEL}, UP_SCALE ${k.UP_SCALE})`,
      { key: 'KRCNN.HEATMAP_SIZE', hint: `set KRCNN.HEATMAP_SIZE=${heatmapSize}` },
    );
  }
  return {
    inChannels,
    numKeypoints: k.NUM_KEYPOINTS,
    convs: k.NUM_STACKED_CONVS,
    convDim: k.CONV_HEAD_DIM,
    convKernel: k.CONV_HEAD_KERNEL,
    deconvKernel: k.DECONV_KERNEL,
    deconvPad,
    upScale: k.UP_SCALE,
    heatmapSize,
  };
}

function buildKeypointHead(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly heatmaps: Blob } {
  const g = ctx.graph;
  // RoIAlign on the final boxes (resized-image pixels), as torchvision's keypoint_roi_pool.
  const pooled = roiPooler(ctx, features, { boxes: detections.boxes, batchIndex: detections.batchIndex }, ctx.config.KRCNN, { what: 'RoI keypoint head' });
  const shape = keypointHeadShape(ctx, pooled.channels);
  let x = pooled.features;
  let channels = shape.inChannels;
  for (let i = 0; i < shape.convs; i++) {
    // Sequential(Conv2d, ReLU, ...): conv i is module 2i of the state dict.
    x = conv2d(ctx, x, { key: sequentialKey(KEYPOINT_HEAD_PREFIX, 2 * i), name: `conv_fcn${i + 1}`, inChannels: channels, outChannels: shape.convDim, kernel: shape.convKernel, activation: 'relu' });
    channels = shape.convDim;
  }
  const lowres = convTranspose(ctx, x, {
    key: `${KEYPOINT_PREDICTOR_PREFIX}kps_score_lowres`,
    inChannels: channels,
    outChannels: shape.numKeypoints,
    kernel: shape.deconvKernel,
    stride: DECONV_STRIDE,
    pad: shape.deconvPad,
  });
  // torchvision: interpolate(scale_factor=UP_SCALE, bilinear, align_corners=False).
  const heatmaps = g.withScope('kps_score', () => upsampleBilinear(ctx, lowres, shape.upScale));
  ctx.tap('roi.keypoint_logits', heatmaps, 'float32', 'whole');
  return { heatmaps };
}

/** The keypoint head as a {@link RoiKeypointHead}. */
export const keypointRcnnHeads: RoiKeypointHead = {
  build: buildKeypointHead,
  weightPrefixes: [KEYPOINT_HEAD_PREFIX, KEYPOINT_PREDICTOR_PREFIX],
  hostPostprocessor: KEYPOINT_DECODER,
};

/** Registry entry of the keypoint head (slot roi-keypoint-head). */
export const KEYPOINT_RCNN_HEADS: Implementation<RoiKeypointHead> = {
  name: 'keypoint_rcnn_heads.add_roi_pose_head_v1convX',
  aliases: ['KeypointRCNNHeads'],
  provider: '@rcnn/keypoint-head',
  description:
    'RoIAlign (KRCNN.ROI_XFORM_*) on the detections, KRCNN.NUM_STACKED_CONVS x (conv + ReLU), stride-2 deconv to KRCNN.NUM_KEYPOINTS heatmaps, bilinear x KRCNN.UP_SCALE (torchvision KeypointRCNNHeads + KeypointRCNNPredictor)',
  value: keypointRcnnHeads,
};
