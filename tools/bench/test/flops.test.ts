import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GraphBuilder, ops } from '@rcnn/core';
import { readOrtProfile, runKernels } from '@rcnn/runtime';
import ort from 'onnxruntime-node';
import { countFlops, formatMs, median, medianOpTimes, ratio } from '../src/index.js';

describe('stats', () => {
  it('median, ratio and time formatting', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
    assert.ok(Number.isNaN(median([])));
    assert.equal(ratio(1, 4), 0.25);
    assert.ok(Number.isNaN(ratio(1, 0)));
    assert.equal(formatMs(2520), '2.52 s');
    assert.equal(formatMs(36.04), '36.0 ms');
  });
});

describe('FLOP count', () => {
  it('counts Conv, grouped Conv, ConvTranspose, Gemm and MatMul at the shapes of a profiled run', async () => {
    const g = new GraphBuilder({ name: 'flops' });
    const x = g.input('x', 'float32', [2, 4, 6, 8]);
    const w = (name: string, dims: number[]) => g.initializer(name, { dtype: 'float32', dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.01) });
    const c1 = ops.conv(g, x, w('w1', [8, 4, 3, 3]), null, { kernel: 3, pad: 1, name: 'c1' }); // [2,8,6,8]
    const c2 = ops.conv(g, c1, w('w2', [8, 2, 3, 3]), null, { kernel: 3, pad: 1, stride: 2, group: 4, name: 'c2' }); // [2,8,3,4]
    const d = ops.convTranspose(g, c2, w('wd', [8, 5, 2, 2]), null, { kernel: 2, stride: 2, name: 'd' }); // [2,5,6,8]
    const flat = ops.flatten(g, d, 1); // [2,240]
    const fc = ops.gemm(g, flat, w('wf', [7, 240]), null, { transB: true, name: 'fc' }); // [2,7]
    const mm = g.op('MatMul', [ops.unsqueeze(g, fc, [2]), ops.unsqueeze(g, fc, [1])], {}, 'mm'); // [2,7,1]x[2,1,7] → [2,7,7]
    g.output(mm, 'y', 'float32');
    const dir = mkdtempSync(join(tmpdir(), 'flops-test-'));
    try {
      // Serialised as built (no graph passes: the deconv-as-1x1-conv pass would turn the ConvTranspose into a Conv).
      const session = await ort.InferenceSession.create(g.toModelProto({ passes: [] }), { graphOptimizationLevel: 'disabled', enableProfiling: true, profileFilePrefix: join(dir, 'p') });
      await session.run({ x: new ort.Tensor('float32', new Float32Array(2 * 4 * 6 * 8).fill(1), [2, 4, 6, 8]) });
      session.endProfiling();
      await session.release();
      const kernels = runKernels(await readOrtProfile(join(dir, readdirSync(dir)[0]!)), -1);
      const f = countFlops(g, kernels);
      assert.equal(f.conv, 2 * (2 * 8 * 6 * 8 * 4 * 9) + 2 * (2 * 8 * 3 * 4 * 2 * 9));
      assert.equal(f.deconv, 2 * (2 * 8 * 3 * 4) * 5 * 4);
      assert.equal(f.gemm, 2 * 2 * 7 * 240);
      assert.equal(f.matmul, 2 * (2 * 7 * 7) * 1);
      assert.equal(f.total, f.conv + f.deconv + f.gemm + f.matmul);
      assert.equal(f.nodes, 5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('medianOpTimes', () => {
  it('takes each operator\'s median over the last runs and shares of their sum', () => {
    const run = (ts: number, conv: number, roi: number) => [
      { cat: 'Session', name: 'model_run', ts, dur: conv + roi },
      { cat: 'Node', name: 'c_kernel_time', ts, dur: conv, args: { op_name: 'Conv', provider: 'CPUExecutionProvider' } },
      { cat: 'Node', name: 'r_kernel_time', ts: ts + conv, dur: roi, args: { op_name: 'RoiAlign', provider: 'CPUExecutionProvider' } },
    ];
    // The first run (warm-up, slow) is not among the last three.
    const events = [...run(0, 9000, 9000), ...run(20000, 800, 100), ...run(30000, 900, 300), ...run(40000, 1000, 200)];
    const m = medianOpTimes(events, 3);
    assert.deepEqual(m.ops.map((o) => [o.op, o.ms]), [['Conv', 0.9], ['RoiAlign', 0.2]]);
    assert.ok(Math.abs(m.ops[1]!.share - 0.2 / 1.1) < 1e-12);
    assert.equal(m.runMs, 1.2);
  });
});
