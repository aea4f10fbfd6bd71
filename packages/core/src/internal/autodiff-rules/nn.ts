/**
 * Gradient rules of the network operators: convolutions, fully connected layers, pooling,
 * reductions and softmax. Convolution gradients are themselves convolutions (ConvTranspose for the
 * data, a Conv over the batch for the weight), which onnxruntime runs with its fast kernels.
 */
import { type AttributeValue, type Blob, type GraphBuilder, attr } from '../../graph/builder.js';
import type { DataType } from '../../graph/dtypes.js';
import { type GradientContext, type GradientRule, registerGradientRule } from '../../autodiff/registry.js';
import { scatterAddFlat } from './shape.js';
import { at } from '../../errors.js';

/** Geometry of a 2-D convolution (or transposed convolution) node. */
interface ConvGeometry {
  readonly strides: readonly [number, number];
  readonly pads: readonly [number, number, number, number];
  readonly dilations: readonly [number, number];
  readonly group: number;
}

function convGeometry(ctx: GradientContext): ConvGeometry {
  const autoPad = ctx.stringAttribute('auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET') ctx.fail(`auto_pad ${autoPad} is not supported (give explicit pads)`);
  const kernel = ctx.intsAttribute('kernel_shape', undefined);
  if (kernel && kernel.length !== 2) ctx.fail(`only 2-D convolutions are differentiable (kernel_shape [${kernel.join(', ')}])`);
  // Checked to their 2-D lengths once here, so the rules below index them without checks.
  const ints = <N extends 2 | 4>(name: string, fallback: readonly number[], length: N): N extends 2 ? readonly [number, number] : readonly [number, number, number, number] => {
    const values = ctx.intsAttribute(name, fallback)!;
    if (values.length !== length) ctx.fail(`${name} must have ${length} values for a 2-D convolution (got [${values.join(', ')}])`);
    return values as unknown as N extends 2 ? readonly [number, number] : readonly [number, number, number, number];
  };
  return {
    strides: ints('strides', [1, 1], 2),
    pads: ints('pads', [0, 0, 0, 0], 4),
    dilations: ints('dilations', [1, 1], 2),
    group: ctx.intAttribute('group', 1),
  };
}

/** `Shape(x)[start:end]`. */
const dims = (g: GraphBuilder, x: Blob, start: number, end: number, name: string): Blob => g.op('Shape', [x], { start, end }, name);

/**
 * Gradient of a 2-D convolution's weight [O, Cg, kh, kw]: `input` [N, G*Cg, H, W] is the conv's
 * input and `gradOutput` [N, O, Ho, Wo] the gradient of its output. Computed as one grouped Conv
 * of the batch-transposed input with the batch-transposed gradient as kernel (stride and dilation
 * swap roles), cropped to the kernel size.
 */
export function convWeightGradient(g: GraphBuilder, input: Blob, gradOutput: Blob, weight: Blob, geometry: ConvGeometry): Blob {
  return g.withScope('weight_grad', () => {
    const G = geometry.group;
    let inputT: Blob;
    if (G === 1) {
      inputT = g.op('Transpose', [input], { perm: [1, 0, 2, 3] }, 'input_t');
    } else {
      const hw = dims(g, input, 2, 4, 'hw');
      const grouped = g.op(
        'Reshape',
        [input, g.op('Concat', [dims(g, input, 0, 1, 'n'), g.constInt64([G, -1]), hw], { axis: 0 }, 'grouped_shape')],
        {},
        'grouped',
      );
      const moved = g.op('Transpose', [grouped], { perm: [2, 1, 0, 3, 4] }, 'moved');
      inputT = g.op('Reshape', [moved, g.op('Concat', [g.constInt64([0, -1]), hw], { axis: 0 }, 'batched_shape')], {}, 'input_t');
    }
    const gradT = g.op('Transpose', [gradOutput], { perm: [1, 0, 2, 3] }, 'grad_t');
    const full = g.op(
      'Conv',
      [inputT, gradT],
      {
        strides: geometry.dilations,
        dilations: geometry.strides,
        pads: geometry.pads,
        group: G,
      },
      'conv',
    );
    // The correlation can be larger than the kernel when strides leave input rows unread.
    const cropped = g.op('Slice', [full, g.constInt64([0, 0]), dims(g, weight, 2, 4, 'kernel'), g.constInt64([2, 3])], {}, 'crop');
    return g.op('Transpose', [cropped], { perm: [1, 0, 2, 3] }, 'gw');
  });
}

