/**
 * Graph passes at serialisation: each rewrite gives the values of the graph as built (run with
 * `passes: []`) and the operators it promises; patterns that do not match are left alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { GraphBuilder, type HostTensor, decodeModelProto, multiScaleRoiAlign, ops } from '../src/index.js';
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
