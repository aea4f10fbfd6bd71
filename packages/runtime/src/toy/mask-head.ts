/** The toy mask head: RoIAlign at the mask resolution and a 1x1 conv to one mask logit. */
import { type BuildContext, DIMS, type Detections, type FeatureMaps, type RoiMaskHead, ops } from '@rcnn/core';
import { poolDetections } from './pool.js';

/** `Toy.mask_head`: [D,1,M,M] mask probabilities (M = MRCNN.RESOLUTION), pasted by `Toy.paste_masks`. */
export const toyMaskHead: RoiMaskHead = {
  weightPrefixes: ['toy.mask.'],
  hostPostprocessor: 'Toy.paste_masks',
  build(ctx: BuildContext, features: FeatureMaps, detections: Detections) {
    const g = ctx.graph;
    const cfg = ctx.config;
    const pooled = poolDetections(ctx, features, detections, cfg.MRCNN.RESOLUTION, {
      samplingRatio: cfg.MRCNN.ROI_XFORM_SAMPLING_RATIO,
      aligned: cfg.MRCNN.ROI_XFORM_ALIGNED,
    });
    const c = features[0]!.channels;
    const w = g.initializer('w', { dtype: 'float32', dims: [1, c, 1, 1], data: ctx.weights.take('toy.mask.weight', [1, c, 1, 1], { kind: 'normal', std: 0.5 }) });
    const b = g.initializer('b', { dtype: 'float32', dims: [1], data: ctx.weights.take('toy.mask.bias', [1], { kind: 'constant', value: 0 }) });
    const logits = ops.conv(g, pooled, w, b, { kernel: 1, name: 'logits' });
    ctx.tap('toy.mask_logits', logits, 'float32', 'per-image-detections', [DIMS.detections, 1, DIMS.maskSize, DIMS.maskSize]);
    return { maskProbs: ops.sigmoid(g, logits, 'probs') };
  },
};
