/**
 * Typed helpers for the ONNX operators rcnn-node uses. Each one knows its attributes' ONNX types
 * (so a float attribute is never written as INT) and names its node inside the builder's scope.
 * Everything here is opset-17 semantics.
 */
import { type Blob, type GraphBuilder, attr } from './builder.js';
import { type DataType, ONNX_DATA_TYPE } from './dtypes.js';

/** A (height, width) pair, or one number for both. */
export type Pair = readonly [number, number];
const pair = (v: number | Pair): Pair => (typeof v === 'number' ? [v, v] : v);

/** Options of {@link conv}. */
export interface ConvOptions {
  /** Kernel height/width (taken from the weight if omitted is not possible in ONNX shape-free build: give it). */
  readonly kernel: number | Pair;
  readonly stride?: number | Pair;
  /** Symmetric padding per spatial axis. */
  readonly pad?: number | Pair;
  readonly dilation?: number | Pair;
  readonly group?: number;
  readonly name?: string;
}

/** 2-D convolution `Conv(x, weight, bias)`; `bias` may be null. */
export function conv(g: GraphBuilder, x: Blob, weight: Blob, bias: Blob | null, o: ConvOptions): Blob {
  const [kh, kw] = pair(o.kernel);
  const [sh, sw] = pair(o.stride ?? 1);
  const [ph, pw] = pair(o.pad ?? 0);
  const [dh, dw] = pair(o.dilation ?? 1);
  return g.op(
    'Conv',
    bias ? [x, weight, bias] : [x, weight],
    { kernel_shape: [kh, kw], strides: [sh, sw], pads: [ph, pw, ph, pw], dilations: [dh, dw], group: o.group ?? 1 },
    o.name ?? 'conv',
  );
}

/** Options of {@link convTranspose}. */
export interface ConvTransposeOptions {
  readonly kernel: number | Pair;
  readonly stride?: number | Pair;
  readonly pad?: number | Pair;
  readonly outputPadding?: number | Pair;
  readonly group?: number;
  readonly name?: string;
}

/** 2-D transposed convolution (PyTorch `ConvTranspose2d` semantics with symmetric padding). */
export function convTranspose(g: GraphBuilder, x: Blob, weight: Blob, bias: Blob | null, o: ConvTransposeOptions): Blob {
  const [kh, kw] = pair(o.kernel);
  const [sh, sw] = pair(o.stride ?? 1);
  const [ph, pw] = pair(o.pad ?? 0);
  const [oh, ow] = pair(o.outputPadding ?? 0);
  return g.op(
    'ConvTranspose',
    bias ? [x, weight, bias] : [x, weight],
    { kernel_shape: [kh, kw], strides: [sh, sw], pads: [ph, pw, ph, pw], output_padding: [oh, ow], group: o.group ?? 1 },
    o.name ?? 'deconv',
  );
}

/** `Gemm(a, b, c)` with optional transposes: `alpha * A' B' + beta * C`. */
export function gemm(g: GraphBuilder, a: Blob, b: Blob, c: Blob | null, o: { transB?: boolean; transA?: boolean; name?: string } = {}): Blob {
  return g.op('Gemm', c ? [a, b, c] : [a, b], { transA: o.transA ? 1 : 0, transB: o.transB ? 1 : 0 }, o.name ?? 'gemm');
}

/** Element-wise ReLU. */
export const relu = (g: GraphBuilder, x: Blob, name = 'relu'): Blob => g.op('Relu', [x], {}, name);
/** Element-wise logistic sigmoid. */
export const sigmoid = (g: GraphBuilder, x: Blob, name = 'sigmoid'): Blob => g.op('Sigmoid', [x], {}, name);
/** Softmax over `axis` (default last). */
export const softmax = (g: GraphBuilder, x: Blob, axis = -1, name = 'softmax'): Blob => g.op('Softmax', [x], { axis }, name);
/** Element-wise `exp`. */
export const exp = (g: GraphBuilder, x: Blob, name = 'exp'): Blob => g.op('Exp', [x], {}, name);
/** Element-wise natural log. */
export const log = (g: GraphBuilder, x: Blob, name = 'log'): Blob => g.op('Log', [x], {}, name);
/** Element-wise square root. */
export const sqrt = (g: GraphBuilder, x: Blob, name = 'sqrt'): Blob => g.op('Sqrt', [x], {}, name);
/** Element-wise floor. */
export const floor = (g: GraphBuilder, x: Blob, name = 'floor'): Blob => g.op('Floor', [x], {}, name);
/** Element-wise ceil. */
export const ceil = (g: GraphBuilder, x: Blob, name = 'ceil'): Blob => g.op('Ceil', [x], {}, name);
/** Logical not. */
export const not = (g: GraphBuilder, x: Blob, name = 'not'): Blob => g.op('Not', [x], {}, name);

