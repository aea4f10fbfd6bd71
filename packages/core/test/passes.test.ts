/**
 * Graph passes at serialisation: each rewrite gives the values of the graph as built (run with
 * `passes: []`) and the operators it promises; patterns that do not match are left alone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { GraphBuilder, type HostTensor, buildGradients, decodeModelProto, multiScaleRoiAlign, ops } from '../src/index.js';
import { SHAPES_READ_EARLY, SINKS_IN_BACKWARD_ORDER } from '../src/internal/passes/index.js';
import { f32, i64 } from './helpers.js';

const rand = (k: number, seed: number): Float32Array => Float32Array.from({ length: k }, (_, i) => Math.sin(seed + i * 1.37) * 0.8);

async function runBytes(bytes: Uint8Array, feeds: Record<string, HostTensor>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(v.dtype as 'float32', v.data as Float32Array, [...v.dims]);
  const out = await session.run(ortFeeds);
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
}

/** The op types of a serialised model, in order. */
function opTypes(bytes: Uint8Array): string[] {
  const graph = decodeModelProto(bytes).graph as { node: { op_type: string }[] };
  // The Identity nodes that give graph outputs their public names are left out.
  return graph.node.map((n) => n.op_type).filter((t) => t !== 'Identity');
}

/** Runs `g` as built and with the default passes; returns both outputs and the passed op types. */
async function both(g: GraphBuilder, feeds: Record<string, HostTensor>) {
  const plainBytes = g.toModelProto({ passes: [] });
  const passedBytes = g.toModelProto();
  return { plain: await runBytes(plainBytes, feeds), passed: await runBytes(passedBytes, feeds), plainOps: opTypes(plainBytes), ops: opTypes(passedBytes) };
}

const worst = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('deconv-as-depth-to-space', () => {
  for (const r of [2, 3]) {
    it(`ConvTranspose kernel = stride = ${r} (+ ReLU) becomes 1x1 Conv + ReLU + DepthToSpace with the same values`, async () => {
      const [n, cin, cout, h, w] = [2, 5, 3, 4, 6];
      const g = new GraphBuilder();
      const x = g.input('x', 'float32', [n, cin, h, w]);
      const wb = g.initializer('w', { dtype: 'float32', dims: [cin, cout, r, r], data: rand(cin * cout * r * r, 1) });
      const bb = g.initializer('b', { dtype: 'float32', dims: [cout], data: rand(cout, 2) });
      g.output(ops.relu(g, ops.convTranspose(g, x, wb, bb, { kernel: r, stride: r })), 'y', 'float32');
      const out = await both(g, { x: f32([n, cin, h, w], [...rand(n * cin * h * w, 3)]) });
      assert.deepEqual(out.plainOps, ['ConvTranspose', 'Relu']);
      assert.deepEqual(out.ops, ['Conv', 'Relu', 'DepthToSpace']);
      assert.ok(worst(out.passed.y!, out.plain.y!) < 1e-6, `max |diff| ${worst(out.passed.y!, out.plain.y!)}`);
    });
  }

  it('leaves overlapping or padded transposed convs alone', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 2, 4, 4]);
    const wb = g.initializer('w', { dtype: 'float32', dims: [2, 2, 4, 4], data: rand(64, 1) });
    g.output(ops.convTranspose(g, x, wb, null, { kernel: 4, stride: 2, pad: 1 }), 'y', 'float32');
    assert.deepEqual(opTypes(g.toModelProto()), ['ConvTranspose']);
  });
});

