import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, GraphError, attr, decodeModelProto, ops } from '../src/index.js';

type Shape = { dim: { dim_value?: number | { low: number }; dim_param?: string }[] } | undefined;
type ValueInfo = { name: string; type: { tensor_type: { elem_type: number; shape?: Shape } } };
type Graph = { output: ValueInfo[]; node: { attribute: { g?: Graph }[] }[] };

const dims = (v: ValueInfo): (number | string)[] | undefined =>
  v.type.tensor_type.shape?.dim.map((d) => d.dim_param ?? Number(typeof d.dim_value === 'object' ? d.dim_value.low : (d.dim_value ?? 0)));

describe('declared shapes', () => {
  it('writes every declared shape, a scalar as an empty dim list, into graph and If-body outputs', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['N', 4]);
    const c = g.input('c', 'bool', []);
    const body = g.subgraph('b', [], (b) => [{ blob: ops.relu(b, x), dtype: 'float32', dims: ['N', 4] }]);
    g.output(g.op('If', [c], { then_branch: attr.graph(body), else_branch: attr.graph(body) }), 'y', 'float32', ['N', 4]);
    g.output(g.op('ReduceSum', [x], { keepdims: 0 }), 's', 'float32', []);
    const model = decodeModelProto(g.toModelProto({ requireShapes: true })) as { graph: Graph };
    assert.deepEqual(model.graph.output.map((o) => [o.name, dims(o)]), [['y', ['N', 4]], ['s', []]]);
    const ifBody = model.graph.node.find((n) => n.attribute.some((a) => a.g))!.attribute[0]!.g!;
    assert.deepEqual(dims(ifBody.output[0]!), ['N', 4]);
  });

  it('refuses, with requireShapes, an output or an If-body output declared without a shape', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['N']);
    g.output(ops.relu(g, x), 'y', 'float32');
    assert.throws(() => g.toModelProto({ requireShapes: true }), (e: unknown) => e instanceof GraphError && /without a shape: y;/.test(e.message));
    assert.ok(g.toModelProto().byteLength > 0, 'ad-hoc graphs may leave shapes out');

    const h = new GraphBuilder();
    const hx = h.input('x', 'float32', ['N']);
    const c = h.input('c', 'bool', []);
    const body = h.subgraph('b', [], (b) => [{ blob: ops.relu(b, hx), dtype: 'float32' }]);
    h.output(h.op('If', [c], { then_branch: attr.graph(body), else_branch: attr.graph(body) }), 'y', 'float32', ['N']);
    assert.throws(() => h.toModelProto({ requireShapes: true }), /without a shape: b:out0;/);
  });

  it('ignores bodies of nodes no output needs (they are not serialised)', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['N']);
    const c = g.input('c', 'bool', []);
    const body = g.subgraph('dead', [], (b) => [{ blob: ops.relu(b, x), dtype: 'float32' }]);
    g.op('If', [c], { then_branch: attr.graph(body), else_branch: attr.graph(body) }, 'dead_if');
    g.output(ops.relu(g, x), 'y', 'float32', ['N']);
    assert.ok(g.toModelProto({ requireShapes: true }).byteLength > 0);
  });

  it('rejects dims that are not sizes or names', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['N']);
    assert.throws(() => g.output(x, 'a', 'float32', [-1]), GraphError);
    assert.throws(() => g.output(x, 'b', 'float32', [1.5]), GraphError);
    assert.throws(() => g.output(x, 'c', 'float32', ['']), GraphError);
  });
});
