/**
 * Mask R-CNN's FCN mask head (Detectron `mask_rcnn_heads.mask_rcnn_fcn_head_v1upXconvs`,
 * torchvision `MaskRCNNHeads` + `MaskRCNNPredictor` + `maskrcnn_inference`), built on the final
 * detections:
 *
 * RoIAlign (MRCNN.ROI_XFORM_*, FPN level mapping) → MRCNN.NUM_STACKED_CONVS x (3x3 conv, padding =
 * dilation = MRCNN.DILATION, + ReLU) → ConvTranspose (kernel = stride = MRCNN.UPSAMPLE_RATIO) +
 * ReLU → 1x1 conv to class logits [D,C,M,M] → the channel of each detection's label → sigmoid.
 */
import { type Blob, type BuildContext, ConfigError, type Detections, type FeatureMaps, type RandomInit, type RoiMaskHead, conv2d, convTranspose, ops, roiPooler, sequentialKey } from '@rcnn/core';
import { PASTE_MASKS } from './paste-masks.js';

/** State-dict prefix of the conv stack (torchvision `roi_heads.mask_head`). */
export const MASK_HEAD_PREFIX = 'roi_heads.mask_head.';
/** State-dict prefix of the predictor (torchvision `roi_heads.mask_predictor`). */
export const MASK_PREDICTOR_PREFIX = 'roi_heads.mask_predictor.';

/** Random init of mask_fcn_logits (torchvision: kaiming_normal_ would do; small logits keep random masks near 0.5). */
const MASK_LOGITS_INIT: RandomInit = { kind: 'normal', std: 0.001 };

/** Checks the config keys the head's shapes depend on. */
function validate(ctx: BuildContext): void {
  const c = ctx.config.MRCNN;
  if (c.RESOLUTION !== c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO) {
    throw new ConfigError(
      `MRCNN.RESOLUTION is ${c.RESOLUTION} but the head makes ROI_XFORM_RESOLUTION x UPSAMPLE_RATIO = ${c.ROI_XFORM_RESOLUTION} x ${c.UPSAMPLE_RATIO} = ${c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO}`,
      { key: 'MRCNN.RESOLUTION', hint: `set MRCNN.RESOLUTION=${c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO}` },
    );
  }
}

/** The mask head (see module doc). */
export class MaskRcnnFcnHead implements RoiMaskHead {
  readonly weightPrefixes = [MASK_HEAD_PREFIX, MASK_PREDICTOR_PREFIX] as const;
  readonly hostPostprocessor = PASTE_MASKS;

  build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly maskProbs: Blob } {
    const g = ctx.graph;
    const c = ctx.config.MRCNN;
    const numClasses = c.CLS_SPECIFIC_MASK ? ctx.config.MODEL.NUM_CLASSES : 1;
    validate(ctx);
    const pooled = roiPooler(ctx, features, { boxes: detections.boxes, batchIndex: detections.batchIndex }, c, { what: 'mask head' });
    let x = pooled.features;
    let channels = pooled.channels;
    for (let i = 0; i < c.NUM_STACKED_CONVS; i++) {
      // torchvision >= 0.13 names conv i `mask_head.<i>.0`; checkpoints saved before (including
      // torchvision's own COCO weights) use `mask_head.mask_fcn<i+1>`, which torchvision renames on load.
      x = conv2d(ctx, x, {
        key: sequentialKey(MASK_HEAD_PREFIX, i, 0),
        aliases: [`${MASK_HEAD_PREFIX}mask_fcn${i + 1}`],
        name: `fcn${i + 1}`,
        inChannels: channels,
        outChannels: c.CONV_HEAD_DIM,
        kernel: 3,
        dilation: c.DILATION,
        activation: 'relu',
      });
      channels = c.CONV_HEAD_DIM;
    }

    // torchvision MaskRCNNPredictor: conv5_mask (ConvTranspose, kernel = stride) + ReLU, then the
    // 1x1 mask_fcn_logits to every class's logits [D, C, M, M]. (Graph passes at serialisation
    // build conv5_mask as a 1x1 conv + DepthToSpace and compute only the label's logits; see
    // docs/architecture.md.)
    const r = c.UPSAMPLE_RATIO;
    x = convTranspose(ctx, x, { key: `${MASK_PREDICTOR_PREFIX}conv5_mask`, inChannels: channels, outChannels: c.DIM_REDUCED, kernel: r, stride: r, activation: 'relu' });
    const logits = conv2d(ctx, x, { key: `${MASK_PREDICTOR_PREFIX}mask_fcn_logits`, inChannels: c.DIM_REDUCED, outChannels: numClasses, kernel: 1, weightInit: MASK_LOGITS_INIT });
    ctx.tap('roi.mask_logits', logits, 'float32', 'whole');

    // torchvision maskrcnn_inference: mask_prob[arange(D), labels][:, None].sigmoid(); one
    // class-agnostic channel without MRCNN.CLS_SPECIFIC_MASK.
    const maskProbs = g.withScope('mask_probs', () => {
      const selected = c.CLS_SPECIFIC_MASK
        ? ops.unsqueeze(g, ops.gatherND(g, logits, ops.unsqueeze(g, detections.labels, [1], 'label'), 1, 'select'), [1], 'selected')
        : logits;
      return ops.sigmoid(g, selected);
    });
    return { maskProbs };
  }
}