describe('label-only-logits', () => {
  /** deconv + ReLU → 1x1 logits [D, C, M, M] → GatherND(labels) → sigmoid, as torchvision's mask predictor. */
  function maskPredictor(tapLogits: boolean) {
    const [d, cin, classes, h, r] = [3, 4, 5, 3, 2];
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['D', cin, h, h]);
    const labels = g.input('labels', 'int64', ['D']);
    const up = ops.relu(g, ops.convTranspose(g, x, g.initializer('wt', { dtype: 'float32', dims: [cin, cin, r, r], data: rand(cin * cin * r * r, 4) }), g.initializer('bt', { dtype: 'float32', dims: [cin], data: rand(cin, 5) }), { kernel: r, stride: r }));
    const logits = ops.conv(g, up, g.initializer('w', { dtype: 'float32', dims: [classes, cin, 1, 1], data: rand(classes * cin, 6) }), g.initializer('b', { dtype: 'float32', dims: [classes], data: rand(classes, 7) }), { kernel: 1 });
    if (tapLogits) g.output(logits, 'logits', 'float32');
    const selected = ops.unsqueeze(g, ops.gatherND(g, logits, ops.unsqueeze(g, labels, [1]), 1), [1]);
    g.output(ops.sigmoid(g, selected), 'probs', 'float32');
    const feeds = { x: f32([d, cin, h, h], [...rand(d * cin * h * h, 8)]), labels: i64([d], [4, 0, 2]) };
    return { g, feeds, d };
  }

  it("computes only the label's logits (MatMul on the pre-shuffle features) with the values of the full conv", async () => {
    const { g, feeds } = maskPredictor(false);
    const out = await both(g, feeds);
    assert.ok(out.plainOps.includes('GatherND') && !out.plainOps.includes('MatMul'));
    assert.ok(!out.ops.includes('GatherND') && !out.ops.includes('ConvTranspose') && out.ops.includes('MatMul'), out.ops.join(' '));
    assert.equal(out.ops.filter((o) => o === 'Conv').length, 1, 'only the deconv (as 1x1 conv) is a Conv');
    assert.ok(worst(out.passed.probs!, out.plain.probs!) < 1e-6, `max |diff| ${worst(out.passed.probs!, out.plain.probs!)}`);
  });

  it('works for zero detections', async () => {
    const { g } = maskPredictor(false);
    const out = await runBytes(g.toModelProto(), { x: f32([0, 4, 3, 3], []), labels: i64([0], []) });
    assert.equal(out.probs!.length, 0);
  });

  it('keeps the full logits where they are read (a tap that is a graph output)', async () => {
    const { g, feeds } = maskPredictor(true);
    const out = await both(g, feeds);
    assert.ok(out.ops.includes('GatherND'));
    assert.ok(worst(out.passed.probs!, out.plain.probs!) < 1e-6);
  });
});

describe('sink-row-gather', () => {
  it("moves the multi-level pooler's reordering after flatten + fc + ReLU, bit-identically", async () => {
    const g = new GraphBuilder();
    const c = 2;
    const p2 = g.input('p2', 'float32', [1, c, 16, 16]);
    const p3 = g.input('p3', 'float32', [1, c, 8, 8]);
    const rois = g.input('rois', 'float32', ['R', 4]);
    const bi = g.input('bi', 'int64', ['R']);
    const pooled = multiScaleRoiAlign(g, [
      { name: '0', blob: p2, channels: c, spatialScale: 1 / 4, level: 2 },
      { name: '1', blob: p3, channels: c, spatialScale: 1 / 8, level: 3 },
    ], { boxes: rois, batchIndex: bi }, { outputSize: 2, samplingRatio: 2, aligned: false, canonicalScale: 224, canonicalLevel: 4, eps: 1e-6 });
    const flat = ops.flatten(g, pooled, 1);
    const fc = ops.relu(g, ops.gemm(g, flat, g.initializer('w', { dtype: 'float32', dims: [3, c * 4], data: rand(3 * c * 4, 9) }), g.initializer('b', { dtype: 'float32', dims: [3], data: rand(3, 10) }), { transB: true }));
    g.output(fc, 'fc', 'float32');
    const feeds = {
      p2: f32([1, c, 16, 16], [...rand(c * 256, 11)]),
      p3: f32([1, c, 8, 8], [...rand(c * 64, 12)]),
      rois: f32([4, 4], [1, 1, 30, 40, 0, 0, 60, 60, 10, 5, 12, 9, 2, 3, 50, 20]),
      bi: i64([4], [0, 0, 0, 0]),
    };
    const out = await both(g, feeds);
    assert.deepEqual(out.passed.fc, out.plain.fc);
    // The reordering Gather now reads the ReLU's output and writes the graph output.
    assert.deepEqual(out.ops.slice(-4), ['Flatten', 'Gemm', 'Relu', 'Gather']);
    assert.notDeepEqual(out.plainOps.slice(-4), out.ops.slice(-4));
  });

  it('leaves gathers with indices of unknown rank alone', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [4, 3]);
    const idx = g.input('idx', 'int64', ['A', 'B']);
    g.output(ops.relu(g, ops.flatten(g, ops.gather(g, x, idx, 0), 1)), 'y', 'float32');
    assert.deepEqual(opTypes(g.toModelProto()), ['Gather', 'Flatten', 'Relu']);
  });
});

