/**
 * Gradient rules of layout and indexing operators: the gradient of a pure rearrangement is the
 * inverse rearrangement; the gradient of a selection scatters (adding duplicates) into zeros.
 * Selections with complex index semantics (Slice, Gather, GatherND, nearest Resize) use one trick:
 * apply the same selection to an int64 "iota" tensor of the input's shape (every element holds its
 * own flat index) to learn where each output element came from, then ScatterElements-add.
 */
import type { Blob, GraphBuilder } from '../../graph/builder.js';
import { type GradientContext, type GradientRule, registerGradientRule } from '../../autodiff/registry.js';
import { at } from '../../errors.js';

/** `Reshape(g, Shape(x))`: the gradient of any op that only changes the shape. */
const reshapeBack: GradientRule = {
  differentiableInputs: [0],
  backward(ctx) {
    const g = ctx.graph;
    return [g.op('Reshape', [ctx.outputGradient(0), g.op('Shape', [ctx.inputs[0]!], {}, 'shape')], { allowzero: 1 }, 'gx')];
  },
};

/** An int64 tensor of `x`'s shape whose elements are their own row-major flat index. */
export function iotaLike(g: GraphBuilder, x: Blob): Blob {
  const shape = g.op('Shape', [x], {}, 'iota_shape');
  const count = g.op('ReduceProd', [shape], { keepdims: 0 }, 'iota_count');
  const flat = g.op('Range', [g.constInt64(0, []), count, g.constInt64(1, [])], {}, 'iota_flat');
  return g.op('Reshape', [flat, shape], { allowzero: 1 }, 'iota');
}

/**
 * Scatters `grad` (any shape) into zeros of `x`'s shape at the flat positions `flatIndex` (same
 * shape as `grad`), adding duplicates.
 */
export function scatterAddFlat(ctx: GradientContext, x: Blob, flatIndex: Blob, grad: Blob): Blob {
  const g = ctx.graph;
  const shape = g.op('Shape', [x], {}, 'x_shape');
  const zeros = g.op('Reshape', [ctx.zerosLike(x), g.constInt64([-1])], {}, 'zeros_flat');
  const scattered = g.op(
    'ScatterElements',
    [zeros, g.op('Reshape', [flatIndex, g.constInt64([-1])], {}, 'index_flat'), g.op('Reshape', [grad, g.constInt64([-1])], {}, 'grad_flat')],
    { axis: 0, reduction: 'add' },
    'scatter',
  );
  return g.op('Reshape', [scattered, shape], { allowzero: 1 }, 'gx');
}

/** The rule of a selection op `op(data, …rest)` whose other inputs are indices/parameters: iota + scatter-add. */
function selectionRule(): GradientRule {
  return {
    differentiableInputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      const x = ctx.inputs[0]!;
      const attributes = ctx.forwardAttributes();
      const index = g.op(ctx.node.opType, [iotaLike(g, x), ...ctx.inputs.slice(1)], attributes, 'source_index');
      return [scatterAddFlat(ctx, x, index, ctx.outputGradient(0))];
    },
  };
}

/**
 * The gradient of a linear / cubic Resize of the two spatial axes of [N, C, H, W] (N and C never
 * resized): the resize is separable, y = A_h · x · A_wᵀ per plane, so g_x = A_hᵀ · g · A_w. The
 * interpolation matrices are made by the forward's own Resize applied to identity matrices along
 * one axis at a time (scale 1 on the other axis is exact), so weights and border clamping are
 * onnxruntime's.
 */
function interpolationMatrixGradient(ctx: GradientContext): Blob {
  const g = ctx.graph;
  const x = ctx.inputs[0]!;
  const y = at(ctx.outputs, 0, 'ctx.outputs');
  const attributes = ctx.forwardAttributes();
  const to = ctx.dtype === 'float64' ? 11 : 1;
  const scales = ctx.inputs[2] ?? null;
  const matrix = (axis: 2 | 3, name: string): Blob =>
    g.withScope(name, () => {
      const n = g.op('Shape', [x], { start: axis, end: axis + 1 }, 'n');
      const square = g.op('Concat', [n, n], { axis: 0 }, 'square');
      const eye = g.op('EyeLike', [ctx.filled(square, 0, 'zeros')], { dtype: to }, 'eye');
      const eye4 = g.op('Unsqueeze', [eye, g.constInt64([0, 1])], {}, 'eye4');
      if (scales) {
        const s = g.op('Slice', [scales, g.constInt64([axis]), g.constInt64([axis + 1])], {}, 'scale');
        const one = g.constant({ dtype: 'float32', dims: [1], data: Float32Array.of(1) }, 'one');
        const axisScales = g.op('Concat', [one, one, s, one], { axis: 0 }, 'scales');
        return g.op('Resize', [eye4, ctx.inputs[1] ?? null, axisScales], attributes, 'a');
      }
      const out = g.op('Shape', [y], { start: axis, end: axis + 1 }, 'out');
      return g.op('Resize', [eye4, null, null, g.op('Concat', [g.constInt64([1, 1]), out, n], { axis: 0 }, 'sizes')], attributes, 'a');
    });
  const aH = matrix(2, 'rows'); // [1, 1, H', H]
  const aW = matrix(3, 'cols'); // [1, 1, W', W]
  const left = g.op('MatMul', [g.op('Transpose', [aH], { perm: [0, 1, 3, 2] }, 'rows_t'), ctx.outputGradient(0)], {}, 'left');
  return g.op('MatMul', [left, aW], {}, 'gx');
}