/**
 * Gradient of an ungrouped 2-D convolution's weight [O, C, kh, kw] as one MatMul per kernel tap:
 * `gW[:, :, i, j] = Σ_n gY[n] · X_ij[n]ᵀ`, with `gY` [N, O, Ho·Wo] the output gradient and `X_ij`
 * [N, C, Ho·Wo] the (padded) input seen by tap (i, j) — a strided Slice, or the input itself for a
 * 1x1 stride-1 conv. Each MatMul is one large GEMM (M = O, N = C, K = Ho·Wo) that onnxruntime runs
 * with the transpose folded in (FusedMatMul); the batch-transposed Conv of {@link convWeightGradient}
 * is instead C small GEMMs (N = kh·kw) that each stream the whole output gradient. With a batch
 * (N > 1: RoIs in the mask / keypoint heads) the batch joins the positions, K = N·Ho·Wo, in one GEMM
 * per tap, the input and the output gradient transposed once to channels first; one image keeps
 * the form above (an `If` on N), which needs no transpose copy at all.
 */
export function convWeightGradientByTaps(
  g: GraphBuilder,
  input: Blob,
  gradOutput: Blob,
  kernel: readonly [number, number],
  geometry: ConvGeometry,
  dtype: DataType = "float32"
): Blob {
  return g.withScope("weight_grad", () => {
    const [kh, kw] = kernel;
    const { strides, pads, dilations } = geometry;
    // [N, C, H·W] from the runtime shape, not [0, 0, -1]: onnxruntime cannot infer -1 when N = 0
    // (a batch without positive RoIs gives the mask / keypoint heads empty inputs).
    const flatShape = (b: GraphBuilder, x: Blob, name: string): Blob => {
      const shape = b.op("Shape", [x], {}, `${name}_shape`);
      const part = (from: number, to: number, n: string) =>
        b.op("Slice", [shape, b.constInt64([from]), b.constInt64([to])], {}, `${name}_${n}`);
      const hw = b.op("Mul", [part(2, 3, "h"), part(3, 4, "w")], {}, `${name}_hw`);
      return b.op("Concat", [part(0, 2, "nc"), hw], { axis: 0 }, `${name}_flat_shape`);
    };
    const gy = g.op("Reshape", [gradOutput, flatShape(g, gradOutput, "gy")], {}, "gy");
    const padded = pads.some((p) => p !== 0)
      ? g.op(
          "Pad",
          [
            input,
            g.constInt64([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]]),
          ],
          { mode: "constant" },
          "x_pad"
        )
      : input;
    const identity =
      kh === 1 && kw === 1 && strides.every((s) => s === 1) && padded === input;
    const lastRow = identity
      ? undefined
      : g.op(
          "Mul",
          [
            g.op(
              "Sub",
              [dims(g, gradOutput, 2, 4, "out_hw"), g.constInt64([1, 1])],
              {},
              "out_hw_minus_1"
            ),
            g.constInt64([strides[0], strides[1]]),
          ],
          {},
          "last_offset"
        );
    // What kernel tap (i, j) sees of `source` ([A, B, Hp, Wp], the padded input or its
    // channels-first transpose): [A, B, Ho, Wo], a strided Slice — or `source` itself for a 1x1
    // stride-1 conv without padding.
    const tapSlice = (b: GraphBuilder, source: Blob, i: number, j: number): Blob => {
      if (identity) return source;
      const start = [i * dilations[0], j * dilations[1]];
      return b.op(
        "Slice",
        [
          source,
          b.constInt64(start),
          b.op("Add", [lastRow!, b.constInt64([start[0]! + 1, start[1]! + 1])], {}, `end_${i}_${j}`),
          b.constInt64([2, 3]),
          b.constInt64([strides[0], strides[1]]),
        ],
        {},
        `x_${i}_${j}`
      );
    };
    // The input each kernel tap sees: [N, C, Ho·Wo].
    const tapInput = (b: GraphBuilder, i: number, j: number): Blob => {
      const seen = tapSlice(b, padded, i, j);
      return b.op("Reshape", [seen, flatShape(b, seen, `x_${i}_${j}`)], {}, `x_flat_${i}_${j}`);
    };
    const gw = (b: GraphBuilder, perTap: (i: number, j: number) => Blob): Blob => {
      const taps: Blob[] = [];
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) taps.push(b.op("Unsqueeze", [perTap(i, j), b.constInt64([2])], {}, `tap_${i}_${j}_u`));
      const stacked = taps.length === 1 ? taps[0]! : b.op("Concat", taps, { axis: 2 }, "taps");
      return b.op("Reshape", [stacked, b.constInt64([0, 0, kh, kw])], {}, "gw");
    };
    // Dim names of this conv only: onnxruntime equates equal names across the whole model.
    const output = (blob: Blob) => [{ blob, dtype, dims: [`${g.scope}out_channels`, `${g.scope}in_channels`, kh, kw] }];
    // One image (the conv body): per tap one GEMM gY[0] · X_ij[0]ᵀ, the transpose folded into it.
    const single = g.subgraph("one_image", [], (b) => {
      // [1, A, K] → [A, K] by a reshape to its own trailing dims (a Squeeze would fail onnxruntime's
      // load-time shape check of this branch when a static batch is not 1).
      const first = (x: Blob, name: string): Blob => b.op("Reshape", [x, b.op("Shape", [x], { start: 1 }, `${name}_dims`)], {}, name);
      const gy0 = first(gy, "gy0");
      const result = gw(b, (i, j) => b.op("MatMul", [gy0, b.op("Transpose", [first(tapInput(b, i, j), `x0_${i}_${j}`)], { perm: [1, 0] }, `x_t_${i}_${j}`)], {}, `tap_${i}_${j}`));
      return output(result);
    });
    // A batch (RoIs in the mask / keypoint heads): the batch joins the positions in one GEMM with
    // K = N·Ho·Wo — not N small GEMMs whose [N, O, C] results would then be summed. The (padded)
    // input and the output gradient are each transposed once to channels first ([C, N, H, W]), so
    // a tap is a Slice of that and a Reshape, not a Slice then a transpose copy of its own.
    const batch = g.subgraph("batch", [], (b) => {
      const channelsFirst = (x: Blob, name: string): Blob => b.op("Transpose", [x], { perm: [1, 0, 2, 3] }, `${name}_cn`);
      // [O, N, Ho, Wo] → [O, N·Ho·Wo] from the runtime shape (-1 cannot be inferred when N = 0).
      const gyT = channelsFirst(gradOutput, "gy");
      const positions = b.op("Mul", [b.op("Mul", [dims(b, gyT, 1, 2, "n"), dims(b, gyT, 2, 3, "ho")], {}, "n_ho"), dims(b, gyT, 3, 4, "wo")], {}, "positions");
      const gyRows = b.op("Reshape", [gyT, b.op("Concat", [dims(b, gyT, 0, 1, "o"), positions], { axis: 0 }, "gy_rows_shape")], {}, "gy_rows");
      // Every tap is [C, N, Ho, Wo]: one shape [C, N·Ho·Wo] for all of them.
      const xT = channelsFirst(padded, "x");
      const tapRowsShape = b.op("Concat", [dims(b, xT, 0, 1, "c"), positions], { axis: 0 }, "x_rows_shape");
      const tapRows = (i: number, j: number): Blob => b.op("Reshape", [tapSlice(b, xT, i, j), tapRowsShape], {}, `x_rows_${i}_${j}`);
      const result = gw(b, (i, j) => b.op("MatMul", [gyRows, b.op("Transpose", [tapRows(i, j)], { perm: [1, 0] }, `x_t_${i}_${j}`)], {}, `tap_${i}_${j}`));
      return output(result);
    });
    const oneImage = g.op("Equal", [g.op("Shape", [gradOutput], { start: 0, end: 1 }, "n"), g.constInt64([1])], {}, "one_image");
    const [result] = g.node("If", [oneImage], { then_branch: attr.graph(single), else_branch: attr.graph(batch) }, { name: "by_batch" });
    return result!;
  });
}

