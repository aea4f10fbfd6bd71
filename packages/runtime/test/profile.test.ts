import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type KernelEvent, describePlacement, nodePlacement, opTimes, readOrtProfile, runKernels, runMemory } from '../src/index.js';
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
    assert.match(files[0]!, /^toy_r0_.*\.json$/);
    assert.match(files[1]!, /^toy_r1_.*\.json$/);
    const kernels = runKernels(await readOrtProfile(join(dir, files[0]!)), -1);
    assert.ok(kernels.length > 0);
    const ops = opTimes(kernels);
    assert.ok(ops.some((o) => o.op === 'Conv'), ops.map((o) => o.op).join(', '));
    assert.ok(Math.abs(ops.reduce((a, o) => a + o.share, 0) - 1) < 1e-9);
    const placement = nodePlacement(kernels);
    assert.deepEqual(placement.providers.map((p) => p.provider), ['CPUExecutionProvider']);
    assert.equal(placement.cpuNodes.length, kernels.length);
    assert.match(describePlacement(placement), /every node ran on the CPU execution provider/);
    // onnxruntime-node 1.30 records the allocator's use per kernel: a real run has a peak and an arena.
    const memory = runMemory(kernels);
    assert.ok(memory, 'the profile records memory');
    assert.ok(memory.peakInUseBytes > 0 && memory.arenaHeldBytes >= memory.peakInUseBytes, JSON.stringify(memory));
    assert.ok(kernels.some((k) => k.node === memory.peakNode));
  });

  it('reads the peak memory in use, where it was reached and the arena size of a run', () => {
    const ev = (name: string, ts: number, inUse: number | undefined, held: number | undefined) => ({
      cat: 'Node',
      name: `${name}_kernel_time`,
      ts,
      dur: 5,
      args: { op_name: 'Relu', provider: 'CPUExecutionProvider', ...(inUse === undefined ? {} : { mem_bytes_in_use: String(inUse) }), ...(held === undefined ? {} : { mem_arena_held: String(held) }) },
    });
    const run = (events: ReturnType<typeof ev>[]) => runKernels([{ cat: 'Session', name: 'model_run', ts: 0, dur: 100 }, ...events]);
    assert.deepEqual(runMemory(run([ev('a', 1, 100, 1024), ev('b', 10, 700, 2048), ev('c', 20, 300, 2048)])), { peakInUseBytes: 700, peakNode: 'b', arenaHeldBytes: 2048 });
    assert.equal(runMemory(run([ev('a', 1, undefined, undefined)])), undefined);
  });

  it('reports the nodes a GPU session left on the CPU, and the copies', () => {
    const k = (node: string, op: string, provider: string, ms: number): KernelEvent => ({ node, op, provider, ms, selfMs: ms, inputShapes: [], outputShapes: [[2, 3]] });
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

  it('counts a subgraph\'s nodes for themselves, not again in their If / Loop', () => {
    const ev = (name: string, op: string, ts: number, dur: number) => ({ cat: 'Node', name: `${name}_kernel_time`, ts, dur, args: { op_name: op, provider: 'CPUExecutionProvider' } });
    const kernels = runKernels([
      { cat: 'Session', name: 'model_run', ts: 0, dur: 1000 },
      ev('conv', 'Conv', 0, 100),
      ev('loop', 'Loop', 100, 500), // body: two Resize nodes, one nested If holding a Gather
      ev('r1', 'Resize', 110, 100),
      ev('if', 'If', 220, 200),
      ev('g', 'Gather', 230, 150),
      ev('r2', 'Resize', 430, 100),
      ev('tail', 'Concat', 600, 50),
    ]);
    const self = Object.fromEntries(kernels.map((x) => [x.node, x.selfMs * 1000]));
    assert.deepEqual(self, { conv: 100, loop: 100, r1: 100, if: 50, g: 150, r2: 100, tail: 50 });
    const ops = Object.fromEntries(opTimes(kernels).map((o) => [o.op, o.ms * 1000]));
    assert.deepEqual(ops, { Conv: 100, Loop: 100, Resize: 200, If: 50, Gather: 150, Concat: 50 });
  });

  it('names a run that does not exist', () => {
    assert.throws(() => runKernels([{ cat: 'Session', name: 'model_run', ts: 0, dur: 5 }], 3), /has 1 run\(s\); run 3 does not exist/);
    assert.throws(() => runKernels([], -1), /no model_run event/);
  });
});