/** `Shape(x)[axis]` as an int64 [1] blob (negative axes allowed). */
function dimOf(g: GraphBuilder, x: Blob, axis: number, name: string): Blob {
  return g.op('Shape', [x], axis === -1 ? { start: -1 } : { start: axis, end: axis + 1 }, name);
}

/** Installs the layout and indexing rules. */
export function installShapeRules(register: typeof registerGradientRule): void {
  for (const op of ['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']) register(op, reshapeBack);
  register('Transpose', {
    backward(ctx) {
      const perm = ctx.intsAttribute('perm', undefined);
      const attrs: Record<string, readonly number[]> = {};
      if (perm) {
        const inverse = new Array<number>(perm.length);
        perm.forEach((p, i) => (inverse[p] = i));
        attrs.perm = inverse;
      }
      // No perm reverses the axes, which is its own inverse.
      return [ctx.graph.op('Transpose', [ctx.outputGradient(0)], attrs, 'gx')];
    },
  });
  register('Concat', {
    backward(ctx) {
      const g = ctx.graph;
      const axis = ctx.intAttribute('axis', 0);
      const inputs = ctx.inputs.map((x) => x!);
      if (inputs.length === 1) return [ctx.outputGradient(0)];
      const sizes = g.op(
        'Concat',
        inputs.map((x, i) => dimOf(g, x, axis, `size${i}`)),
        { axis: 0 },
        'sizes',
      );
      return g.node('Split', [ctx.outputGradient(0), sizes], { axis }, { outputs: inputs.length, name: 'gx' });
    },
  });
  register('Split', {
    differentiableInputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      const axis = ctx.intAttribute('axis', 0);
      const parts = ctx.outputs.map((_, i) => ctx.outputGradient(i));
      return [parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis }, 'gx')];
    },
  });
  register('Pad', {
    differentiableInputs: [0],
    backward(ctx) {
      if (ctx.stringAttribute('mode', 'constant') !== 'constant') ctx.fail('only mode "constant" has a gradient rule');
      // Padding by p is undone by padding by -p (ONNX Pad crops for negative pads); elements the
      // forward cropped get zeros.
      const g = ctx.graph;
      return [g.op('Pad', [ctx.outputGradient(0), g.op('Neg', [ctx.inputs[1]!], {}, 'unpad')], { mode: 'constant' }, 'gx')];
    },
  });
  register('Expand', {
    differentiableInputs: [0],
    backward: (ctx) => [ctx.reduceToShapeOf(ctx.outputGradient(0), ctx.inputs[0]!)],
  });
  register('Tile', {
    differentiableInputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      const x = ctx.inputs[0]!;
      // Every copy adds to its source element: the iota trick finds the source of each.
      const index = g.op('Tile', [iotaLike(g, x), ctx.inputs[1]!], {}, 'source_index');
      return [scatterAddFlat(ctx, x, index, ctx.outputGradient(0))];
    },
  });
  register('Slice', selectionRule());
  const elementwiseGather = selectionRule();
  register('Gather', {
    differentiableInputs: [0],
    backward(ctx) {
      // Axis 0 (RoI reordering, sampled rows): the gradient is a row scatter-add of the output
      // gradient (ScatterND over whole rows), not an element-wise scatter of an iota of x.
      if (ctx.intAttribute('axis', 0) !== 0) return elementwiseGather.backward(ctx);
      const g = ctx.graph;
      const x = ctx.inputs[0]!;
      const index = g.op('Cast', [ctx.inputs[1]!], { to: 7 }, 'index64');
      // Gather allows negative indices; ScatterND's are taken as given, so wrap them first.
      const rows = g.op('Squeeze', [g.op('Shape', [x], { start: 0, end: 1 }, 'rows_1'), g.constInt64([0])], {}, 'rows');
      const wrapped = g.op('Where', [g.op('Less', [index, g.constInt64(0, [])], {}, 'negative'), g.op('Add', [index, rows], {}, 'from_end'), index], {}, 'index_wrapped');
      const at = g.op('Unsqueeze', [wrapped, g.constInt64([-1])], {}, 'index_nd');
      return [g.op('ScatterND', [ctx.zerosLike(x), at, ctx.outputGradient(0)], { reduction: 'add' }, 'gx')];
    },
  });
  register('GatherND', selectionRule());
  register('GatherElements', {
    differentiableInputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      const x = ctx.inputs[0]!;
      const axis = ctx.intAttribute('axis', 0);
      return [g.op('ScatterElements', [ctx.zerosLike(x), ctx.inputs[1]!, ctx.outputGradient(0)], { axis, reduction: 'add' }, 'gx')];
    },
  });
  register('ScatterElements', {
    differentiableInputs: [0, 2],
    backward(ctx) {
      if (ctx.stringAttribute('reduction', 'none') !== 'none' && ctx.stringAttribute('reduction', 'none') !== 'add')
        ctx.fail('only reduction none and add are differentiable');
      const g = ctx.graph;
      const axis = ctx.intAttribute('axis', 0);
      const indices = ctx.inputs[1]!;
      const grad = ctx.outputGradient(0);
      const add = ctx.stringAttribute('reduction', 'none') === 'add';
      // Without reduction, overwritten data elements get no gradient; with add they all do.
      const gData = ctx.needsInputGradient(0)
        ? add
          ? grad
          : g.op('ScatterElements', [grad, indices, ctx.zerosLike(ctx.inputs[2]!)], { axis }, 'gdata')
        : null;
      const gUpdates = ctx.needsInputGradient(2) ? g.op('GatherElements', [grad, indices], { axis }, 'gupdates') : null;
      return [gData, null, gUpdates];
    },
  });
  register('ScatterND', {
    differentiableInputs: [0, 2],
    backward(ctx) {
      const reduction = ctx.stringAttribute('reduction', 'none');
      if (reduction !== 'none' && reduction !== 'add') ctx.fail('only reduction none and add are differentiable');
      const g = ctx.graph;
      const indices = ctx.inputs[1]!;
      const grad = ctx.outputGradient(0);
      const updates = ctx.inputs[2]!;
      const gData = ctx.needsInputGradient(0) ? (reduction === 'add' ? grad : g.op('ScatterND', [grad, indices, ctx.zerosLike(updates)], {}, 'gdata')) : null;
      const gUpdates = ctx.needsInputGradient(2) ? g.op('GatherND', [grad, indices], {}, 'gupdates') : null;
      return [gData, null, gUpdates];
    },
  });
  register('DepthToSpace', {
    backward(ctx) {
      const g = ctx.graph;
      const x = ctx.inputs[0]!;
      const b = ctx.intAttribute('blocksize', 0);
      const mode = ctx.stringAttribute('mode', 'DCR');
      const grad = ctx.outputGradient(0);
      // SpaceToDepth is the exact inverse of DCR DepthToSpace; CRD is undone by reshape/transpose.
      if (mode === 'DCR') return [g.op('SpaceToDepth', [grad], { blocksize: b }, 'gx')];
      const xs = g.op('Shape', [x], {}, 'x_shape');
      const gs = g.op('Shape', [grad], {}, 'g_shape');
      const bb = g.constInt64([b]);
      const split = g.op(
        'Concat',
        [
          g.op('Slice', [gs, g.constInt64([0]), g.constInt64([2])], {}, 'nc'),
          g.op('Slice', [xs, g.constInt64([2]), g.constInt64([3])], {}, 'h'),
          bb,
          g.op('Slice', [xs, g.constInt64([3]), g.constInt64([4])], {}, 'w'),
          bb,
        ],
        { axis: 0 },
        'split_shape',
      );
      const six = g.op('Reshape', [grad, split], {}, 'six');
      const back = g.op('Transpose', [six], { perm: [0, 1, 3, 5, 2, 4] }, 'back');
      return [g.op('Reshape', [back, xs], {}, 'gx')];
    },
  });
  register('SpaceToDepth', {
    backward(ctx) {
      const b = ctx.intAttribute('blocksize', 0);
      return [ctx.graph.op('DepthToSpace', [ctx.outputGradient(0)], { blocksize: b, mode: 'DCR' }, 'gx')];
    },
  });
  register('TopK', {
    differentiableInputs: [0],
    differentiableOutputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      const axis = ctx.intAttribute('axis', -1);
      return [g.op('ScatterElements', [ctx.zerosLike(ctx.inputs[0]!), at(ctx.outputs, 1, 'ctx.outputs'), ctx.outputGradient(0)], { axis, reduction: 'add' }, 'gx')];
    },
  });
