/**
 * Every built-in gradient rule against central finite differences (see gradcheck.ts): float64
 * where onnxruntime has double kernels, float32 with linear objectives where it has not.
 */
import { describe, it } from 'node:test';
import { type Blob, type GraphBuilder, attr, ops } from '../src/index.js';
import { gradcheck, int64, randn, tensor, uniform } from './gradcheck.js';

const F64 = 'float64' as const;
const t64 = (dims: number[], values: number[]) => tensor(F64, dims, values);
const size = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);
const rand64 = (dims: number[], seed: number, scale = 1) => t64(dims, randn(size(dims), seed, scale));
const pos64 = (dims: number[], seed: number, lo = 0.5, hi = 1.5) => t64(dims, uniform(size(dims), seed, lo, hi));
const c64 = (g: GraphBuilder, v: number): Blob => g.constant({ dtype: F64, dims: [], data: Float64Array.of(v) });

describe('element-wise rules (float64, broadcasting)', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    it(`${op} broadcasts [2,3,4] with [3,1] and [4] and reduces back`, async () => {
      await gradcheck({
        inputs: {
          a: rand64([2, 3, 4], 1),
          b: pos64([3, 1], 2),
          c: pos64([4], 3),
        },
        build: (g, x) => g.op(op, [g.op(op, [x.a, x.b]), x.c]),
      });
    });
  }
  it('Sum of three broadcast inputs', async () => {
    await gradcheck({
      inputs: {
        a: rand64([2, 3], 4),
        b: rand64([1, 3], 5),
        c: rand64([2, 1], 6),
      },
      build: (g, x) => g.op('Sum', [x.a, x.b, x.c]),
    });
  });
  it('Max and Min (variadic, broadcasting)', async () => {
    await gradcheck({
      inputs: {
        a: rand64([3, 4], 7),
        b: pos64([4], 8, 0, 2),
        c: rand64([3, 1], 9, 2),
      },
      build: (g, x) => g.op('Max', [x.a, x.b, x.c]),
    });
    await gradcheck({
      inputs: { a: rand64([3, 4], 10), b: rand64([3, 4], 11) },
      build: (g, x) => g.op('Min', [x.a, x.b]),
    });
  });
  it('Max splits the gradient equally between tied inputs (torch.maximum): max(a, a) has gradient 1, not 2', async () => {
    await gradcheck({
      inputs: { a: rand64([5], 12) },
      build: (g, x) => g.op('Max', [x.a, g.op('Identity', [x.a])]),
    });
  });
  it('Pow with a constant and a variable exponent', async () => {
    await gradcheck({
      inputs: { a: pos64([2, 3], 13) },
      build: (g, x) => g.op('Pow', [x.a, c64(g, 2)]),
    });
    await gradcheck({
      inputs: { a: pos64([2, 3], 14), p: pos64([3], 15) },
      build: (g, x) => g.op('Pow', [x.a, x.p]),
    });
  });
  const unary: [string, (seed: number) => ReturnType<typeof rand64>][] = [
    ['Neg', (s) => rand64([3, 4], s)],
    ['Abs', (s) => rand64([3, 4], s)],
    ['Relu', (s) => rand64([3, 4], s)],
    ['Sigmoid', (s) => rand64([3, 4], s)],
    ['Tanh', (s) => rand64([3, 4], s)],
    ['Exp', (s) => rand64([3, 4], s)],
    ['Log', (s) => pos64([3, 4], s)],
    ['Sqrt', (s) => pos64([3, 4], s)],
    ['Reciprocal', (s) => pos64([3, 4], s)],
    ['Identity', (s) => rand64([3, 4], s)],
  ];
  unary.forEach(([op, make], i) => {
    it(op, async () => {
      await gradcheck({
        inputs: { a: make(20 + i) },
        build: (g, x) => g.op(op, [x.a]),
      });
    });
  });
  it('Softplus (float32 only in onnxruntime: h = 1e-2)', async () => {
    await gradcheck({
      dtype: 'float32',
      h: 1e-2,
      tolerance: 1e-3,
      inputs: { a: tensor('float32', [3, 4], randn(12, 39)) },
      build: (g, x) => g.op('Softplus', [x.a]),
    });
  });
  it('LeakyRelu', async () => {
    await gradcheck({
      inputs: { a: rand64([3, 4], 40) },
      build: (g, x) => g.op('LeakyRelu', [x.a], { alpha: attr.float(0.1) }),
    });
  });
  it('Clip with both bounds, and with only a lower bound', async () => {
    await gradcheck({
      inputs: { a: rand64([4, 5], 41) },
      build: (g, x) => g.op('Clip', [x.a, c64(g, -0.5), c64(g, 0.7)]),
    });
    await gradcheck({
      inputs: { a: rand64([4, 5], 42) },
      build: (g, x) => g.op('Clip', [x.a, c64(g, -0.2), null]),
    });
  });
  it('Where with a broadcast condition and broadcast branches', async () => {
    const cond = {
      dtype: 'bool' as const,
      dims: [3, 1],
      data: Uint8Array.from([1, 0, 1]),
    };
    await gradcheck({
      inputs: { cond, a: rand64([3, 4], 43), b: rand64([4], 44) },
      build: (g, x) => g.op('Where', [x.cond, x.a, x.b]),
    });
  });
  it('Cast between float types passes the gradient; a cast to int64 cuts it', async () => {
    await gradcheck({
      inputs: { a: rand64([3], 45) },
      build: (g, x) => g.op('Mul', [g.op('Cast', [x.a], { to: 11 }), x.a]),
    });
    await gradcheck({
      inputs: { a: rand64([3], 46) },
      build: (g, x) => g.op('Add', [x.a, g.op('Cast', [g.op('Cast', [g.op('Mul', [x.a, c64(g, 100)])], { to: 7 })], { to: 11 })]),
    });
  });
});