/** `ReduceSum(g, [0, 2, 3])`: the gradient of a per-channel bias. */
const biasGradient = (g: GraphBuilder, grad: Blob): Blob => g.op('ReduceSum', [grad, g.constInt64([0, 2, 3])], { keepdims: 0 }, 'gb');

/** Expands a reduction's output gradient back to the input's shape. */
function expandReduced(ctx: GradientContext, axes: Blob | readonly number[] | null, name = 'expanded'): Blob {
  const g = ctx.graph;
  const x = ctx.inputs[0]!;
  const keep = ctx.intAttribute('keepdims', 1) === 1;
  let grad = ctx.outputGradient(0);
  if (!keep) {
    if (axes === null) {
      const ones = g.op(
        'ConstantOfShape',
        [g.op('Shape', [g.op('Shape', [x], {}, 'x_shape')], {}, 'rank')],
        {
          value: {
            kind: 'tensor',
            value: { dtype: 'int64', dims: [1], data: BigInt64Array.of(1n) },
          },
        },
        'ones',
      );
      grad = g.op('Reshape', [grad, ones], {}, 'kept');
    } else {
      grad = g.op('Unsqueeze', [grad, Array.isArray(axes) ? g.constInt64(axes as readonly number[]) : (axes as Blob)], {}, 'kept');
    }
  }
  return g.op('Expand', [grad, g.op('Shape', [x], {}, 'x_shape')], {}, name);
}