/** Element-wise `a + b` (broadcasting). */
export const add = (g: GraphBuilder, a: Blob, b: Blob, name = 'add'): Blob => g.op('Add', [a, b], {}, name);
/**
 * `a + b` of two values of the same shape by construction (a residual sum, an FPN merge): declared
 * to the builder ({@link GraphBuilder.declareSameShape}), so the backward passes the sum's gradient
 * to both operands as is.
 */
export function addSameShape(g: GraphBuilder, a: Blob, b: Blob, name = 'add'): Blob {
  const sum = g.op('Add', [a, b], {}, name);
  g.declareSameShape(a, b, sum);
  return sum;
}
/** Element-wise `a - b` (broadcasting). */
export const sub = (g: GraphBuilder, a: Blob, b: Blob, name = 'sub'): Blob => g.op('Sub', [a, b], {}, name);
/** Element-wise `a * b` (broadcasting). */
export const mul = (g: GraphBuilder, a: Blob, b: Blob, name = 'mul'): Blob => g.op('Mul', [a, b], {}, name);
/** Element-wise `a / b` (broadcasting; integer division truncates, as ONNX Div). */
export const div = (g: GraphBuilder, a: Blob, b: Blob, name = 'div'): Blob => g.op('Div', [a, b], {}, name);
/** Element-wise minimum. */
export const min = (g: GraphBuilder, inputs: readonly Blob[], name = 'min'): Blob => g.op('Min', inputs, {}, name);
/** Element-wise maximum. */
export const max = (g: GraphBuilder, inputs: readonly Blob[], name = 'max'): Blob => g.op('Max', inputs, {}, name);
/** `a > b` as bool. */
export const greater = (g: GraphBuilder, a: Blob, b: Blob, name = 'gt'): Blob => g.op('Greater', [a, b], {}, name);
/** `a >= b` as bool. */
export const greaterOrEqual = (g: GraphBuilder, a: Blob, b: Blob, name = 'ge'): Blob => g.op('GreaterOrEqual', [a, b], {}, name);
/** `a < b` as bool. */
export const less = (g: GraphBuilder, a: Blob, b: Blob, name = 'lt'): Blob => g.op('Less', [a, b], {}, name);
/** `a == b` as bool. */
export const equal = (g: GraphBuilder, a: Blob, b: Blob, name = 'eq'): Blob => g.op('Equal', [a, b], {}, name);
/** Logical and. */
export const and = (g: GraphBuilder, a: Blob, b: Blob, name = 'and'): Blob => g.op('And', [a, b], {}, name);
/** `cond ? a : b` element-wise. */
export const where = (g: GraphBuilder, cond: Blob, a: Blob, b: Blob, name = 'where'): Blob => g.op('Where', [cond, a, b], {}, name);

/** Clamps to `[lo, hi]` (either bound may be null). Bounds are scalar blobs of x's type. */
export const clip = (g: GraphBuilder, x: Blob, lo: Blob | null, hi: Blob | null, name = 'clip'): Blob => g.op('Clip', [x, lo, hi], {}, name);

/** Casts to `to`. */
export const cast = (g: GraphBuilder, x: Blob, to: DataType, name = 'cast'): Blob => g.op('Cast', [x], { to: ONNX_DATA_TYPE[to] }, name);

/** Shape of `x` as int64 [rank]; `start`/`end` select a slice of the dimensions. */
export function shape(g: GraphBuilder, x: Blob, start?: number, end?: number, name = 'shape'): Blob {
  const a: Record<string, number> = {};
  if (start !== undefined) a.start = start;
  if (end !== undefined) a.end = end;
  return g.op('Shape', [x], a, name);
}

/** Dimension `axis` of `x` as an int64 tensor of shape [1]. */
export const dim = (g: GraphBuilder, x: Blob, axis: number, name = 'dim'): Blob => shape(g, x, axis, axis === -1 ? undefined : axis + 1, name);

/**
 * Reshape to `dims`: a literal list (0 copies the input dimension, -1 infers one), or an int64
 * blob computed in the graph, whose zeros are real zero-sized dimensions (`allowzero`), so that
 * empty batches (no proposals, no detections) keep their shape instead of failing.
 */
export function reshape(g: GraphBuilder, x: Blob, dims: Blob | readonly number[], name = 'reshape'): Blob {
  if (Array.isArray(dims)) return g.op('Reshape', [x, g.constInt64(dims as readonly number[])], {}, name);
  return g.op('Reshape', [x, dims as Blob], { allowzero: 1 }, name);
}

