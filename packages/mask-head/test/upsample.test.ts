import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder, ops } from '@rcnn/core';
import { runModel } from '@rcnn/testing';
import { depthToSpace, upsampleAsConv } from '../src/index.js';

describe('upsampleAsConv (ConvTranspose with kernel = stride as 1x1 conv + DepthToSpace)', () => {
  for (const r of [2, 3]) {
    it(`equals ONNX ConvTranspose (kernel = stride = ${r})`, async () => {
      const [n, cin, cout, h, w] = [2, 5, 3, 4, 6];
      const rand = (k: number, seed: number): Float32Array => Float32Array.from({ length: k }, (_, i) => Math.sin(seed + i * 1.37) * 0.8);
      const weight = rand(cin * cout * r * r, 1);
      const bias = rand(cout, 2);
      const g = new GraphBuilder();
      const x = g.input('x', 'float32', [n, cin, h, w]);
      const wb = g.initializer('w', { dtype: 'float32', dims: [cin, cout, r, r], data: weight });
      const bb = g.initializer('b', { dtype: 'float32', dims: [cout], data: bias });
      g.output(ops.convTranspose(g, x, wb, bb, { kernel: r, stride: r }), 'reference', 'float32');
      g.output(depthToSpace(g, upsampleAsConv(g, x, weight, bias, cin, cout, r), r), 'as_conv', 'float32');
      const out = await runModel(g.toModelProto(), { x: { dtype: 'float32', dims: [n, cin, h, w], data: rand(n * cin * h * w, 3) } });
      const a = out.get('as_conv')!;
      const b = out.get('reference')!;
      assert.deepEqual(a.dims, [n, cout, h * r, w * r]);
      assert.deepEqual(a.dims, b.dims);
      const worst = (a.data as Float32Array).reduce((m, v, i) => Math.max(m, Math.abs(v - (b.data as Float32Array)[i])), 0);
      assert.ok(worst < 1e-6, `max |diff| ${worst}`);
    });
  }
});