/** The axes of a Reduce* node: the `axes` input (ReduceSum, opset 13+) or attribute (others at opset 17). */
function reduceAxes(ctx: GradientContext): Blob | readonly number[] | null {
  if (ctx.node.opType === 'ReduceSum') return ctx.inputs[1] ?? null;
  return ctx.intsAttribute('axes', undefined) ?? null;
}

/** Element count of `x` divided by that of `y`, as a float scalar. */
function countRatio(ctx: GradientContext, x: Blob, y: Blob): Blob {
  const g = ctx.graph;
  const to = ctx.dtype === 'float64' ? 11 : 1;
  return g.op(
    'Div',
    [g.op('Cast', [g.op('Size', [x], {}, 'x_size')], { to }, 'x_count'), g.op('Cast', [g.op('Size', [y], {}, 'y_size')], { to }, 'y_count')],
    {},
    'count',
  );
}

function extremumReduction(): GradientRule {
  return {
    differentiableInputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      const x = ctx.inputs[0]!;
      const axes = reduceAxes(ctx);
      const keepAttrs: Record<string, AttributeValue | number | readonly number[]> = { keepdims: 1 };
      if (axes !== null && Array.isArray(axes)) keepAttrs.axes = axes as readonly number[];
      // Recompute the extremum with kept dims so that it broadcasts against x; ties share the gradient.
      const kept = g.op(ctx.node.opType, [x], keepAttrs, 'kept');
      const mask = g.op('Cast', [g.op('Equal', [x, kept], {}, 'is_extremum')], { to: ctx.dtype === 'float64' ? 11 : 1 }, 'mask');
      const ties = g.op(
        'ReduceSum',
        [mask, ...(axes === null ? [] : [Array.isArray(axes) ? g.constInt64(axes as readonly number[]) : (axes as Blob)])],
        { keepdims: 1 },
        'ties',
      );
      const expanded = expandReduced(ctx, axes);
      return [g.op('Div', [g.op('Mul', [expanded, mask], {}, 'masked'), ties], {}, 'gx')];
    },
  };
}

/**
 * Gradient of NegativeLogLikelihoodLoss with respect to its log-probabilities [N, C, d…]: minus
 * the output gradient times the target's class weight at the target class, divided by the summed
 * weights for `mean`; ignored targets get nothing.
 */