/** Flattens to 2-D at `axis`. */
export const flatten = (g: GraphBuilder, x: Blob, axis = 1, name = 'flatten'): Blob => g.op('Flatten', [x], { axis }, name);
/** Permutes dimensions. */
export const transpose = (g: GraphBuilder, x: Blob, perm: readonly number[], name = 'transpose'): Blob => g.op('Transpose', [x], { perm }, name);
/** Concatenates along `axis`. */
export const concat = (g: GraphBuilder, inputs: readonly Blob[], axis: number, name = 'concat'): Blob => g.op('Concat', inputs, { axis }, name);
/** Adds size-1 axes. */
export const unsqueeze = (g: GraphBuilder, x: Blob, axes: readonly number[], name = 'unsqueeze'): Blob => g.op('Unsqueeze', [x, g.constInt64(axes)], {}, name);
/** Removes size-1 axes. */
export const squeeze = (g: GraphBuilder, x: Blob, axes: readonly number[], name = 'squeeze'): Blob => g.op('Squeeze', [x, g.constInt64(axes)], {}, name);
/** Broadcasts to `dims` (int64 blob). */
export const expand = (g: GraphBuilder, x: Blob, dims: Blob, name = 'expand'): Blob => g.op('Expand', [x, dims], {}, name);

/**
 * Slice along `axes` from `starts` to `ends` (literal lists or int64 blobs); `steps` optional.
 */
export function slice(
  g: GraphBuilder,
  x: Blob,
  starts: Blob | readonly number[],
  ends: Blob | readonly number[],
  axes: readonly number[],
  steps?: readonly number[],
  name = 'slice',
): Blob {
  const b = (v: Blob | readonly number[]): Blob => (Array.isArray(v) ? g.constInt64(v as readonly number[]) : (v as Blob));
  return g.op('Slice', [x, b(starts), b(ends), g.constInt64(axes), steps ? g.constInt64(steps) : null], {}, name);
}

/**
 * Splits along `axis` into parts of the given literal sizes: one blob per size (a tuple when
 * `sizes` is a literal list, so `const [x1, y1, x2, y2] = split(…, [1, 1, 1, 1], …)` is typed).
 */
export function split<const S extends readonly number[]>(g: GraphBuilder, x: Blob, sizes: S, axis: number, name = 'split'): { -readonly [K in keyof S]: Blob } {
  return g.node('Split', [x, g.constInt64(sizes)], { axis }, { outputs: sizes.length, name }) as { -readonly [K in keyof S]: Blob };
}

/** `Gather(data, indices, axis)`. */
export const gather = (g: GraphBuilder, data: Blob, indices: Blob, axis = 0, name = 'gather'): Blob => g.op('Gather', [data, indices], { axis }, name);
/** `GatherElements(data, indices, axis)`. */
export const gatherElements = (g: GraphBuilder, data: Blob, indices: Blob, axis: number, name = 'gather_el'): Blob =>
  g.op('GatherElements', [data, indices], { axis }, name);
/** `GatherND(data, indices, batch_dims)`. */
export const gatherND = (g: GraphBuilder, data: Blob, indices: Blob, batchDims = 0, name = 'gather_nd'): Blob =>
  g.op('GatherND', [data, indices], { batch_dims: batchDims }, name);
/** `ScatterND(data, indices, updates)` (no reduction). */
export const scatterND = (g: GraphBuilder, data: Blob, indices: Blob, updates: Blob, name = 'scatter_nd'): Blob =>
  g.op('ScatterND', [data, indices, updates], {}, name);
/** Indices of non-zero elements, int64 [rank, count]. */
export const nonZero = (g: GraphBuilder, x: Blob, name = 'nonzero'): Blob => g.op('NonZero', [x], {}, name);

/** `TopK(x, k)` along `axis` (largest, sorted); returns [values, indices]. `k` is an int64 [1] blob. */
export function topK(g: GraphBuilder, x: Blob, k: Blob, axis = -1, name = 'topk'): [Blob, Blob] {
  const [values, indices] = g.node('TopK', [x, k], { axis, largest: 1, sorted: 1 }, { outputs: 2, name });
  return [values, indices];
}

/** `Range(start, limit, delta)` on scalar blobs. */
export const range = (g: GraphBuilder, start: Blob, limit: Blob, delta: Blob, name = 'range'): Blob => g.op('Range', [start, limit, delta], {}, name);

/** Reduce-max over `axes` (int64 literal list). */
export const reduceMax = (g: GraphBuilder, x: Blob, axes: readonly number[], keepDims = false, name = 'reduce_max'): Blob =>
  g.op('ReduceMax', [x], { axes, keepdims: keepDims ? 1 : 0 }, name);
/** Reduce-sum over `axes` (opset 13+: axes as input). */
export const reduceSum = (g: GraphBuilder, x: Blob, axes: readonly number[], keepDims = false, name = 'reduce_sum'): Blob =>
  g.op('ReduceSum', [x, g.constInt64(axes)], { keepdims: keepDims ? 1 : 0 }, name);

