import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder } from '@rcnn/core';
import { DeviceError, OrtSession, discoverGpus, resolveDevices } from '../src/index.js';
import { defaultThreads } from '../src/threads.js';
import { parseNvidiaSmiList } from '../src/devices.js';
import { encode, pattern, toyDetector } from './helpers.js';

const SMI = `GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1111)
  MIG 1g.10gb     Device  0: (UUID: MIG-aaaa)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-2222)
`;

describe('devices', () => {
  it('parses nvidia-smi -L (MIG lines ignored)', () => {
    assert.deepEqual(parseNvidiaSmiList(SMI), [
      { index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-1111' },
      { index: 1, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-2222' },
    ]);
    assert.deepEqual(parseNvidiaSmiList(''), []);
  });

  it('finds no GPU when nvidia-smi fails', () => {
    assert.deepEqual(
      discoverGpus({
        run: () => {
          throw new Error('nvidia-smi: not found');
        },
      }),
      [],
    );
  });

  it('expands cuda:all, names CPU replicas, rejects unknown and missing devices', () => {
    const gpus = parseNvidiaSmiList(SMI);
    assert.deepEqual(resolveDevices('cuda:all', { gpus }).devices.map((d) => d.name), ['cuda:0', 'cuda:1']);
    assert.deepEqual(resolveDevices(['cpu', 'cpu,cuda:1'], { gpus }).devices.map((d) => d.name), ['cpu:0', 'cpu:1', 'cuda:1']);
    assert.deepEqual(resolveDevices('cpu', { gpus }).devices, [{ kind: 'cpu', id: 0, name: 'cpu' }]);
    assert.equal(resolveDevices('cuda:all', { gpus: [] }).noGpuForAll, true);
    assert.throws(() => resolveDevices('tpu:0', { gpus }), (e: unknown) => e instanceof DeviceError && /unknown device "tpu:0"/.test(e.message) && /cuda:all/.test(e.hint!));
    assert.throws(() => resolveDevices('cuda:7', { gpus }), (e: unknown) => e instanceof DeviceError && /cuda:7 does not exist; GPUs found: cuda:0/.test(e.message));
    assert.throws(() => resolveDevices('cuda:0,cuda:0', { gpus }), DeviceError);
    // Without nvidia-smi the GPU ordinal cannot be checked here: onnxruntime decides.
    assert.deepEqual(resolveDevices('cuda:3', { gpus: [] }).devices.map((d) => d.name), ['cuda:3']);
  });

  it('splits the cores between CPU replicas', () => {
    const { devices } = resolveDevices('cpu,cpu,cpu', { gpus: [] });
    assert.deepEqual(defaultThreads(devices, {}, 8).map((t) => t.intraOp), [2, 2, 2]);
    assert.deepEqual(defaultThreads(devices.slice(0, 1), {}, 8).map((t) => t.intraOp), [8]);
    assert.deepEqual(defaultThreads(devices, { intraOp: 1 }, 8).map((t) => t.intraOp), [1, 1, 1]);
    assert.deepEqual(defaultThreads(devices, {}, 2).map((t) => t.intraOp), [1, 1, 1]);
  });
});

describe('CUDA unavailable (onnxruntime-node installed without its CUDA providers)', () => {
  const model = (): Uint8Array => {
    const g = new GraphBuilder();
    g.output(g.op('Relu', [g.input('x', 'float32', [2])]), 'y', 'float32');
    return g.toModelProto();
  };

  it('a session asked for CUDA falls back to CPU and says why', async () => {
    const s = await OrtSession.open(model(), { device: { kind: 'cuda', id: 0, name: 'cuda:0' }, threads: { intraOp: 1, interOp: 1 }, logLevel: 'fatal' });
    try {
      assert.equal(s.provider, 'cpu');
      assert.match(s.fallbackReason ?? '', /cuda/i);
      const { outputs } = await s.run({ x: { dtype: 'float32', dims: [2], data: Float32Array.of(-1, 2) } });
      assert.deepEqual(Array.from(outputs.get('y')!.data as Float32Array), [0, 2]);
    } finally {
      await s.release();
    }
  });

  it('a detector on two GPUs falls back to CPU with exactly one warning naming both devices and the reason', async () => {
    const { detector, warnings } = await toyDetector({ devices: 'cuda:0,cuda:1', logLevel: 'fatal' });
    try {
      const cuda = warnings.filter((w) => /CUDA/.test(w));
      assert.equal(cuda.length, 1, `one CUDA warning, got: ${JSON.stringify(warnings)}`);
      assert.match(cuda[0]!, /cuda:0, cuda:1/);
      assert.match(cuda[0]!, /Failed to load|cuda/i);
      assert.match(cuda[0]!, /Enabling CUDA/);
      assert.deepEqual(detector.replicas.map((r) => [r.device, r.provider]), [
        ['cuda:0', 'cpu'],
        ['cuda:1', 'cpu'],
      ]);
      const r = await detector.predictOne(await encode(pattern(40, 40), 40, 40, 'png'));
      assert.equal(r.provider, 'cpu');
    } finally {
      await detector.close();
    }
  });

  it('strict mode fails with a DeviceError instead of falling back', async () => {
    await assert.rejects(
      toyDetector({ devices: 'cuda:0', strict: true, logLevel: 'fatal' }),
      (e: unknown) => e instanceof DeviceError && /strict/.test(e.message) && /cuda:0/.test(e.message) && /Enabling CUDA/.test(e.hint ?? ''),
    );
  });

  it('cuda:all without a GPU falls back to one CPU replica (one warning), or fails when strict', async () => {
    // CUDA_VISIBLE_DEVICES="" hides every GPU, as it does for CUDA itself, so this holds on any machine.
    const saved = process.env.CUDA_VISIBLE_DEVICES;
    process.env.CUDA_VISIBLE_DEVICES = '';
    assert.deepEqual(discoverGpus({ refresh: true }), []);
    const { detector, warnings } = await toyDetector({ devices: 'cuda:all' });
    if (saved === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
    else process.env.CUDA_VISIBLE_DEVICES = saved;
    try {
      assert.deepEqual(detector.replicas.map((r) => r.device), ['cpu']);
      assert.equal(warnings.filter((w) => /CUDA|GPU/.test(w)).length, 1);
    } finally {
      await detector.close();
    }
    await assert.rejects(toyDetector({ devices: 'cuda:all', strict: true }), DeviceError);
  });
});
