import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, InputError, decodeModelProto, ops, readModelMetadata } from '../src/index.js';

describe('readModelMetadata', () => {
  it('reads metadata_props past a graph with initializers, as protobufjs decodes them', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['N', 300]);
    g.output(ops.add(g, x, g.constFloat32(Array.from({ length: 300 }, (_, i) => i))), 'y', 'float32', ['N', 300]);
    const metadata = { 'rcnn.config': JSON.stringify({ MODEL: { NUM_CLASSES: 91 }, text: 'é ✓' }), 'rcnn.kind': 'detections', empty: '' };
    const bytes = g.toModelProto({ metadata, docString: 'x'.repeat(200) });
    const read = readModelMetadata(bytes);
    assert.deepEqual(Object.fromEntries(read), metadata);
    const decoded = decodeModelProto(bytes) as { metadata_props: { key: string; value: string }[] };
    assert.deepEqual(Object.fromEntries(decoded.metadata_props.map((m) => [m.key, m.value])), metadata);
  });

  it('rejects bytes that are not a protobuf message with an InputError', () => {
    assert.throws(() => readModelMetadata(Uint8Array.of(0x0a, 0xff)), InputError);
    assert.throws(() => readModelMetadata(Uint8Array.of(0x0f)), InputError);
  });
});
