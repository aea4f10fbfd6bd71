import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, WeightStore, buildFeaturesNet, loadConfig } from '@rcnn/core';
import { runModel } from '@rcnn/testing';
import { nearestUpsample2x, nearestUpsampleLike } from '../src/index.js';
import { fpnContainer } from './helpers.js';

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

describe('nearestUpsample2x (levels known to be exactly 2x apart)', () => {
  it('picks PyTorch source pixels o >> 1 for even and odd input sizes', async () => {
    const g = new GraphBuilder({ name: 'upsample2x_test' });
    const x = g.input('x', 'float32', [1, 2, 'h', 'w']);
    g.output(nearestUpsample2x(g, x), 'y', 'float32');
    const model = g.toModelProto();
    for (const [h, w] of [
      [4, 5],
      [13, 17],
    ] as const) {
      const data = Float32Array.from({ length: 2 * h * w }, (_, i) => i);
      const y = (await runModel(model, { x: { dtype: 'float32', dims: [1, 2, h, w], data } })).get('y')!;
      assert.deepEqual(y.dims, [1, 2, 2 * h, 2 * w]);
      const [oh, ow] = [2 * h, 2 * w];
      const expected = Float32Array.from({ length: 2 * oh * ow }, (_, k) => {
        const c = Math.floor(k / (oh * ow));
        const p = k % (oh * ow);
        return c * h * w + pytorchIndex(Math.floor(p / ow), h, oh) * w + pytorchIndex(p % ow, w, ow);
      });
      assert.deepEqual(y.data, expected, `${h}x${w}`);
    }
  });

  it('the FPN uses it only when INPUT.SIZE_DIVISIBILITY makes every level exactly 2x the next', () => {
    const container = fpnContainer();
    const ops = (divisibility: number): string[] => {
      const config = loadConfig({ layers: [{ MODEL: { CONV_BODY: 'FPN.add_fpn_ResNet_custom_conv5_body' }, RESNETS: { STAGE_PLANES: [4, 8, 16, 32], STAGE_BLOCKS: [1, 1, 1, 1], STEM_OUT_CHANNELS: 8 }, FPN: { DIM: 8 }, INPUT: { SIZE_DIVISIBILITY: divisibility } }] });
      return buildFeaturesNet(config, container, WeightStore.random(1)).graph.listNodes().map((n) => n.opType);
    };
    for (const d of [32, 64]) {
      assert.equal(ops(d).filter((o) => o === 'If').length, 0, `divisibility ${d}`);
      assert.equal(ops(d).filter((o) => o === 'Resize').length, 3, `divisibility ${d}`);
    }
    for (const d of [0, 16]) assert.equal(ops(d).filter((o) => o === 'If').length, 3, `divisibility ${d}`);
  });
});
