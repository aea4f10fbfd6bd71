import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HostTensor, WeightStore, loadConfig } from '@rcnn/core';
import { compareDense, createTestContext, runModel } from '@rcnn/testing';
import { convLevels, maxPoolLevel } from '../src/index.js';

/** 3x3 stride-2 pad-1 conv of x [C,H,W] in float64 (the definition, for reference). */
function conv3x3s2(x: Float64Array, c: number, h: number, w: number, weight: Float32Array, bias: Float32Array, out: number): { data: Float64Array; h: number; w: number } {
  const [oh, ow] = [Math.floor((h - 1) / 2) + 1, Math.floor((w - 1) / 2) + 1];
  const y = new Float64Array(out * oh * ow);
  for (let o = 0; o < out; o++)
    for (let yy = 0; yy < oh; yy++)
      for (let xx = 0; xx < ow; xx++) {
        let acc = bias[o]!;
        for (let i = 0; i < c; i++)
          for (let ky = 0; ky < 3; ky++)
            for (let kx = 0; kx < 3; kx++) {
              const [iy, ix] = [2 * yy - 1 + ky, 2 * xx - 1 + kx];
              if (iy >= 0 && iy < h && ix >= 0 && ix < w) acc += x[(i * h + iy) * w + ix]! * weight[((o * c + i) * 3 + ky) * 3 + kx]!;
            }
        y[(o * oh + yy) * ow + xx] = acc;
      }
  return { data: y, h: oh, w: ow };
}

const values = (n: number, seed: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);

describe('extra pyramid levels', () => {
  const [c, h, w, dim] = [4, 7, 9, 3];
  const c5 = values(c * h * w, 1);
  const tensors = new Map<string, HostTensor>([
    ['backbone.fpn.extra_blocks.p6.weight', { dtype: 'float32', dims: [dim, c, 3, 3], data: values(dim * c * 9, 2) }],
    ['backbone.fpn.extra_blocks.p6.bias', { dtype: 'float32', dims: [dim], data: values(dim, 3) }],
    ['backbone.fpn.extra_blocks.p7.weight', { dtype: 'float32', dims: [dim, dim, 3, 3], data: values(dim * dim * 9, 4) }],
    ['backbone.fpn.extra_blocks.p7.bias', { dtype: 'float32', dims: [dim], data: values(dim, 5) }],
  ]);

  it("Detectron's conv levels: P6 = conv3x3/2(C5), P7 = conv3x3/2(ReLU(P6))", async () => {
    const weights = WeightStore.fromTensors(tensors, 'extra');
    const ctx = createTestContext(loadConfig(), { weights });
    const input = ctx.graph.input('c5', 'float32', [1, c, h, w]);
    const levels = convLevels(ctx, { name: '3', blob: input, channels: c, spatialScale: 1 / 32, level: 5 }, 6, 7, dim);
    assert.deepEqual(levels.map((l) => [l.name, l.level, l.spatialScale, l.channels]), [['p6', 6, 1 / 64, dim], ['p7', 7, 1 / 128, dim]]);
    assert.deepEqual(weights.unusedKeys(), []);
    levels.forEach((l) => ctx.graph.output(l.blob, l.name, 'float32'));
    const zeros: HostTensor<'int64'> = { dtype: 'int64', dims: [1, 2], data: new BigInt64Array(2) };
    const noImage: HostTensor<'float32'> = { dtype: 'float32', dims: [1, 3, 1, 1], data: new Float32Array(3) };
    const out = await runModel(ctx.graph.toModelProto(), { c5: { dtype: 'float32', dims: [1, c, h, w], data: c5 }, images: noImage, image_sizes: zeros, original_sizes: zeros });
    const get = (k: string): Float32Array => tensors.get(k)!.data as Float32Array;
    const p6 = conv3x3s2(Float64Array.from(c5), c, h, w, get('backbone.fpn.extra_blocks.p6.weight'), get('backbone.fpn.extra_blocks.p6.bias'), dim);
    const p7 = conv3x3s2(p6.data.map((v) => Math.max(0, v)), dim, p6.h, p6.w, get('backbone.fpn.extra_blocks.p7.weight'), get('backbone.fpn.extra_blocks.p7.bias'), dim);
    for (const [name, ref] of [['p6', p6], ['p7', p7]] as const) {
      const verdict = compareDense(name, out.get(name)!, { dtype: 'float32', dims: [1, dim, ref.h, ref.w], data: Float32Array.from(ref.data) });
      assert.ok(verdict.pass, `${name}: ${verdict.detail}`);
    }
  });

  it('LastLevelMaxPool: P6 = every other pixel of P5, named "pool"', async () => {
    const ctx = createTestContext(loadConfig());
    const p5 = ctx.graph.input('p5', 'float32', [1, 1, 3, 5]);
    const level = maxPoolLevel(ctx, { name: '3', blob: p5, channels: 1, spatialScale: 1 / 32, level: 5 }, 6);
    assert.deepEqual([level.name, level.level, level.spatialScale], ['pool', 6, 1 / 64]);
    ctx.graph.output(level.blob, 'pool', 'float32');
    const zeros: HostTensor<'int64'> = { dtype: 'int64', dims: [1, 2], data: new BigInt64Array(2) };
    const out = await runModel(ctx.graph.toModelProto(), {
      p5: { dtype: 'float32', dims: [1, 1, 3, 5], data: Float32Array.from({ length: 15 }, (_, i) => i) },
      images: { dtype: 'float32', dims: [1, 3, 1, 1], data: new Float32Array(3) },
      image_sizes: zeros,
      original_sizes: zeros,
    });
    assert.deepEqual(out.get('pool')!.dims, [1, 1, 2, 3]);
    assert.deepEqual([...(out.get('pool')!.data as Float32Array)], [0, 2, 4, 10, 12, 14]);
  });
});