describe('shapes-read-early', () => {
  /** x = Relu(a); y = Sigmoid(x) read for values, x read again only for its shape (whole and a slice). */
  function shapeReadLate() {
    const g = new GraphBuilder();
    const a = g.input('a', 'float32', ['N', 3, 4]);
    const x = ops.relu(g, a, 'x');
    const y = ops.sigmoid(g, x, 'y');
    // The late shape reads, as the backward writes them (unbroadcast of an Add, zeros of a feature map's shape).
    g.output(ops.reshape(g, ops.exp(g, y), ops.shape(g, x)), 'full', 'float32');
    g.output(ops.cast(g, ops.shape(g, x, 1, 3), 'float32'), 'tail', 'float32');
    g.output(ops.cast(g, ops.shape(g, x, 1), 'float32'), 'fromOne', 'float32');
    return { g, feeds: { a: f32([2, 3, 4], [...rand(24, 13)]) } };
  }

  interface NodeRecord { readonly op_type: string; readonly input: string[]; readonly output: string[] }
  const nodesOf = (bytes: Uint8Array): NodeRecord[] => (decodeModelProto(bytes).graph as { node: NodeRecord[] }).node;

  it("reads x's shape right after x is made and gives every reader the same values", async () => {
    const { g, feeds } = shapeReadLate();
    const plainBytes = g.toModelProto({ passes: [] });
    const passedBytes = g.toModelProto({ passes: [SHAPES_READ_EARLY] });
    const [plain, passed] = [await runBytes(plainBytes, feeds), await runBytes(passedBytes, feeds)];
    for (const k of ['full', 'tail', 'fromOne']) assert.deepEqual(passed[k], plain[k], k);
    assert.deepEqual([...passed.tail!], [3, 4]);
    assert.deepEqual([...passed.fromOne!], [3, 4]);

    const nodes = nodesOf(passedBytes);
    const relu = nodes.findIndex((n) => n.op_type === 'Relu');
    // Relu → Shape(x) → Reshape(x, shape) (an alias of x), before any other reader of x.
    assert.equal(nodes[relu + 1]!.op_type, 'Shape');
    assert.deepEqual(nodes[relu + 1]!.input, nodes[relu]!.output);
    assert.equal(nodes[relu + 2]!.op_type, 'Reshape');
    assert.deepEqual(nodes[relu + 2]!.input, [nodes[relu]!.output[0], nodes[relu + 1]!.output[0]]);
    const alias = nodes[relu + 2]!.output[0]!;
    const sigmoid = nodes.find((n) => n.op_type === 'Sigmoid')!;
    assert.deepEqual(sigmoid.input, [alias]);
    // x's only readers are now the early Shape and its alias; the late shape reads read the early shape.
    const x = nodes[relu]!.output[0]!;
    assert.deepEqual(nodes.filter((n) => n.input.includes(x)).map((n) => n.op_type), ['Shape', 'Reshape']);
    assert.equal(nodes.filter((n) => n.op_type === 'Shape').length, 1);
    assert.equal(nodes.filter((n) => n.op_type === 'Slice').length, 2);
  });

  it('leaves values read only for their shape, or never for it, alone', () => {
    const g = new GraphBuilder();
    const a = g.input('a', 'float32', [2, 3]);
    const x = ops.relu(g, a, 'x');
    g.output(ops.sigmoid(g, x), 'y', 'float32');
    g.output(ops.shape(g, ops.exp(g, a)), 's', 'int64');
    assert.deepEqual(opTypes(g.toModelProto({ passes: [SHAPES_READ_EARLY] })), ['Relu', 'Sigmoid', 'Exp', 'Shape']);
  });
});