describe('layout and indexing rules (float64)', () => {
  it('Reshape, Flatten, Squeeze, Unsqueeze', async () => {
    await gradcheck({
      inputs: { a: rand64([2, 1, 3, 2], 50) },
      build: (g, x) => {
        const s = ops.squeeze(g, x.a, [1]);
        const u = ops.unsqueeze(g, s, [0]);
        const f = ops.flatten(g, u, 2);
        return ops.reshape(g, f, [3, -1]);
      },
    });
  });
  it('Transpose with and without perm', async () => {
    await gradcheck({
      inputs: { a: rand64([2, 3, 4], 51) },
      build: (g, x) => g.op('Transpose', [ops.transpose(g, x.a, [2, 0, 1])]),
    });
  });
  it('Concat along axis 1 and -1', async () => {
    await gradcheck({
      inputs: {
        a: rand64([2, 3, 2], 52),
        b: rand64([2, 1, 2], 53),
        c: rand64([2, 2, 2], 54),
      },
      build: (g, x) => ops.concat(g, [x.a, x.b, x.c], 1),
    });
    await gradcheck({
      inputs: { a: rand64([2, 3], 55), b: rand64([2, 1], 56) },
      build: (g, x) => ops.concat(g, [x.a, x.b, x.a], -1),
    });
  });
  it('Split with an unused output', async () => {
    await gradcheck({
      inputs: { a: rand64([2, 6], 57) },
      build: (g, x) => {
        const [p, , r] = ops.split(g, x.a, [1, 2, 3], 1);
        return ops.concat(g, [r, p], 1);
      },
    });
  });
  it('Slice with negative starts, steps 2 and -1', async () => {
    await gradcheck({
      inputs: { a: rand64([4, 7], 58) },
      build: (g, x) => ops.slice(g, x.a, [-3, 1], [100, 6], [0, 1], [1, 2]),
    });
    await gradcheck({
      inputs: { a: rand64([4, 7], 59) },
      build: (g, x) => ops.slice(g, x.a, [5], [0], [1], [-1]),
    });
  });
  it('Gather on axis 1 with repeated indices', async () => {
    await gradcheck({
      inputs: { a: rand64([3, 5], 60), i: int64([4], [4, 0, 4, 2]) },
      build: (g, x) => ops.gather(g, x.a, x.i, 1),
    });
    await gradcheck({
      inputs: { a: rand64([4, 3], 61), i: int64([2, 2], [1, 1, 3, 0]) },
      build: (g, x) => ops.gather(g, x.a, x.i, 0),
    });
    // Axis 0 is a row scatter-add: negative and repeated indices, rows of a rank-3 tensor, a scalar index.
    await gradcheck({
      inputs: { a: rand64([4, 2, 3], 65), i: int64([5], [-1, 0, 3, -4, 2]) },
      build: (g, x) => ops.gather(g, x.a, x.i, 0),
    });
    await gradcheck({
      inputs: { a: rand64([4, 3], 66), i: int64([], [-2]) },
      build: (g, x) => ops.gather(g, x.a, x.i, 0),
    });
  });
  it('GatherElements and GatherND with repeated indices', async () => {
    await gradcheck({
      inputs: { a: rand64([3, 4], 62), i: int64([3, 2], [0, 0, 3, 1, 2, 2]) },
      build: (g, x) => ops.gatherElements(g, x.a, x.i, 1),
    });
    await gradcheck({
      inputs: { a: rand64([3, 4], 63), i: int64([3, 2], [0, 1, 0, 1, 2, 3]) },
      build: (g, x) => ops.gatherND(g, x.a, x.i),
    });
  });
  it('Pad (constant) with positive and negative pads', async () => {
    await gradcheck({ inputs: { a: rand64([2, 3, 4], 76) }, build: (g, x) => g.op('Pad', [x.a, g.constInt64([0, 1, -1, 0, 2, 1])], { mode: 'constant' }) });
  });
  it('Expand and Tile', async () => {
    await gradcheck({
      inputs: { a: rand64([3, 1], 64) },
      build: (g, x) => ops.expand(g, x.a, g.constInt64([2, 3, 4])),
    });
    await gradcheck({
      inputs: { a: rand64([2, 3], 65) },
      build: (g, x) => g.op('Tile', [x.a, g.constInt64([2, 3])]),
    });
  });
  it('ScatterND and ScatterElements (data and updates)', async () => {
    await gradcheck({
      inputs: {
        d: rand64([4, 3], 66),
        u: rand64([2, 3], 67),
        i: int64([2, 1], [3, 1]),
      },
      build: (g, x) => g.op('ScatterND', [x.d, x.i, x.u]),
    });
    await gradcheck({
      inputs: {
        d: rand64([4, 3], 68),
        u: rand64([2, 3], 69),
        i: int64([2, 1], [3, 3]),
      },
      build: (g, x) => g.op('ScatterND', [x.d, x.i, x.u], { reduction: 'add' }),
    });
    await gradcheck({
      inputs: {
        d: rand64([3, 4], 70),
        u: rand64([3, 2], 71),
        i: int64([3, 2], [0, 3, 1, 2, 2, 0]),
      },
      build: (g, x) => g.op('ScatterElements', [x.d, x.i, x.u], { axis: 1 }),
    });
  });
  it('TopK values (indices carry no gradient)', async () => {
    await gradcheck({
      inputs: { a: rand64([3, 6], 72) },
      build: (g, x) => ops.topK(g, x.a, g.constInt64([3]), 1)[0],
    });
  });
  it('DepthToSpace (DCR and CRD) and SpaceToDepth', async () => {
    await gradcheck({
      inputs: { a: rand64([2, 8, 2, 3], 73) },
      build: (g, x) => g.op('DepthToSpace', [x.a], { blocksize: 2, mode: 'DCR' }),
    });
    await gradcheck({
      inputs: { a: rand64([2, 8, 2, 3], 74) },
      build: (g, x) => g.op('DepthToSpace', [x.a], { blocksize: 2, mode: 'CRD' }),
    });
    await gradcheck({
      inputs: { a: rand64([1, 2, 4, 6], 75) },
      build: (g, x) => g.op('SpaceToDepth', [x.a], { blocksize: 2 }),
    });
  });
});

