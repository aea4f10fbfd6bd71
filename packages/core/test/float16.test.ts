import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, decodeModelProto, ops } from '../src/index.js';
import { toFloat16Bits } from '../src/internal/float16.js';
import { f32, run } from './helpers.js';
import ort from 'onnxruntime-node';

/** float16 bits → number, for checking the rounding. */
function fromFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

describe('float16', () => {
  it('rounds float32 to the nearest float16 (ties to even), with subnormals, overflow and NaN', () => {
    assert.equal(toFloat16Bits(1), 0x3c00);
    assert.equal(toFloat16Bits(-2), 0xc000);
    assert.equal(toFloat16Bits(65504), 0x7bff);
    assert.equal(toFloat16Bits(65520), 0x7c00); // rounds up past the largest finite value
    assert.equal(toFloat16Bits(1e6), 0x7c00);
    assert.equal(toFloat16Bits(-Infinity), 0xfc00);
    assert.ok(Number.isNaN(fromFloat16Bits(toFloat16Bits(Number.NaN))));
    assert.equal(toFloat16Bits(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(toFloat16Bits(2 ** -26), 0x0000); // rounds to zero
    assert.equal(toFloat16Bits(1 + 2 ** -11), 0x3c00); // tie → even (down)
    assert.equal(toFloat16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
    // Exhaustive against the nearest representable value on a grid of float32 values.
    for (let i = 0; i < 20000; i++) {
      const v = Math.fround(Math.sinh((i - 10000) / 900));
      const h = toFloat16Bits(v);
      const back = fromFloat16Bits(h);
      const up = fromFloat16Bits(h + (v >= 0 ? 1 : -1) * 1);
      assert.ok(Math.abs(back - v) <= Math.abs(up - v) + 1e-30, `${v} -> ${back}`);
    }
  });

  it('serialises the conv stages in float16 with casts at the boundaries; inputs, outputs and other ops stay float32', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 2, 4, 4]);
    const w = g.initializer('w', f32([3, 2, 3, 3], Array.from({ length: 54 }, (_, i) => Math.sin(i) * 0.5)) as never);
    const b = g.initializer('b', f32([3], [0.1, -0.2, 0.3]) as never);
    const conv = ops.relu(g, ops.conv(g, x, w, b, { kernel: 3, pad: 1 }), 'relu');
    const pooled = ops.maxPool(g, conv, { kernel: 2, stride: 2 });
    // Not a conv stage: stays float32 and reads a cast of the pooled map.
    const summed = ops.reduceSum(g, pooled, [2, 3], false, 'sum');
    g.output(summed, 'sum', 'float32');
    g.output(pooled, 'pooled', 'float32');
    const model = decodeModelProto(g.toModelProto({ float16: true })) as {
      graph: { node: { op_type: string; input: string[]; output: string[] }[]; initializer: { name: string; data_type: number }[] };
    };
    const nodes = model.graph.node;
    assert.deepEqual(nodes.map((n) => n.op_type), ['Cast', 'Conv', 'Relu', 'MaxPool', 'Cast', 'ReduceSum', 'Identity']);
    assert.deepEqual(model.graph.initializer.filter((i) => i.name.startsWith('w') || i.name.startsWith('b')).map((i) => [i.name, i.data_type]), [
      ['w/fp16', 10],
      ['b/fp16', 10],
    ]);
    const feeds = { x: new ort.Tensor('float32', Float32Array.from({ length: 32 }, (_, i) => Math.cos(i)), [1, 2, 4, 4]) };
    const half = await (await ort.InferenceSession.create(g.toModelProto({ float16: true }))).run(feeds);
    const full = await run(g, { x: f32([1, 2, 4, 4], Array.from({ length: 32 }, (_, i) => Math.cos(i))) });
    for (const name of ['sum', 'pooled']) {
      assert.equal(half[name]!.type, 'float32');
      const a = half[name]!.data as Float32Array;
      const r = full[name]!.data as Float32Array;
      a.forEach((v, i) => assert.ok(Math.abs(v - r[i]!) <= 2e-3 * Math.max(1, Math.abs(r[i]!)), `${name}[${i}] ${v} vs ${r[i]}`));
    }
  });
});