describe('sinks-in-backward-order', () => {
  /** Three MatMul + ReLU layers on parameter inputs, a sum loss and each parameter's gradient as an output. */
  function layerChain() {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [4, 8]);
    const weights = [0, 1, 2].map((i) => g.input(`w${i}`, 'float32', [8, 8]));
    let h = x;
    weights.forEach((w, i) => {
      h = ops.relu(g, g.op('MatMul', [h, w], {}, `layer${i}`), `relu${i}`);
    });
    const loss = g.op('ReduceSum', [h], { keepdims: 0 }, 'loss');
    g.output(loss, 'loss', 'float32', []);
    const grads = buildGradients(g, { loss, wrt: weights });
    // Written in parameter order, as addParameterGradients does: layer0's gradient first.
    weights.forEach((w, i) => g.output(grads.of(w), `grad.w${i}`, 'float32', [8, 8]));
    const feeds: Record<string, HostTensor> = { x: f32([4, 8], [...rand(32, 21)]) };
    weights.forEach((_, i) => (feeds[`w${i}`] = f32([8, 8], [...rand(64, 22 + i)])));
    return { g, feeds };
  }

  /** The kernels onnxruntime ran, in order (one profiled run with its default execution order). */
  async function executedNodes(bytes: Uint8Array, feeds: Record<string, HostTensor>): Promise<string[]> {
    const dir = mkdtempSync(join(tmpdir(), 'rcnn-sink-order-'));
    try {
      const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, enableProfiling: true, profileFilePrefix: join(dir, 'p') });
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor('float32', v.data as Float32Array, [...v.dims]);
      await session.run(ortFeeds);
      session.endProfiling();
      await session.release();
      const events = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]!), 'utf8')) as { cat?: string; name: string }[];
      return events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')).map((e) => e.name.slice(0, -'_kernel_time'.length));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('gives the same values and makes onnxruntime run each weight gradient as soon as its inputs exist', async () => {
    const { g, feeds } = layerChain();
    const plainBytes = g.toModelProto({ passes: [] });
    const passedBytes = g.toModelProto({ passes: [SINKS_IN_BACKWARD_ORDER] });
    const [plain, passed] = [await runBytes(plainBytes, feeds), await runBytes(passedBytes, feeds)];
    for (const k of ['loss', 'grad.w0', 'grad.w1', 'grad.w2']) assert.deepEqual(passed[k], plain[k], k);

    // The last layer's weight gradient is the first the backward can give: it runs before the data
    // gradient reaches layer 0 (the default order runs it last, after the whole data-gradient chain).
    const position = (order: string[], prefix: string): number => order.findIndex((n) => n.startsWith(prefix));
    // `grad/relu0/gx`: the data gradient into layer 0's output; `grad/layer2/gb`: the MatMul of layer 2's weight gradient.
    const firstGradientOfLayer0Input = (order: string[]): number => position(order, 'grad/relu0/gx');
    const lastLayerWeight = (order: string[]): number => position(order, 'grad/layer2/gb');
    const before = await executedNodes(plainBytes, feeds);
    const after = await executedNodes(passedBytes, feeds);
    assert.ok(firstGradientOfLayer0Input(before) >= 0 && lastLayerWeight(before) >= 0, before.join(', '));
    assert.ok(lastLayerWeight(before) > firstGradientOfLayer0Input(before), `as built: ${before.join(', ')}`);
    assert.ok(lastLayerWeight(after) < firstGradientOfLayer0Input(after), `passed: ${after.join(', ')}`);
  });
});