describe('network rules', () => {
  for (const [transA, transB] of [
    [0, 0],
    [0, 1],
    [1, 0],
    [1, 1],
  ] as const) {
    it(`Gemm transA=${transA} transB=${transB}, alpha, beta, broadcast C`, async () => {
      const a = transA ? [4, 3] : [3, 4];
      const b = transB ? [5, 4] : [4, 5];
      await gradcheck({
        inputs: { a: rand64(a, 80), b: rand64(b, 81), c: rand64([5], 82) },
        build: (g, x) =>
          g.op('Gemm', [x.a, x.b, x.c], {
            transA,
            transB,
            alpha: attr.float(0.7),
            beta: attr.float(1.3),
          }),
      });
    });
  }
  it('MatMul 2-D and batched with broadcasting', async () => {
    await gradcheck({
      inputs: { a: rand64([3, 4], 83), b: rand64([4, 2], 84) },
      build: (g, x) => g.op('MatMul', [x.a, x.b]),
    });
    await gradcheck({
      inputs: { a: rand64([2, 3, 4], 85), b: rand64([4, 2], 86) },
      build: (g, x) => g.op('MatMul', [x.a, x.b]),
    });
  });
  it('MaxPool 3x3 stride 2 pad 1 (the stem) and 1x1 stride 2 (LastLevelMaxPool)', async () => {
    await gradcheck({
      inputs: { a: rand64([2, 2, 7, 6], 87) },
      build: (g, x) => ops.maxPool(g, x.a, { kernel: 3, stride: 2, pad: 1 }),
    });
    await gradcheck({
      inputs: { a: rand64([1, 2, 5, 5], 88) },
      build: (g, x) => ops.maxPool(g, x.a, { kernel: 1, stride: 2 }),
    });
  });
  it('GlobalAveragePool (float32, linear)', async () => {
    await gradcheck({
      dtype: 'float32',
      inputs: { a: tensor('float32', [2, 3, 4, 5], randn(120, 89)) },
      build: (g, x) => ops.globalAveragePool(g, x.a),
    });
  });
  it('ReduceSum (axes input, keepdims 0 and 1, all axes)', async () => {
    await gradcheck({
      inputs: { a: rand64([2, 3, 4], 90) },
      build: (g, x) => ops.reduceSum(g, x.a, [1], false),
    });
    await gradcheck({
      inputs: { a: rand64([2, 3, 4], 91) },
      build: (g, x) => ops.reduceSum(g, x.a, [0, -1], true),
    });
    await gradcheck({
      inputs: { a: rand64([2, 3, 4], 92) },
      build: (g, x) => g.op('ReduceSum', [x.a], { keepdims: 0 }),
    });
  });
  it('ReduceMean and ReduceMax', async () => {
    await gradcheck({
      inputs: { a: rand64([2, 3, 4], 93) },
      build: (g, x) => g.op('ReduceMean', [x.a], { axes: [1, 2], keepdims: 0 }),
    });
    await gradcheck({
      inputs: { a: rand64([2, 3, 4], 94) },
      build: (g, x) => g.op('ReduceMean', [x.a], { keepdims: 1 }),
    });
    await gradcheck({
      inputs: { a: rand64([2, 3, 4], 95) },
      build: (g, x) => g.op('ReduceMax', [x.a], { axes: [2], keepdims: 0 }),
    });
  });
  it('Softmax and LogSoftmax', async () => {
    await gradcheck({
      inputs: { a: rand64([3, 5], 96) },
      build: (g, x) => ops.softmax(g, x.a, 1),
    });
    await gradcheck({
      inputs: { a: rand64([2, 3, 4], 97) },
      build: (g, x) => g.op('LogSoftmax', [x.a], { axis: -1 }),
    });
  });
});

