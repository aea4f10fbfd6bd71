import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, attr, decodeModelProto, ops } from '../src/index.js';
import { encodeMessage } from '../src/internal/onnx-encode.js';
import { onnxRoot } from '../src/onnx/proto.js';
import { f32 } from './helpers.js';

const modelType = () => onnxRoot().lookupType('onnx.ModelProto');
/** protobufjs's own encoding, the reference. */
const reference = (model: Record<string, unknown>): Uint8Array => modelType().encode(modelType().fromObject(model)).finish();

describe('protobuf encoder', () => {
  it('writes the bytes protobufjs writes for every field kind the builder uses', () => {
    const g = new GraphBuilder({ name: 'gräph' });
    const x = g.input('x', 'float32', ['N', 3, 2 ** 40, 7]);
    const w = g.initializer('w', f32([2, 3, 1, 1], [1, -2, 3.5, 4e-7, -5e30, 6]) as never);
    const y = ops.conv(g, x, w, null, { kernel: 1 });
    const z = g.op('Custom', [y], { axis: -1, big: -(2 ** 40), ints: [-3, 0, 2 ** 33], f: attr.float(-0.1), fs: attr.floats([1.5, -2, 1e-30]), s: 'ünïcode 𝄞', ss: attr.strings(['a', '', 'b']), t: attr.tensor({ dtype: 'int64', dims: [2], data: BigInt64Array.of(-1n, 2n ** 62n) }) });
    const branch = g.subgraph('b', [], (body) => [{ blob: ops.relu(body, z), dtype: 'float32' }]);
    g.output(g.op('If', [g.constant({ dtype: 'bool', dims: [], data: Uint8Array.of(1) })], { then_branch: attr.graph(branch), else_branch: attr.graph(branch) }), 'out', 'float32', ['N', 'C']);
    const model = { ir_version: 8, opset_import: [{ domain: '', version: 17 }], producer_name: 'p', doc_string: '', graph: g['graphProto'](false), metadata_props: [{ key: 'k', value: 'v ✓' }] };
    const fast = encodeMessage(modelType(), model);
    assert.deepEqual(Buffer.from(fast), Buffer.from(reference(model)));
  });

  it('toModelProto round-trips through the decoder', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [2]);
    g.output(ops.add(g, x, g.constFloat32([1, 2])), 'y', 'float32');
    const decoded = decodeModelProto(g.toModelProto({ metadata: { a: 'b' } })) as { graph: { initializer: { raw_data: Uint8Array }[] }; metadata_props: unknown[] };
    assert.deepEqual(Array.from(new Float32Array(decoded.graph.initializer[0]!.raw_data.slice().buffer)), [1, 2]);
    assert.deepEqual(decoded.metadata_props, [{ key: 'a', value: 'b' }]);
  });
});