function nllGradient(ctx: GradientContext, logProb: Blob, target: Blob, weight: Blob | null): Blob {
  const g = ctx.graph;
  const reduction = ctx.stringAttribute('reduction', 'mean');
  const ignoreIndex = ctx.attribute('ignore_index');
  const to = ctx.dtype === 'float64' ? 11 : 1;
  let keep: Blob | null = null;
  let index = target;
  if (ignoreIndex?.kind === 'int') {
    const ignored = g.op('Equal', [target, g.constInt64(ignoreIndex.value, [])], {}, 'ignored');
    keep = g.op('Not', [ignored], {}, 'kept');
    // Ignored targets may be out of range: point them at class 0 with a zero update.
    index = g.op('Where', [ignored, g.constInt64(0, []), target], {}, 'index');
  }
  let coefficient: Blob = weight
    ? g.op('Gather', [weight, index], { axis: 0 }, 'class_weight')
    : ctx.filled(g.op('Shape', [index], {}, 'target_shape'), 1, 'ones');
  if (keep) coefficient = g.op('Mul', [coefficient, g.op('Cast', [keep], { to }, 'kept_f')], {}, 'coefficient');
  let scale = g.op('Mul', [coefficient, ctx.outputGradient(0)], {}, 'scaled');
  if (reduction === 'mean') scale = g.op('Div', [scale, g.op('ReduceSum', [coefficient], { keepdims: 0 }, 'denominator')], {}, 'mean');
  const update = g.op('Unsqueeze', [g.op('Neg', [scale], {}, 'negated'), g.constInt64([1])], {}, 'update');
  return g.op('ScatterElements', [ctx.zerosLike(logProb), g.op('Unsqueeze', [index, g.constInt64([1])], {}, 'index1'), update], { axis: 1 }, 'g_log_prob');
}