describe('convolution and resize rules (float32, linear objectives)', () => {
  const F32 = 'float32' as const;
  const r32 = (dims: number[], seed: number) => tensor(F32, dims, randn(size(dims), seed));
  const convCases: {
    name: string;
    x: number[];
    w: number[];
    attrs: Record<string, number | number[]>;
  }[] = [
    {
      name: '3x3 stride 1 pad 1',
      x: [2, 3, 6, 5],
      w: [4, 3, 3, 3],
      attrs: {
        kernel_shape: [3, 3],
        strides: [1, 1],
        pads: [1, 1, 1, 1],
        dilations: [1, 1],
        group: 1,
      },
    },
    {
      name: '3x3 stride 2 pad 1 (leftover rows)',
      x: [2, 3, 8, 7],
      w: [4, 3, 3, 3],
      attrs: {
        kernel_shape: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        dilations: [1, 1],
        group: 1,
      },
    },
    {
      name: '7x7 stride 2 pad 3 (the stem)',
      x: [1, 3, 11, 9],
      w: [4, 3, 7, 7],
      attrs: {
        kernel_shape: [7, 7],
        strides: [2, 2],
        pads: [3, 3, 3, 3],
        dilations: [1, 1],
        group: 1,
      },
    },
    {
      name: '1x1 stride 2 (downsample)',
      x: [2, 4, 7, 6],
      w: [6, 4, 1, 1],
      attrs: {
        kernel_shape: [1, 1],
        strides: [2, 2],
        pads: [0, 0, 0, 0],
        dilations: [1, 1],
        group: 1,
      },
    },
    {
      name: "1x1 stride 1 (bottleneck: one MatMul, no Slice)",
      x: [2, 5, 4, 6],
      w: [3, 5, 1, 1],
      attrs: {
        kernel_shape: [1, 1],
        strides: [1, 1],
        pads: [0, 0, 0, 0],
        dilations: [1, 1],
        group: 1,
      },
    },
    {
      name: "3x3 stride 2 without kernel_shape (batch-transposed Conv weight gradient)",
      x: [2, 3, 8, 7],
      w: [4, 3, 3, 3],
      attrs: {
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        dilations: [1, 1],
        group: 1,
      },
    },
    {
      name: "stride 1, asymmetric pads, dilation (1,2) (data gradient as a flipped-weight Conv)",
      x: [2, 2, 6, 7],
      w: [3, 2, 3, 2],
      attrs: {
        kernel_shape: [3, 2],
        strides: [1, 1],
        pads: [0, 1, 2, 0],
        dilations: [1, 2],
        group: 1,
      },
    },
    {
      name: "dilation 2",
      x: [1, 2, 9, 8],
      w: [3, 2, 3, 3],
      attrs: {
        kernel_shape: [3, 3],
        strides: [1, 1],
        pads: [2, 2, 2, 2],
        dilations: [2, 2],
        group: 1,
      },
    },
    {
      name: 'groups 2 stride 2 (ResNeXt)',
      x: [2, 4, 7, 7],
      w: [6, 2, 3, 3],
      attrs: {
        kernel_shape: [3, 3],
        strides: [2, 2],
        pads: [1, 1, 1, 1],
        dilations: [1, 1],
        group: 2,
      },
    },
    {
      name: 'asymmetric pads, stride (2,1), dilation (1,2)',
      x: [1, 2, 7, 8],
      w: [3, 2, 3, 2],
      attrs: {
        kernel_shape: [3, 2],
        strides: [2, 1],
        pads: [0, 1, 2, 0],
        dilations: [1, 2],
        group: 1,
      },
    },
  ];
  // One image: the weight gradient's single-image branch (the batch branch folds N into K).
  for (const name of [
    '3x3 stride 1 pad 1',
    '1x1 stride 1 (bottleneck: one MatMul, no Slice)',
    'stride 1, asymmetric pads, dilation (1,2) (data gradient as a flipped-weight Conv)',
    'dilation 2',
  ]) {
    const c = convCases.find((k) => k.name === name)!;
    convCases.push({ ...c, name: `${name}, one image`, x: [1, ...c.x.slice(1)] });
  }
  for (const c of convCases) {
    it(`Conv ${c.name}`, async () => {
      await gradcheck({
        dtype: F32,
        inputs: { x: r32(c.x, 100), w: r32(c.w, 101), b: r32([c.w[0]!], 102) },
        build: (g, x) => g.op('Conv', [x.x, x.w, x.b], c.attrs),
      });
    });
  }
  it('ConvTranspose stride 2 (the mask head), and stride 2 pad 1 output_padding 1 groups 2', async () => {
    await gradcheck({
      dtype: F32,
      inputs: {
        x: r32([2, 4, 3, 3], 103),
        w: r32([4, 3, 2, 2], 104),
        b: r32([3], 105),
      },
      build: (g, x) => ops.convTranspose(g, x.x, x.w, x.b, { kernel: 2, stride: 2 }),
    });
    await gradcheck({
      dtype: F32,
      inputs: {
        x: r32([1, 4, 3, 4], 106),
        w: r32([4, 2, 3, 3], 107),
        b: r32([4], 108),
      },
      build: (g, x) =>
        ops.convTranspose(g, x.x, x.w, x.b, {
          kernel: 3,
          stride: 2,
          pad: 1,
          outputPadding: 1,
          group: 2,
        }),
    });
  });
  it('linear Resize pytorch_half_pixel scales 2 (the keypoint heatmaps), align_corners to odd sizes, and cubic', async () => {
    await gradcheck({
      dtype: F32,
      inputs: { x: r32([2, 3, 5, 4], 112) },
      build: (g, x) =>
        ops.resize(g, x.x, null, {
          mode: 'linear',
          coordinateTransformationMode: 'pytorch_half_pixel',
          scales: g.constFloat32([1, 1, 2, 2]),
        }),
    });
    await gradcheck({
      dtype: F32,
      inputs: { x: r32([1, 2, 4, 5], 113) },
      build: (g, x) =>
        ops.resize(g, x.x, g.constInt64([1, 2, 7, 9]), {
          mode: 'linear',
          coordinateTransformationMode: 'align_corners',
        }),
    });
    await gradcheck({
      dtype: F32,
      inputs: { x: r32([1, 2, 4, 5], 114) },
      build: (g, x) =>
        ops.resize(g, x.x, g.constInt64([1, 2, 9, 7]), {
          mode: 'cubic',
          coordinateTransformationMode: 'half_pixel',
          cubicCoeffA: -0.75,
        }),
    });
  });
  it('nearest Resize: FPN top-down (sizes of the lateral, odd sizes) and scales 2', async () => {
    await gradcheck({
      dtype: F32,
      inputs: { x: r32([2, 3, 3, 4], 109), lateral: r32([2, 3, 5, 7], 110) },
      wrt: ['x'],
      build: (g, x) =>
        ops.add(
          g,
          ops.resize(g, x.x, ops.shape(g, x.lateral), {
            mode: 'nearest',
            coordinateTransformationMode: 'asymmetric',
            nearestMode: 'floor',
          }),
          x.lateral,
        ),
    });
    await gradcheck({
      dtype: F32,
      inputs: { x: r32([1, 2, 3, 3], 111) },
      build: (g, x) =>
        g.op('Resize', [x.x, null, g.constFloat32([1, 1, 2, 2])], {
          mode: 'nearest',
          coordinate_transformation_mode: 'asymmetric',
          nearest_mode: 'floor',
        }),
    });
    // Integer factors 3 x 2 on a batch (block sums), and the same scales with round_prefer_floor
    // (not a block replication: the index-plane scatter).
    await gradcheck({
      dtype: F32,
      inputs: { x: r32([2, 2, 3, 4], 112) },
      build: (g, x) =>
        g.op("Resize", [x.x, null, g.constFloat32([1, 1, 3, 2])], {
          mode: "nearest",
          coordinate_transformation_mode: "asymmetric",
          nearest_mode: "floor",
        }),
    });
    await gradcheck({
      dtype: F32,
      inputs: { x: r32([1, 2, 3, 3], 113) },
      build: (g, x) =>
        g.op("Resize", [x.x, null, g.constFloat32([1, 1, 2, 2])], {
          mode: "nearest",
          coordinate_transformation_mode: "half_pixel",
        }),
    });
  });
});

