import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type KernelEvent, describePlacement, nodePlacement, opTimes, readOrtProfile, runKernels } from '../src/index.js';
import { pattern, tempDir, toyDetector } from './helpers.js';

describe('onnxruntime profiles', () => {
  it('a detector created with `profile` writes one trace per replica on close; it parses into op times and placement', async () => {
    const dir = tempDir('rcnn-profile-');
    const { detector } = await toyDetector({ profile: join(dir, 'toy'), devices: ['cpu', 'cpu'] });
    const image = { data: pattern(64, 48), width: 64, height: 48, maxValue: 255 };
    await detector.predict([image, image, image]);
    await detector.close();
    const files = readdirSync(dir).sort();
    assert.equal(files.length, 2, files.join(', '));
    assert.match(files[0], /^toy_r0_.*\.json$/);
    assert.match(files[1], /^toy_r1_.*\.json$/);
    const kernels = runKernels(await readOrtProfile(join(dir, files[0])), -1);
    assert.ok(kernels.length > 0);
    const ops = opTimes(kernels);
    assert.ok(ops.some((o) => o.op === 'Conv'), ops.map((o) => o.op).join(', '));
    assert.ok(Math.abs(ops.reduce((a, o) => a + o.share, 0) - 1) < 1e-9);
    const placement = nodePlacement(kernels);
    assert.deepEqual(placement.providers.map((p) => p.provider), ['CPUExecutionProvider']);
    assert.equal(placement.cpuNodes.length, kernels.length);
    assert.match(describePlacement(placement), /every node ran on the CPU execution provider/);
  });

  it('reports the nodes a GPU session left on the CPU, and the copies', () => {
    const k = (node: string, op: string, provider: string, ms: number): KernelEvent => ({ node, op, provider, ms, inputShapes: [], outputShapes: [[2, 3]] });
    const placement = nodePlacement([
      k('conv', 'Conv', 'CUDAExecutionProvider', 5),
      k('copy', 'MemcpyToHost', 'CUDAExecutionProvider', 0.5),
      k('nms', 'NonMaxSuppression', 'CPUExecutionProvider', 2),
      k('shape', 'Shape', 'CPUExecutionProvider', 0.01),
    ]);
    assert.deepEqual(placement.providers.map((p) => [p.provider, p.nodes]), [['CUDAExecutionProvider', 2], ['CPUExecutionProvider', 2]]);
    assert.deepEqual(placement.cpuNodes.map((c) => c.op), ['NonMaxSuppression', 'Shape']);
    assert.deepEqual(placement.copies.map((c) => [c.op, c.shape]), [['MemcpyToHost', [2, 3]]]);
    const text = describePlacement(placement);
    assert.match(text, /NonMaxSuppression +1 node\(s\)/);
    assert.match(text, /device copies: 1/);
  });

  it('names a run that does not exist', () => {
    assert.throws(() => runKernels([{ cat: 'Session', name: 'model_run', ts: 0, dur: 5 }], 3), /has 1 run\(s\); run 3 does not exist/);
    assert.throws(() => runKernels([], -1), /no model_run event/);
  });
});