/** Installs the network-operator rules. */
export function installNnRules(register: typeof registerGradientRule): void {
  register('Conv', {
    backward(ctx) {
      const g = ctx.graph;
      const [x, w] = [ctx.inputs[0]!, ctx.inputs[1]!];
      const geometry = convGeometry(ctx);
      const grad = ctx.outputGradient(0);
      let gx: Blob | null = null;
      const kernelShape = ctx.intsAttribute("kernel_shape", undefined);
      const flippedPads = kernelShape
        ? [0, 1, 0, 1].map(
            (axis, i) =>
              geometry.dilations[axis]! * (kernelShape[axis]! - 1) -
              geometry.pads[i]!
          )
        : undefined;
      if (
        ctx.needsInputGradient(0) &&
        geometry.group === 1 &&
        kernelShape &&
        geometry.strides.every((s) => s === 1) &&
        flippedPads!.every((p) => p >= 0)
      ) {
        // Stride 1: the data gradient is a Conv of the output gradient with the transposed,
        // spatially flipped weight (onnxruntime's Conv runs ~2.4x faster than its ConvTranspose,
        // which adds a col2im pass: docs/performance.md, Training).
        let wt = g.op("Transpose", [w], { perm: [1, 0, 2, 3] }, "w_t");
        if (kernelShape.some((k) => k > 1))
          wt = g.op(
            "Slice",
            [
              wt,
              g.constInt64([-1, -1]),
              g.constInt64([Number.MIN_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]),
              g.constInt64([2, 3]),
              g.constInt64([-1, -1]),
            ],
            {},
            "w_flipped"
          );
        gx = g.op(
          "Conv",
          [grad, wt],
          {
            kernel_shape: kernelShape,
            strides: [1, 1],
            pads: [flippedPads![0]!, flippedPads![1]!, flippedPads![2]!, flippedPads![3]!],
            dilations: geometry.dilations,
            group: 1,
          },
          "gx"
        );
      } else if (ctx.needsInputGradient(0)) {
        const strided = geometry.strides.some((s) => s !== 1);
        // At stride 1 the transposed conv with the forward's pads is exactly the input's size. With
        // strides the windows may stop short of the padded input's end (those rows get no
        // gradient) or reach into the end padding: crop only the start padding, then pad or crop
        // (negative Pad) the end to the input's size.
        const pads = strided ? [geometry.pads[0], geometry.pads[1], 0, 0] : geometry.pads;
        const attrs = {
          strides: geometry.strides,
          pads,
          dilations: geometry.dilations,
          group: geometry.group,
        };
        gx = g.op('ConvTranspose', [grad, w], attrs, strided ? 'gx_t' : 'gx');
        if (strided) {
          const endPads = g.op('Sub', [dims(g, x, 2, 4, 'x_hw'), dims(g, gx, 2, 4, 'gx_hw')], {}, 'end_pads');
          gx = g.op('Pad', [gx, g.op('Concat', [g.constInt64([0, 0, 0, 0, 0, 0]), endPads], { axis: 0 }, 'pads')], { mode: 'constant' }, 'gx');
        }
      }
      const gw = !ctx.needsInputGradient(1)
        ? null
        : geometry.group === 1 && kernelShape
        ? convWeightGradientByTaps(
            g,
            x,
            grad,
            [kernelShape[0]!, kernelShape[1]!],
            geometry,
            ctx.dtype
          )
        : convWeightGradient(g, x, grad, w, geometry);
      const gb =
        ctx.inputs[2] && ctx.needsInputGradient(2)
          ? biasGradient(g, grad)
          : null;
      return [gx, gw, gb];
    },
  });
  register('ConvTranspose', {
    backward(ctx) {
      const g = ctx.graph;
      const [x, w] = [ctx.inputs[0]!, ctx.inputs[1]!];
      if (ctx.intsAttribute('output_shape', undefined)) ctx.fail('output_shape is not supported (give pads and output_padding)');
      const geometry = convGeometry(ctx);
      const grad = ctx.outputGradient(0);
      const attrs = {
        strides: geometry.strides,
        pads: geometry.pads,
        dilations: geometry.dilations,
        group: geometry.group,
      };
      // ConvTranspose is the adjoint of Conv with the same weight: its data gradient is that Conv,
      // and its weight gradient is Conv's with the roles of input and output exchanged.
      const gx = ctx.needsInputGradient(0) ? g.op('Conv', [grad, w], attrs, 'gx') : null;
      const gw = ctx.needsInputGradient(1) ? convWeightGradient(g, grad, x, w, geometry) : null;
      const gb = ctx.inputs[2] && ctx.needsInputGradient(2) ? biasGradient(g, grad) : null;
      return [gx, gw, gb];
    },
  });
  register('Gemm', {
    backward(ctx) {
      const g = ctx.graph;
      const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
      const c = ctx.inputs[2] ?? null;
      const alpha = ctx.floatAttribute('alpha', 1);
      const beta = ctx.floatAttribute('beta', 1);
      const transA = ctx.intAttribute('transA', 0);
      const transB = ctx.intAttribute('transB', 0);
      const grad = ctx.outputGradient(0);
      const scaled = (attrs: Record<string, number>): Record<string, number | AttributeValue> =>
        alpha === 1 ? attrs : { ...attrs, alpha: { kind: 'float', value: alpha } };
      // Y = alpha A' B' + beta C with A' = op(A), B' = op(B).
      const ga = !ctx.needsInputGradient(0)
        ? null
        : transA === 0
        ? g.op('Gemm', [grad, b], scaled({ transA: 0, transB: transB === 0 ? 1 : 0 }), 'ga')
        : g.op('Gemm', [b, grad], scaled({ transA: transB, transB: 1 }), 'ga');
      const gb = !ctx.needsInputGradient(1)
        ? null
        : transB === 0
        ? g.op('Gemm', [a, grad], scaled({ transA: transA === 0 ? 1 : 0, transB: 0 }), 'gb')
        : g.op('Gemm', [grad, a], scaled({ transA: 1, transB: transA }), 'gb');
      let gc: Blob | null = null;
      if (c && ctx.needsInputGradient(2)) gc = ctx.reduceToShapeOf(beta === 1 ? grad : g.op('Mul', [grad, ctx.scalar(beta)], {}, 'beta_g'), c);
      return [ga, gb, gc];
    },
  });
  register('MatMul', {
    backward(ctx) {
      const g = ctx.graph;
      const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
      const grad = ctx.outputGradient(0);
      // Rank >= 2 operands, batch axes broadcast: swap the last two axes with a unary Einsum
      // (rank-agnostic), MatMul, then sum the broadcast batch axes away.
      const swapped = (v: Blob, name: string): Blob => g.op('Einsum', [v], { equation: '...ij->...ji' }, name);
      const ga = ctx.needsInputGradient(0) ? ctx.reduceToShapeOf(g.op('MatMul', [grad, swapped(b, 'b_t')], {}, 'ga'), a) : null;
      const gb = ctx.needsInputGradient(1) ? ctx.reduceToShapeOf(g.op('MatMul', [swapped(a, 'a_t'), grad], {}, 'gb'), b) : null;
      return [ga, gb];
    },
  });
  register('MaxPool', {
    differentiableInputs: [0],
    differentiableOutputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      const x = ctx.inputs[0]!;
      if (ctx.intAttribute('storage_order', 0) !== 0) ctx.fail('storage_order 1 is not supported');
      // Re-run the pooling for the argmax indices (flat over the whole input), then scatter-add.
      const attributes = ctx.forwardAttributes();
      const [, indices] = g.node('MaxPool', [x], attributes, {
        outputs: 2,
        name: 'argmax',
      });
      return [scatterAddFlat(ctx, x, indices, ctx.outputGradient(0))];
    },
  });
  register('GlobalAveragePool', {
    backward(ctx) {
      const g = ctx.graph;
      const x = ctx.inputs[0]!;
      const expanded = g.op('Expand', [ctx.outputGradient(0), g.op('Shape', [x], {}, 'x_shape')], {}, 'expanded');
      return [g.op('Div', [expanded, countRatio(ctx, x, at(ctx.outputs, 0, 'ctx.outputs'))], {}, 'gx')];
    },
  });
  register('ReduceSum', {
    differentiableInputs: [0],
    backward: (ctx) => [expandReduced(ctx, reduceAxes(ctx), 'gx')],
  });
  register('ReduceMean', {
    differentiableInputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      const expanded = expandReduced(ctx, reduceAxes(ctx));
      return [g.op('Div', [expanded, countRatio(ctx, ctx.inputs[0]!, at(ctx.outputs, 0, 'ctx.outputs'))], {}, 'gx')];
    },
  });
  register('ReduceMax', extremumReduction());
  register('ReduceMin', extremumReduction());
  register('NegativeLogLikelihoodLoss', {
    differentiableInputs: [0],
    backward: (ctx) => [nllGradient(ctx, ctx.inputs[0]!, ctx.inputs[1]!, ctx.inputs[2] ?? null)],
  });
  register('SoftmaxCrossEntropyLoss', {
    differentiableInputs: [0],
    differentiableOutputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      // SCE = NLL(LogSoftmax(scores, axis 1)): the NLL gradient, then LogSoftmax's backward.
      const logProb = g.op('LogSoftmax', [ctx.inputs[0]!], { axis: 1 }, 'log_prob');
      const gl = nllGradient(ctx, logProb, ctx.inputs[1]!, ctx.inputs[2] ?? null);
      const total = g.op('ReduceSum', [gl, g.constInt64([1])], { keepdims: 1 }, 'total');
      return [g.op('Sub', [gl, g.op('Mul', [g.op('Exp', [logProb], {}, 'softmax'), total], {}, 'spread')], {}, 'gx')];
    },
  });
  register('Softmax', {
    backward(ctx) {
      const g = ctx.graph;
      const axis = ctx.intAttribute('axis', -1);
      const y = at(ctx.outputs, 0, 'ctx.outputs');
      const grad = ctx.outputGradient(0);
      const dot = g.op('ReduceSum', [g.op('Mul', [grad, y], {}, 'gy'), g.constInt64([axis])], { keepdims: 1 }, 'dot');
      return [g.op('Mul', [y, g.op('Sub', [grad, dot], {}, 'centered')], {}, 'gx')];
    },
  });
  register('LogSoftmax', {
    backward(ctx) {
      const g = ctx.graph;
      const axis = ctx.intAttribute('axis', -1);
      const grad = ctx.outputGradient(0);
      const total = g.op('ReduceSum', [grad, g.constInt64([axis])], { keepdims: 1 }, 'total');
      return [g.op('Sub', [grad, g.op('Mul', [g.op('Exp', [at(ctx.outputs, 0, 'ctx.outputs')], {}, 'softmax'), total], {}, 'spread')], {}, 'gx')];
    },
  });
}
