import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder } from '@rcnn/core';
import { runModel } from '@rcnn/testing';
import { nearestUpsampleLike } from '../src/index.js';

/** PyTorch's nearest source index: min(floor(f32(o * f32(in / out))), in - 1). */
const pytorchIndex = (o: number, inSize: number, outSize: number): number =>
  Math.min(Math.floor(Math.fround(o * Math.fround(inSize / outSize))), inSize - 1);

describe('nearestUpsampleLike (PyTorch mode="nearest" to an exact size)', () => {
  const g = new GraphBuilder({ name: 'upsample_test' });
  const x = g.input('x', 'float32', [1, 1, 'h', 'w']);
  const like = g.input('like', 'float32', [1, 1, 'H', 'W']);
  g.output(nearestUpsampleLike(g, x, like), 'y', 'float32');
  const model = g.toModelProto();

  // [in h, in w, out h, out w]: 2x, 2x - 1 (odd FPN sizes), equal, downsampling, and sizes where
  // float32 rounding makes PyTorch pick another row than exact arithmetic (6 -> 74, 14 -> 46).
  const cases: [number, number, number, number][] = [
    [4, 5, 8, 10],
    [4, 5, 7, 9],
    [3, 3, 3, 3],
    [14, 13, 2, 7],
    [6, 14, 74, 46],
    [7, 21, 13, 69],
  ];

  it('the sizes include ones where float32 rounding matters (the test can tell the formulas apart)', () => {
    const exactIndex = (o: number, i: number, n: number): number => Math.min(Math.floor((o * i) / n), i - 1);
    assert.notEqual(pytorchIndex(37, 6, 74), exactIndex(37, 6, 74));
    assert.notEqual(pytorchIndex(23, 14, 46), exactIndex(23, 14, 46));
  });

  for (const [h, w, oh, ow] of cases) {
    it(`${h}x${w} -> ${oh}x${ow} picks PyTorch's source pixels`, async () => {
      const data = Float32Array.from({ length: h * w }, (_, i) => i);
      const out = await runModel(model, {
        x: { dtype: 'float32', dims: [1, 1, h, w], data },
        like: { dtype: 'float32', dims: [1, 1, oh, ow], data: new Float32Array(oh * ow) },
      });
      const y = out.get('y')!;
      assert.deepEqual(y.dims, [1, 1, oh, ow]);
      const expected = Float32Array.from({ length: oh * ow }, (_, k) => pytorchIndex(Math.floor(k / ow), h, oh) * w + pytorchIndex(k % ow, w, ow));
      assert.deepEqual(y.data, expected);
    });
  }
});
