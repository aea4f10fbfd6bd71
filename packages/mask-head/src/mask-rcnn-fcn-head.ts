/**
 * Mask R-CNN's FCN mask head (Detectron `mask_rcnn_heads.mask_rcnn_fcn_head_v1upXconvs`,
 * torchvision `MaskRCNNHeads` + `MaskRCNNPredictor` + `maskrcnn_inference`), built on the final
 * detections:
 *
 * RoIAlign (MRCNN.ROI_XFORM_*, FPN level mapping) → MRCNN.NUM_STACKED_CONVS x (3x3 conv, padding =
 * dilation = MRCNN.DILATION, + ReLU) → ConvTranspose (kernel = stride = MRCNN.UPSAMPLE_RATIO) +
 * ReLU → 1x1 conv to class logits [D,C,M,M] → the channel of each detection's label → sigmoid.
 */
import {
  type Blob,
  type BuildContext,
  ConfigError,
  type Detections,
  type FeatureMaps,
  type RandomInit,
  type RoiMaskHead,
  multiScaleRoiAlign,
  ops,
} from '@rcnn/core';
import { PASTE_MASKS } from './paste-masks.js';

/** State-dict prefix of the conv stack (torchvision `roi_heads.mask_head`). */
export const MASK_HEAD_PREFIX = 'roi_heads.mask_head.';
/** State-dict prefix of the predictor (torchvision `roi_heads.mask_predictor`). */
export const MASK_PREDICTOR_PREFIX = 'roi_heads.mask_predictor.';

/** Checks the config keys the head depends on and returns the input channels. */
function validate(ctx: BuildContext, features: FeatureMaps): number {
  const c = ctx.config.MRCNN;
  if (features.length === 0) throw new ConfigError('the mask head got no feature maps', { key: 'FPN.ROI_MIN_LEVEL' });
  const channels = features[0].channels;
  const odd = features.find((f) => f.channels !== channels);
  if (odd) {
    throw new ConfigError(`the mask head pools from levels with different widths (${features.map((f) => `${f.name}: ${f.channels}`).join(', ')})`, {
      key: 'FPN.DIM',
    });
  }
  if (c.RESOLUTION !== c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO) {
    throw new ConfigError(
      `MRCNN.RESOLUTION is ${c.RESOLUTION} but the head makes ROI_XFORM_RESOLUTION x UPSAMPLE_RATIO = ${c.ROI_XFORM_RESOLUTION} x ${c.UPSAMPLE_RATIO} = ${c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO}`,
      { key: 'MRCNN.RESOLUTION', hint: `set MRCNN.RESOLUTION=${c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO}` },
    );
  }
  return channels;
}

/**
 * Name of conv layer `i`: torchvision ≥ 0.13 `mask_head.<i>.0.*`; checkpoints saved before that
 * (including torchvision's own COCO weights) use `mask_head.mask_fcn<i+1>.*`, which torchvision
 * renames on load, so accept them too.
 */
function convKey(ctx: BuildContext, i: number, kind: 'weight' | 'bias'): string {
  const current = `${MASK_HEAD_PREFIX}${i}.0.${kind}`;
  const legacy = `${MASK_HEAD_PREFIX}mask_fcn${i + 1}.${kind}`;
  return !ctx.weights.isRandom && !ctx.weights.has(current) && ctx.weights.has(legacy) ? legacy : current;
}

/** The mask head (see module doc). */
export class MaskRcnnFcnHead implements RoiMaskHead {
  readonly weightPrefixes = [MASK_HEAD_PREFIX, MASK_PREDICTOR_PREFIX] as const;
  readonly hostPostprocessor = PASTE_MASKS;

  build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly maskProbs: Blob } {
    const g = ctx.graph;
    const c = ctx.config.MRCNN;
    const numClasses = c.CLS_SPECIFIC_MASK ? ctx.config.MODEL.NUM_CLASSES : 1;
    let channels = validate(ctx, features);

    // Initializers are named after the last part of their state-dict key, inside the layer's scope.
    const weight = (key: string, dims: number[], init: RandomInit): Blob =>
      g.initializer(key.slice(key.lastIndexOf('.') + 1), { dtype: 'float32', dims, data: ctx.weights.take(key, dims, init) });
    const bias = (key: string, n: number): Blob => weight(key, [n], { kind: 'constant', value: 0 });

    let x = multiScaleRoiAlign(g, features, { boxes: detections.boxes, batchIndex: detections.batchIndex }, {
      outputSize: c.ROI_XFORM_RESOLUTION,
      samplingRatio: c.ROI_XFORM_SAMPLING_RATIO,
      aligned: c.ROI_XFORM_ALIGNED,
      canonicalScale: ctx.config.FPN.ROI_CANONICAL_SCALE,
      canonicalLevel: ctx.config.FPN.ROI_CANONICAL_LEVEL,
      eps: ctx.config.FPN.ROI_LEVEL_EPS,
    });

    for (let i = 0; i < c.NUM_STACKED_CONVS; i++) {
      x = g.withScope(`fcn${i + 1}`, () => {
        const w = weight(convKey(ctx, i, 'weight'), [c.CONV_HEAD_DIM, channels, 3, 3], { kind: 'he' });
        const b = bias(convKey(ctx, i, 'bias'), c.CONV_HEAD_DIM);
        return ops.relu(g, ops.conv(g, x, w, b, { kernel: 3, pad: c.DILATION, dilation: c.DILATION }));
      });
      channels = c.CONV_HEAD_DIM;
    }

    const logits = g.withScope('predictor', () => {
      const r = c.UPSAMPLE_RATIO;
      const up = g.withScope('conv5_mask', () => {
        // PyTorch ConvTranspose2d weight layout [C_in, C_out, k, k] is also ONNX's.
        const w = weight(`${MASK_PREDICTOR_PREFIX}conv5_mask.weight`, [channels, c.DIM_REDUCED, r, r], { kind: 'he' });
        const b = bias(`${MASK_PREDICTOR_PREFIX}conv5_mask.bias`, c.DIM_REDUCED);
        return ops.relu(g, ops.convTranspose(g, x, w, b, { kernel: r, stride: r }));
      });
      return g.withScope('mask_fcn_logits', () => {
        const w = weight(`${MASK_PREDICTOR_PREFIX}mask_fcn_logits.weight`, [numClasses, c.DIM_REDUCED, 1, 1], { kind: 'normal', std: 0.001 });
        const b = bias(`${MASK_PREDICTOR_PREFIX}mask_fcn_logits.bias`, numClasses);
        return ops.conv(g, up, w, b, { kernel: 1 });
      });
    });
    ctx.tap('roi.mask_logits', logits, 'float32', 'whole');

    const maskProbs = g.withScope('mask_probs', () => {
      // torchvision indexes mask_prob[arange(D), labels]: GatherND with one batch axis picks, for
      // each detection, the channel of its label ([D,M,M]); D = 0 gives an empty tensor.
      const selected = c.CLS_SPECIFIC_MASK
        ? ops.unsqueeze(g, ops.gatherND(g, logits, ops.unsqueeze(g, detections.labels, [1], 'label_index'), 1, 'select'), [1], 'selected')
        : logits;
      return ops.sigmoid(g, selected);
    });
    return { maskProbs };
  }
}