/** Max-pooling with symmetric padding. */
export function maxPool(g: GraphBuilder, x: Blob, o: { kernel: number | Pair; stride?: number | Pair; pad?: number | Pair; name?: string }): Blob {
  const [kh, kw] = pair(o.kernel);
  const [sh, sw] = pair(o.stride ?? 1);
  const [ph, pw] = pair(o.pad ?? 0);
  return g.op('MaxPool', [x], { kernel_shape: [kh, kw], strides: [sh, sw], pads: [ph, pw, ph, pw] }, o.name ?? 'maxpool');
}

/** Global average pooling to [N, C, 1, 1]. */
export const globalAveragePool = (g: GraphBuilder, x: Blob, name = 'gap'): Blob => g.op('GlobalAveragePool', [x], {}, name);

/** Options of {@link roiAlign}. */
export interface RoiAlignOptions {
  readonly outputSize: number | Pair;
  readonly samplingRatio: number;
  readonly spatialScale: number;
  /** torchvision `aligned`: true = half_pixel, false = output_half_pixel (the legacy, torchvision-default behaviour). */
  readonly aligned: boolean;
  readonly name?: string;
}

/** ONNX RoiAlign (avg mode): `rois` [R,4] float (x1,y1,x2,y2), `batchIndices` [R] int64. */
export function roiAlign(g: GraphBuilder, features: Blob, rois: Blob, batchIndices: Blob, o: RoiAlignOptions): Blob {
  const [oh, ow] = pair(o.outputSize);
  return g.op(
    'RoiAlign',
    [features, rois, batchIndices],
    {
      mode: 'avg',
      output_height: oh,
      output_width: ow,
      sampling_ratio: o.samplingRatio,
      spatial_scale: attr.float(o.spatialScale),
      coordinate_transformation_mode: o.aligned ? 'half_pixel' : 'output_half_pixel',
    },
    o.name ?? 'roi_align',
  );
}

/**
 * ONNX NonMaxSuppression: `boxes` [B, M, 4] (corners), `scores` [B, C, M]. Returns selected indices
 * [S, 3] = (batch, class, box), in order of selection (descending score) per batch and class.
 * Suppresses a box when IoU > `iouThreshold`; `scoreThreshold` keeps scores > threshold.
 */
export function nonMaxSuppression(
  g: GraphBuilder,
  boxes: Blob,
  scores: Blob,
  o: { maxOutputPerClass: Blob; iouThreshold: Blob; scoreThreshold?: Blob; name?: string },
): Blob {
  return g.op(
    'NonMaxSuppression',
    [boxes, scores, o.maxOutputPerClass, o.iouThreshold, o.scoreThreshold ?? null],
    { center_point_box: 0 },
    o.name ?? 'nms',
  );
}

/** Resize with explicit output `sizes` (int64 [rank]); mode and coordinate transform as ONNX Resize-13+. */
export function resize(
  g: GraphBuilder,
  x: Blob,
  sizes: Blob | null,
  o: {
    mode: 'nearest' | 'linear' | 'cubic';
    coordinateTransformationMode: 'half_pixel' | 'asymmetric' | 'pytorch_half_pixel' | 'align_corners';
    nearestMode?: 'floor' | 'round_prefer_floor' | 'round_prefer_ceil' | 'ceil';
    cubicCoeffA?: number;
    scales?: Blob;
    name?: string;
  },
): Blob {
  const a: Record<string, ReturnType<typeof attr.float> | string | number> = {
    mode: o.mode,
    coordinate_transformation_mode: o.coordinateTransformationMode,
  };
  if (o.nearestMode) a.nearest_mode = o.nearestMode;
  if (o.cubicCoeffA !== undefined) a.cubic_coeff_a = attr.float(o.cubicCoeffA);
  return g.op('Resize', [x, null, o.scales ?? null, sizes], a, o.name ?? 'resize');
}

/** `ConstantOfShape(shape)` filled with a scalar of `dtype`. */
export function constantOfShape(g: GraphBuilder, dims: Blob, value: number, dtype: DataType = 'float32', name = 'fill'): Blob {
  const data =
    dtype === 'int64'
      ? BigInt64Array.of(BigInt(value))
      : dtype === 'bool' || dtype === 'uint8'
        ? Uint8Array.of(value)
        : dtype === 'int32'
          ? Int32Array.of(value)
          : Float32Array.of(value);
  if (dtype !== 'int64' && dtype !== 'bool' && dtype !== 'uint8' && dtype !== 'int32' && dtype !== 'float32') {
    throw new RangeError(`constantOfShape: unsupported dtype ${dtype}`);
  }
  return g.op('ConstantOfShape', [dims], { value: attr.tensor({ dtype, dims: [1], data } as never) }, name);
}
