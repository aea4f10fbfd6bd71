import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, GraphError, attr, decodeModelProto, ops } from '../src/index.js';
import { f32, i64, run } from './helpers.js';

describe('GraphBuilder', () => {
  it('serialises a Conv that ORT runs and that matches a hand computation', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 1, 3, 3]);
    // 2x2 kernel [[1,2],[3,4]], bias 0.5, stride 1, no padding: out[i,j] = sum k*x
    const w = g.initializer('w', f32([1, 1, 2, 2], [1, 2, 3, 4]) as never);
    const b = g.initializer('b', f32([1], [0.5]) as never);
    g.output(ops.conv(g, x, w, b, { kernel: 2 }), 'y', 'float32');
    const out = await run(g, { x: f32([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]) });
    // [1*1+2*2+3*4+4*5, 2+6+15+24, 4+10+21+32, 5+12+24+36] + 0.5
    assert.deepEqual(Array.from(out.y!.data as Float32Array), [37.5, 47.5, 67.5, 77.5]);
    assert.deepEqual(out.y!.dims, [1, 1, 2, 2]);
  });

  it('runs RoiAlign (aligned=false, avg) and matches a hand computation', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 1, 4, 4]);
    const rois = g.input('rois', 'float32', ['R', 4]);
    const bi = g.input('bi', 'int64', ['R']);
    g.output(ops.roiAlign(g, x, rois, bi, { outputSize: 1, samplingRatio: 1, spatialScale: 1, aligned: false }), 'y', 'float32');
    // x[h][w] = 4h + w; one bin over [0,2]x[0,2] with 1 sample at its centre (1,1) -> 5;
    // a bin over [1,3]x[0,2] samples (x=2, y=1) -> 6.
    const data = Array.from({ length: 16 }, (_, i) => i);
    const out = await run(g, { x: f32([1, 1, 4, 4], data), rois: f32([2, 4], [0, 0, 2, 2, 1, 0, 3, 2]), bi: i64([2], [0, 0]) });
    assert.deepEqual(Array.from(out.y!.data as Float32Array), [5, 6]);
  });

  it('runs NonMaxSuppression with torchvision semantics (IoU > thresh suppresses; score > threshold kept)', async () => {
    const g = new GraphBuilder();
    const boxes = g.input('boxes', 'float32', [1, 'M', 4]);
    const scores = g.input('scores', 'float32', [1, 1, 'M']);
    const sel = ops.nonMaxSuppression(g, boxes, scores, {
      maxOutputPerClass: g.constInt64([10]),
      iouThreshold: g.constFloat32([0.5]),
      scoreThreshold: g.constFloat32([0.1]),
    });
    g.output(sel, 'sel', 'int64');
    const out = await run(g, {
      // box1 overlaps box0 with IoU 81/119 > 0.5; box3 has IoU exactly 0.5 with box2; box4 score == threshold
      boxes: f32([1, 5, 4], [0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 20, 20, 30, 40, 50, 50, 60, 60]),
      scores: f32([1, 1, 5], [0.9, 0.8, 0.7, 0.6, 0.1]),
    });
    const selected = Array.from(out.sel!.data as BigInt64Array, Number).filter((_, i) => i % 3 === 2);
    assert.deepEqual(selected, [0, 2, 3]);
  });

  it('runs TopK with a dynamic k, including k = 0', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 'M']);
    const k = g.input('k', 'int64', [1]);
    const [v, i] = ops.topK(g, x, k, 1);
    g.output(v, 'v', 'float32');
    g.output(i, 'i', 'int64');
    const out = await run(g, { x: f32([1, 5], [3, 9, 1, 9, 4]), k: i64([1], [3]) });
    assert.deepEqual(Array.from(out.v!.data as Float32Array), [9, 9, 4]);
    assert.deepEqual(Array.from(out.i!.data as BigInt64Array, Number), [1, 3, 4]);
    const empty = await run(g, { x: f32([1, 5], [3, 9, 1, 9, 4]), k: i64([1], [0]) });
    assert.deepEqual(empty.v!.dims, [1, 0]);
  });

  it('scopes names so two replicas never collide', () => {
    const g = new GraphBuilder({ scope: 'gpu_0' });
    const x = g.input('x', 'float32', [1]);
    const a = g.withScope('rpn', () => ops.relu(g, x));
    const b = g.withScope('rpn', () => ops.relu(g, x));
    assert.equal(a.name, 'gpu_0/rpn/relu');
    assert.equal(b.name, 'gpu_0/rpn/relu_1');
    const h = new GraphBuilder({ scope: 'gpu_1' });
    h.input('x', 'float32', [1]);
    const c = h.withScope('rpn', () => ops.relu(h, { name: 'x' }));
    assert.equal(c.name, 'gpu_1/rpn/relu');
  });

  it('rejects wiring mistakes with the blob name', () => {
    const g = new GraphBuilder();
    g.input('x', 'float32', [1]);
    const y = ops.relu(g, { name: 'nope' });
    g.output(y, 'y', 'float32');
    assert.throws(() => g.toModelProto(), (e: unknown) => e instanceof GraphError && /reads "nope"/.test(e.message));
    assert.throws(() => g.input('x', 'float32', [1]), GraphError);
    assert.throws(() => g.op('LeakyRelu', [y], { alpha: 0.1 }), /wrap float attributes with attr.float/);
  });

  it('writes opset 17, IR 8, typed attributes and metadata', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['N']);
    g.output(g.op('LeakyRelu', [x], { alpha: attr.float(0.25) }), 'y', 'float32');
    const model = decodeModelProto(g.toModelProto({ metadata: { k: 'v' } })) as {
      ir_version: number;
      opset_import: { version: number }[];
      metadata_props: { key: string; value: string }[];
      graph: { node: { attribute: { f: number; type: number }[] }[] };
    };
    assert.equal(model.ir_version, 8);
    assert.equal(model.opset_import[0]!.version, 17);
    assert.deepEqual(model.metadata_props, [{ key: 'k', value: 'v' }]);
    assert.equal(model.graph.node[0]!.attribute[0]!.f, 0.25);
    assert.equal(model.graph.node[0]!.attribute[0]!.type, 1);
  });

  it('builds If subgraphs that read outer blobs', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2]);
    const cond = g.input('c', 'bool', []);
    const thenBranch = g.subgraph('then', [], (body) => [{ blob: ops.add(body, x, body.constFloat32(1)), dtype: 'float32' }]);
    const elseBranch = g.subgraph('else', [], (body) => [{ blob: ops.mul(body, x, body.constFloat32(2)), dtype: 'float32' }]);
    g.output(g.op('If', [cond], { then_branch: attr.graph(thenBranch), else_branch: attr.graph(elseBranch) }), 'y', 'float32');
    const t = await run(g, { x: f32([2], [1, 2]), c: { dtype: 'bool', dims: [], data: Uint8Array.of(1) } });
    assert.deepEqual(Array.from(t.y!.data as Float32Array), [2, 3]);
    const e = await run(g, { x: f32([2], [1, 2]), c: { dtype: 'bool', dims: [], data: Uint8Array.of(0) } });
    assert.deepEqual(Array.from(e.y!.data as Float32Array), [2, 4]);
  });

  it('keeps what a nested If body reads from the top graph', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2]);
    const c = g.input('c', 'bool', []);
    const doubled = ops.mul(g, x, g.constFloat32(2), 'doubled'); // read only by the innermost body
    const inner = (body: GraphBuilder): ReturnType<GraphBuilder['subgraph']> => body.subgraph('inner', [], (b) => [{ blob: ops.add(b, doubled, b.constFloat32(1)), dtype: 'float32' }]);
    const outer = g.subgraph('outer', [], (body) => [{ blob: body.op('If', [c], { then_branch: attr.graph(inner(body)), else_branch: attr.graph(inner(body)) }), dtype: 'float32' }]);
    g.output(g.op('If', [c], { then_branch: attr.graph(outer), else_branch: attr.graph(outer) }), 'y', 'float32');
    const out = await run(g, { x: f32([2], [1, 2]), c: { dtype: 'bool', dims: [], data: Uint8Array.of(1) } });
    assert.deepEqual(Array.from(out.y!.data as Float32Array), [3, 5]);
  });

  it('serialises only the nodes and initializers the outputs need (unused taps cost nothing)', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2]);
    const cond = g.input('c', 'bool', []);
    // Read only inside the If's branches: must stay.
    const shift = ops.add(g, x, g.constFloat32(10), 'shift');
    const branch = (name: string): ReturnType<GraphBuilder['subgraph']> => g.subgraph(name, [], (body) => [{ blob: ops.mul(body, shift, body.constFloat32(2)), dtype: 'float32' }]);
    const y = g.op('If', [cond], { then_branch: attr.graph(branch('then')), else_branch: attr.graph(branch('else')) }, 'if');
    // A dead branch with a large weight of its own, and a node that would fail if it ran.
    const big = g.initializer('dead_weight', f32([1000], new Array<number>(1000).fill(1)) as never);
    const dead = ops.add(g, x, big, 'dead_add');
    g.op('Reshape', [dead, g.constInt64([7])], {}, 'dead_reshape');
    g.output(y, 'y', 'float32');
    const bytes = g.toModelProto();
    const model = decodeModelProto(bytes) as { graph: { node: { name: string }[]; initializer: { name: string }[] } };
    const names = model.graph.node.map((n) => n.name);
    assert.ok(names.includes('shift') && names.includes('if'), names.join(', '));
    assert.ok(!names.some((n) => n.startsWith('dead_')), names.join(', '));
    assert.ok(!model.graph.initializer.some((i) => i.name === 'dead_weight'));
    assert.ok(bytes.byteLength < 4000, `${bytes.byteLength} bytes: the dead weight was written`);
    // Every node is still wired and checked, and the listing still has the dead ones.
    assert.equal(g.listNodes().filter((n) => n.name.startsWith('dead_')).length, 2);
    const out = await run(g, { x: f32([2], [1, 2]), c: { dtype: 'bool', dims: [], data: Uint8Array.of(1) } });
    assert.deepEqual(Array.from(out.y!.data as Float32Array), [22, 24]);
  });
});