/**
 * The integer spatial factors [sh, sw] of a nearest Resize that replicates each pixel into an
 * sh x sw block (asymmetric coordinates, floor rounding, constant scales [1, 1, sh, sw] of
 * integers ≥ 1: output pixel o reads o / s exactly), or undefined for any other Resize.
 */
function integerUpsampleFactors(ctx: GradientContext): [number, number] | undefined {
  if (ctx.stringAttribute("coordinate_transformation_mode", "half_pixel") !== "asymmetric") return undefined;
  if (ctx.stringAttribute("nearest_mode", "round_prefer_floor") !== "floor") return undefined;
  const scales = ctx.inputs[2];
  if (!scales || ctx.inputs[3]) return undefined;
  const value = ctx.graph.initializerOf(scales);
  if (!value || value.dtype !== "float32" || value.data.length !== 4) return undefined;
  const [n, c, sh, sw] = Array.from(value.data as Float32Array);
  const whole = (v: number | undefined): v is number => v !== undefined && Number.isInteger(v) && v >= 1;
  return n === 1 && c === 1 && whole(sh) && whole(sw) ? [sh, sw] : undefined;
}

  register("Resize", {
    differentiableInputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      const mode = ctx.stringAttribute('mode', 'nearest');
      if (ctx.stringAttribute('coordinate_transformation_mode', 'half_pixel') === 'tf_crop_and_resize') ctx.fail('tf_crop_and_resize has no gradient rule');
      if (mode !== 'nearest') return [interpolationMatrixGradient(ctx)];
      const x = ctx.inputs[0]!;
      const y = at(ctx.outputs, 0, 'ctx.outputs');
      const blocks = integerUpsampleFactors(ctx);
      if (blocks) {
        // Every input pixel is copied to exactly one sh x sw block: its gradient is the block's sum
        // (one Reshape + ReduceSum instead of a scatter over an index plane).
        const [sh, sw] = blocks;
        const xs = g.op("Shape", [x], {}, "x_shape");
        const split = g.op(
          "Concat",
          [
            g.op("Slice", [xs, g.constInt64([0]), g.constInt64([3])], {}, "nch"),
            g.constInt64([sh]),
            g.op("Slice", [xs, g.constInt64([3]), g.constInt64([4])], {}, "w"),
            g.constInt64([sw]),
          ],
          { axis: 0 },
          "block_shape"
        );
        return [
          g.op(
            "ReduceSum",
            [
              g.op("Reshape", [ctx.outputGradient(0), split], {}, "blocks"),
              g.constInt64([3, 5]),
            ],
            { keepdims: 0 },
            "gx"
          ),
        ];
      }
      // Resize a [1, 1, H, W] plane of flat indices with the forward's own attributes and output
      // size (N and C are never resized by rcnn-node), then scatter-add every (n, c) plane at once.
      const xs = g.op('Shape', [x], {}, 'x_shape');
      const ys = g.op('Shape', [y], {}, 'y_shape');
      const plane = g.op('Concat', [g.constInt64([1, 1]), g.op('Slice', [xs, g.constInt64([2]), g.constInt64([4])], {}, 'hw')], { axis: 0 }, 'plane');
      const count = g.op('ReduceProd', [plane], { keepdims: 0 }, 'count');
      const iota = g.op(
        'Reshape',
        [g.op('Cast', [g.op('Range', [g.constInt64(0, []), count, g.constInt64(1, [])], {}, 'range')], { to: 6 }, 'range32'), plane],
        {},
        'iota',
      );
      const outPlane = g.op(
        'Concat',
        [g.constInt64([1, 1]), g.op('Slice', [ys, g.constInt64([2]), g.constInt64([4])], {}, 'out_hw')],
        { axis: 0 },
        'out_plane',
      );
      const attributes = ctx.forwardAttributes();
      const scales = ctx.inputs[2] ?? null;
      // The forward's scales (N and C at 1) apply to the plane as they are; else its output size.
      const source = scales
        ? g.op('Resize', [iota, ctx.inputs[1] ?? null, scales], attributes, 'source_index')
        : g.op('Resize', [iota, null, null, outPlane], attributes, 'source_index');
      // Rows of one (n, c) plane each: [N*C, H'*W'] gradients, [N*C, H*W] zeros, the plane's source index per row.
      const gradRows = g.op('Flatten', [ctx.outputGradient(0)], { axis: 2 }, 'grad_rows');
      const zeroRows = g.op('Flatten', [ctx.zerosLike(x)], { axis: 2 }, 'zero_rows');
      const sourceRow = g.op('Cast', [g.op('Flatten', [source], { axis: 2 }, 'source_row')], { to: 7 }, 'source64');
      const index = g.op('Expand', [sourceRow, g.op('Shape', [gradRows], {}, 'rows_shape')], {}, 'index');
      const scattered = g.op('ScatterElements', [zeroRows, index, gradRows], { axis: 1, reduction: 'add' }, 'scatter');
      return [g.op('Reshape', [scattered, xs], {}, 'gx')];
    },
  });
}
