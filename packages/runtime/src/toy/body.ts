/** The toy conv body: one strided conv (P2) and max-pool subsampling for P3..P6, FPN-shaped. */
import { type BuildContext, type Blob, type ConvBody, type FeatureMap, ops } from '@rcnn/core';

const LEVEL_NAMES = ['0', '1', '2', '3', 'pool'];

/** `Toy.fpn_body`: a 5-level pyramid of FPN.DIM channels (strides 4..64) from a single 3x3/4 conv. */
export const toyBody: ConvBody = {
  isFpn: true,
  weightPrefixes: ['toy.body.'],
  build(ctx: BuildContext, images: Blob) {
    const g = ctx.graph;
    const c = ctx.config.FPN.DIM;
    const w = g.initializer('stem_w', { dtype: 'float32', dims: [c, 3, 3, 3], data: ctx.weights.take('toy.body.stem.weight', [c, 3, 3, 3], { kind: 'he' }) });
    const b = g.initializer('stem_b', { dtype: 'float32', dims: [c], data: ctx.weights.take('toy.body.stem.bias', [c], { kind: 'normal', std: 0.1 }) });
    let x = ops.relu(g, ops.conv(g, images, w, b, { kernel: 3, stride: 4, pad: 1, name: 'stem' }));
    const maps: FeatureMap[] = [];
    LEVEL_NAMES.forEach((name, i) => {
      if (i > 0) x = ops.maxPool(g, x, { kernel: 1, stride: 2, name: `p${i + 2}` });
      maps.push({ name, blob: x, channels: c, spatialScale: 1 / 2 ** (i + 2), level: i + 2 });
    });
    return maps;
  },
};
