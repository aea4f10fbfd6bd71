/**
 * Gradient of `Resize` in mode "linear" over the two spatial axes (the keypoint head's bilinear
 * upsampling, torchvision `interpolate(..., mode='bilinear', align_corners=False)`), registered
 * through the rule registry. Other modes keep the built-in rule.
 *
 * Bilinear resizing is separable and linear: Y = A_h X A_wᵀ per (n, c) plane, with the
 * interpolation matrices A_h [H', H] and A_w [W', W]. So dX = A_hᵀ dY A_w. The matrices are made by
 * the forward's own Resize (same attributes and scales) applied to identity matrices laid out as
 * [1, H, H, 1] (one axis resized, the other of size 1 and scale 1), which gives A_hᵀ [H, H'] with
 * exactly the forward's source positions and weights.
 */
import type { AttributeValue, Blob } from '../graph/builder.js';
import * as ops from '../graph/ops.js';
import { installBuiltinGradientRules } from './rules/index.js';
import { type GradientContext, type GradientRule, gradientRuleFor, registerGradientRule } from './registry.js';

let installed = false;

/** Aᵀ [size, size'] of one axis (2 = height, 3 = width) of the forward Resize, built in the graph. */
function interpolationMatrixTransposed(ctx: GradientContext, axis: 2 | 3, attributes: Record<string, AttributeValue>): Blob {
  const g = ctx.graph;
  const x = ctx.inputs[0]!;
  const tag = axis === 2 ? 'h' : 'w';
  const size = g.op('Slice', [g.op('Shape', [x], {}, `${tag}_x_shape`), g.constInt64([axis]), g.constInt64([axis + 1])], {}, `${tag}_size`);
  const square = g.op('Concat', [size, size], { axis: 0 }, `${tag}_square`);
  const zeros = ops.constantOfShape(g, square, 0, ctx.dtype, `${tag}_zeros`);
  const eye = g.op('EyeLike', [zeros], {}, `${tag}_eye`);
  const planeShape = g.op('Concat', [g.constInt64([1]), size, size, g.constInt64([1])], { axis: 0 }, `${tag}_plane_shape`);
  const plane = g.op('Reshape', [eye, planeShape], {}, `${tag}_plane`); // [1, S, S, 1]
  const scales = ctx.inputs[2] ?? null;
  let resized: Blob;
  if (scales) {
    const s = g.op('Slice', [scales, g.constInt64([axis]), g.constInt64([axis + 1])], {}, `${tag}_scale`);
    const one = g.constFloat32([1]);
    const axisScales = g.op('Concat', [one, one, s, one], { axis: 0 }, `${tag}_scales`);
    resized = g.op('Resize', [plane, ctx.inputs[1] ?? null, axisScales], attributes, `${tag}_resized`);
  } else {
    const ySize = g.op('Slice', [g.op('Shape', [ctx.outputs[0]], {}, `${tag}_y_shape`), g.constInt64([axis]), g.constInt64([axis + 1])], {}, `${tag}_out_size`);
    const sizes = g.op('Concat', [g.constInt64([1]), size, ySize, g.constInt64([1])], { axis: 0 }, `${tag}_sizes`);
    resized = g.op('Resize', [plane, null, null, sizes], attributes, `${tag}_resized`);
  }
  // [1, S, S', 1] -> [S, S']: row s holds how much input s contributes to each output position.
  return g.op('Reshape', [resized, g.op('Concat', [size, g.constInt64([-1])], { axis: 0 }, `${tag}_2d_shape`)], {}, `${tag}_matrix_t`);
}

const linearResize = (fallback: GradientRule | undefined): GradientRule => ({
  differentiableInputs: [0],
  backward(ctx) {
    if (ctx.stringAttribute('mode', 'nearest') !== 'linear') {
      return fallback ? fallback.backward(ctx) : ctx.fail(`no gradient rule for Resize mode "${ctx.stringAttribute('mode', 'nearest')}"`);
    }
    const g = ctx.graph;
    const attributes: Record<string, AttributeValue> = {};
    for (const [k, v] of ctx.node.attributes) attributes[k] = v;
    const hT = interpolationMatrixTransposed(ctx, 2, attributes); // [H, H']
    const wT = interpolationMatrixTransposed(ctx, 3, attributes); // [W, W']
    const left = g.op('MatMul', [hT, ctx.outputGradient(0)], {}, 'gy_rows'); // [N, C, H, W']
    return [g.op('MatMul', [left, g.op('Transpose', [wT], { perm: [1, 0] }, 'w_matrix')], {}, 'gx')]; // [N, C, H, W]
  },
});

/**
 * Registers the linear-mode Resize gradient (idempotent), delegating every other mode to the rule
 * registered before it (the built-in nearest rule).
 */
export function installLinearResizeGradient(): void {
  if (installed) return;
  installed = true;
  installBuiltinGradientRules();
  registerGradientRule('Resize', linearResize(gradientRuleFor('Resize')));
}