describe('loss operators and the losses composed of core rules (float64)', () => {
  const labels = int64([5], [0, 3, 1, 3, 2]);
  it('NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: mean, sum, none, class weights, ignore_index', async () => {
    for (const reduction of ['mean', 'sum', 'none']) {
      await gradcheck({ inputs: { x: rand64([5, 4], 120), t: labels }, build: (g, x) => g.op('NegativeLogLikelihoodLoss', [x.x, x.t], { reduction }) });
      await gradcheck({
        inputs: { x: rand64([5, 4], 121), t: labels },
        build: (g, x) => g.node('SoftmaxCrossEntropyLoss', [x.x, x.t], { reduction }, { outputs: 1 })[0],
      });
    }
    await gradcheck({
      inputs: { x: rand64([5, 4], 122), t: int64([5], [0, -100, 1, 3, -100]), w: pos64([4], 123) },
      wrt: ['x'],
      build: (g, x) => g.node('SoftmaxCrossEntropyLoss', [x.x, x.t, x.w], { reduction: 'mean', ignore_index: -100 }, { outputs: 1 })[0],
    });
  });
  it('binary cross-entropy with logits, composed: max(x, 0) - x z + log(1 + exp(-|x|)), mean', async () => {
    const z = t64([6], [1, 0, 1, 1, 0, 0]);
    await gradcheck({
      inputs: { x: rand64([6], 124, 2), z },
      wrt: ['x'],
      build: (g, x) => {
        const softplus = g.op('Log', [g.op('Add', [c64(g, 1), g.op('Exp', [g.op('Neg', [g.op('Abs', [x.x])])])])]);
        const terms = g.op('Add', [g.op('Sub', [g.op('Max', [x.x, c64(g, 0)]), g.op('Mul', [x.x, x.z])]), softplus]);
        return g.op('ReduceMean', [terms], { keepdims: 0 });
      },
    });
  });
  it('smooth L1 (beta 1/9), composed with Where on a Less mask, summed and divided by a count', async () => {
    await gradcheck({
      inputs: { x: rand64([4, 4], 125, 0.3), t: rand64([4, 4], 126, 0.3) },
      build: (g, x) => {
        const beta = 1 / 9;
        const n = g.op('Abs', [g.op('Sub', [x.x, x.t])]);
        const quadratic = g.op('Div', [g.op('Mul', [c64(g, 0.5), g.op('Pow', [n, c64(g, 2)])]), c64(g, beta)]);
        const linear = g.op('Sub', [n, c64(g, 0.5 * beta)]);
        const loss = g.op('ReduceSum', [g.op('Where', [g.op('Less', [n, c64(g, beta)]), quadratic, linear])], { keepdims: 0 });
        return g.op('Div', [loss, g.op('Cast', [g.op('Size', [x.x])], { to: 11 })]);
      },
    });
  });
  it('cross-entropy composed: LogSoftmax, GatherElements of the labels, Neg, ReduceMean', async () => {
    await gradcheck({
      inputs: { x: rand64([5, 4], 127), t: int64([5, 1], [0, 3, 1, 3, 2]) },
      wrt: ['x'],
      build: (g, x) => g.op('ReduceMean', [g.op('Neg', [g.op('GatherElements', [g.op('LogSoftmax', [x.x], { axis: 1 }), x.t], { axis: 1 })])], { keepdims: 0 }),
    });
  });
});
