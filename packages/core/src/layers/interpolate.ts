/** torchvision's `F.interpolate` as used by heads. */
import type { Blob } from '../graph/builder.js';
import * as ops from '../graph/onnx-ops.js';
import type { BuildContext } from '../model/contracts.js';

/**
 * `F.interpolate(x, scale_factor=scale, mode='bilinear', align_corners=False,
 * recompute_scale_factor=False)` on [N, C, H, W]: source = (dst + 0.5) / scale - 0.5 with the given
 * scale, negative sources clamped to 0 and the last row/column replicated. ONNX Resize (linear,
 * pytorch_half_pixel, scales) computes the same source index and clamps it to [0, in - 1], which
 * samples the same pixels with the same weights.
 */
export function upsampleBilinear(ctx: Pick<BuildContext, 'graph'>, x: Blob, scale: number, name = 'upsample'): Blob {
  const g = ctx.graph;
  return ops.resize(g, x, null, { mode: 'linear', coordinateTransformationMode: 'pytorch_half_pixel', scales: g.constFloat32([1, 1, scale, scale]), name });
}
