import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { GraphBuilder, type HostTensor, WeightStore, loadConfig, readSafetensorsFile, writeSafetensors } from '@rcnn/core';
import { OrtSession, resolveModelSources } from '../src/index.js';
import { register as registerToy, toyConfig } from '../src/toy/index.js';
import {
  CHECKPOINT_METADATA,
  LAST_CHECKPOINT_FILE,
  METRICS_FILE,
  type TinySample,
  TrainingError,
  buildTinyNetGraph,
  copyParameters,
  type TrainResult,
  parseMetrics,
  readCheckpoint,
  runWithLentParameters,
  tinyNetModel,
  tinyNetParameters,
  tinyShapesData,
  train,
  trainingGraphSpec,
  trainingReportHtml,
} from '../src/training/index.js';

const dirs: string[] = [];
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'rcnn-train-'));
  dirs.push(d);
  return d;
};
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const SOLVER = ['SOLVER.BASE_LR=0.2', 'SOLVER.WARM_UP_ITERS=3', 'SOLVER.MOMENTUM=0.9', 'SOLVER.WEIGHT_DECAY=0.0001'];
const solver = (...set: string[]) => loadConfig({ set: [...SOLVER, ...set] }).SOLVER;
const THREADS = { intraOp: 1 };
const quiet = (): void => undefined;

/** The tiny net's forward and total loss in float64 on the host (the finite-difference reference). */
function referenceLoss(params: ReadonlyMap<string, Float64Array>, samples: readonly TinySample[], c = 3, s = 12, k = 8, n = 3): number {
  const w = params.get('conv.weight')!;
  const b = params.get('conv.bias')!;
  let total = 0;
  for (const sample of samples) {
    const f = new Float64Array(k);
    for (let o = 0; o < k; o++) {
      let sum = 0;
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < s; x++) {
          let a = b[o]!;
          for (let ch = 0; ch < c; ch++) {
            for (let i = 0; i < 3; i++) {
              for (let j = 0; j < 3; j++) {
                const yy = y + i - 1;
                const xx = x + j - 1;
                if (yy < 0 || yy >= s || xx < 0 || xx >= s) continue;
                a += w[((o * c + ch) * 3 + i) * 3 + j]! * sample.image[ch * s * s + yy * s + xx]!;
              }
            }
          }
          sum += Math.max(0, a);
        }
      }
      f[o] = sum / (s * s);
    }
    const linear = (name: string, rows: number): number[] =>
      Array.from({ length: rows }, (_, r) => params.get(`${name}.bias`)![r]! + f.reduce((acc, v, j) => acc + v * params.get(`${name}.weight`)![r * k + j]!, 0));
    const logits = linear('cls', n);
    const m = Math.max(...logits);
    const lse = m + Math.log(logits.reduce((a, v) => a + Math.exp(v - m), 0));
    total += lse - logits[sample.label]!;
    const pred = linear('reg', 2);
    total += 0.5 * ((pred[0]! - sample.centre[0]) ** 2 + (pred[1]! - sample.centre[1]) ** 2);
  }
  return total / samples.length;
}

const ordinal = (r: TrainResult): number[] => r.records.map((x) => x.totalLoss);

describe('runWithLentParameters: parameters lent to a session, not copied', () => {
  const model = (): Uint8Array => {
    const g = new GraphBuilder();
    g.output(g.op('Mul', [g.input('x', 'float32', [2]), g.input('w', 'float32', [2])]), 'y', 'float32');
    return g.toModelProto();
  };
  const cpuDevice = { kind: 'cpu', id: 0, name: 'cpu' } as const;
  const parameters = [{ name: 'head.w', input: 'w', dims: [2] }];

  it('feeds the map\'s own buffer and puts it back with its values after the run', async () => {
    const s = await OrtSession.open(model(), { device: cpuDevice, threads: { intraOp: 1, interOp: 1 } });
    try {
      const w = Float32Array.of(3, -2);
      const values = new Map([['head.w', w]]);
      const run = await runWithLentParameters(s, { x: { dtype: 'float32', dims: [2], data: Float32Array.of(2, 5) } }, parameters, values, ['y'], { iteration: 0, device: 'cpu' });
      assert.deepEqual(Array.from(run.outputs.get('y')!.data as Float32Array), [6, -10]);
      // Moved, not copied: the original array was detached while the worker had its buffer.
      assert.equal(w.length, 0, 'the original array was moved to the worker');
      assert.deepEqual(Array.from(values.get('head.w')!), [3, -2]);
    } finally {
      await s.release();
    }
  });

  it('puts the buffers back when the run fails, and rethrows the run\'s error', async () => {
    const s = await OrtSession.open(model(), { device: cpuDevice, threads: { intraOp: 1, interOp: 1 }, logLevel: 'fatal' });
    try {
      const values = new Map([['head.w', Float32Array.of(1, 4)]]);
      // x of the wrong length: onnxruntime refuses the run in the worker.
      const bad = { x: { dtype: 'float32', dims: [3], data: Float32Array.of(1, 2, 3) } } as const;
      await assert.rejects(runWithLentParameters(s, { ...bad }, parameters, values, ['y'], { iteration: 3, device: 'cpu' }), (e: Error) => e.name !== 'TrainingError');
      assert.deepEqual(Array.from(values.get('head.w')!), [1, 4]);
    } finally {
      await s.release();
    }
  });

  it('a run refused before anything moved (released session) keeps the parameters', async () => {
    const s = await OrtSession.open(model(), { device: cpuDevice, threads: { intraOp: 1, interOp: 1 } });
    await s.release();
    const values = new Map([['head.w', Float32Array.of(1, 4)]]);
    await assert.rejects(runWithLentParameters(s, { x: { dtype: 'float32', dims: [2], data: Float32Array.of(1, 1) } }, parameters, values, ['y'], { iteration: 0, device: 'cpu' }), /released/);
    assert.deepEqual(Array.from(values.get('head.w')!), [1, 4]);
  });

  it('says the parameters are lost when the worker dies with them', async () => {
    const s = await OrtSession.open(model(), { device: cpuDevice, threads: { intraOp: 1, interOp: 1 } });
    try {
      const values = new Map([['head.w', Float32Array.of(1, 4)]]);
      // A crash of the worker thread while it holds the buffers, simulated: the worker is being ended
      // from outside when the run (and its buffers) is posted to it, so no reply can come.
      const killed = (s as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      const running = runWithLentParameters(s, { x: { dtype: 'float32', dims: [2], data: Float32Array.of(1, 1) } }, parameters, values, ['y'], { iteration: 5, device: 'cpu' });
      await killed;
      await assert.rejects(running, (e: Error) => e.name === 'TrainingError' && /1 parameter buffer\(s\) lent to the session did not come back \(e\.g\. "head\.w"\)/.test(e.message));
    } finally {
      await s.release();
    }
  });
});

describe('training step: the tiny net graph', () => {
  it('computes gradients that match central finite differences of a float64 host re-computation', async (t) => {
    const model = tinyNetModel({ seed: 3 });
    const data = tinyShapesData(4);
    const samples = await Promise.all([0, 1, 2, 3].map((i) => data.load(i, () => 0.9)));
    const graph = buildTinyNetGraph();
    const session = await OrtSession.open(graph.model, { device: { kind: 'cpu', id: 0, name: 'cpu' }, threads: { intraOp: 1, interOp: 1 } });
    const spec = trainingGraphSpec(session.inputs, session.outputs);
    await session.release();
    assert.deepEqual(spec.parameters.map((p) => p.name), tinyNetParameters().map((p) => p.name));
    assert.deepEqual([...spec.losses].sort(), ['loss.cls', 'loss.reg']);
    const replica = await model.openReplica({ device: { kind: 'cpu', id: 0, name: 'cpu' }, threads: { intraOp: 1, interOp: 1 } });
    try {
      const lent = copyParameters(model.initial);
      const run = await replica.step(samples, lent, { iteration: 0, replica: 0, replicas: 1, seed: 0 });
      // The step lends the map's buffers to its session and puts them back: same values, none detached.
      for (const [name, v] of model.initial) assert.deepEqual(lent.get(name), v, `parameter ${name} after the step`);
      // It says how long its onnxruntime run took (the rest of a step is host work).
      assert.ok(run.sessionMs !== undefined && Number.isFinite(run.sessionMs) && run.sessionMs > 0, `sessionMs ${run.sessionMs}`);
      const p64 = new Map([...model.initial].map(([k, v]) => [k, Float64Array.from(v)]));
      const lossOrt = run.losses['loss.cls']! + run.losses['loss.reg']!;
      assert.ok(Math.abs(lossOrt - referenceLoss(p64, samples)) < 1e-5, `loss ${lossOrt} vs ${referenceLoss(p64, samples)}`);
      const h = 1e-5;
      let worst = 0;
      for (const p of model.parameters) {
        const grad = run.gradients.get(p.name)!;
        const values = p64.get(p.name)!;
        const scale = Math.max(1e-3, ...Array.from(grad, Math.abs));
        for (let i = 0; i < values.length; i++) {
          const keep = values[i]!;
          values[i] = keep + h;
          const up = referenceLoss(p64, samples);
          values[i] = keep - h;
          const down = referenceLoss(p64, samples);
          values[i] = keep;
          const fd = (up - down) / (2 * h);
          worst = Math.max(worst, Math.abs(fd - grad[i]!) / scale);
        }
      }
      t.diagnostic(`worst |grad - finite difference| / max|grad| per tensor: ${worst.toExponential(2)}`);
      assert.ok(worst < 1e-3, `worst relative gradient error ${worst}`);
    } finally {
      await replica.release();
    }
  });
});

describe('train: the engine on the tiny net', () => {
  it('lowers the loss, logs metrics.json lines and writes a checkpoint PyTorch-style readers load', async (t) => {
    const out = await tempDir();
    const result = await train({
      model: tinyNetModel({ seed: 1 }),
      data: tinyShapesData(64),
      solver: solver('SOLVER.MAX_ITER=40', 'SOLVER.IMS_PER_BATCH=8', 'SOLVER.CHECKPOINT_PERIOD=25'),
      out,
      threads: THREADS,
      seed: 5,
      metadata: { [CHECKPOINT_METADATA.config]: '{"MODEL":{}}' },
      onWarning: quiet,
    });
    assert.equal(result.completed, 40);
    assert.equal(result.stoppedBy, 'max-iter');
    const losses = ordinal(result);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(losses.slice(0, 5));
    const last = mean(losses.slice(-5));
    t.diagnostic(`mean total loss of the first 5 iterations ${first.toFixed(4)}, of the last 5 ${last.toFixed(4)}`);
    assert.ok(last < 0.6 * first, `loss ${first.toFixed(4)} -> ${last.toFixed(4)}`);
    const metrics = parseMetrics(await readFile(join(out, METRICS_FILE), 'utf8'));
    assert.equal(metrics.length, 40);
    assert.deepEqual(Object.keys(metrics[0]!.values).slice(0, 3), ['total_loss', 'loss_cls', 'loss_reg']);
    assert.ok(Math.abs(metrics[0]!.values.lr! - 0.2 / 3) < 1e-12, 'iteration 0 runs at BASE_LR * WARM_UP_FACTOR');
    assert.equal((await readFile(join(out, LAST_CHECKPOINT_FILE), 'utf8')).trim(), 'model_final.safetensors');
    const file = readSafetensorsFile(join(out, 'model_final.safetensors'));
    assert.equal(file.metadata[CHECKPOINT_METADATA.iteration], '40');
    assert.equal(file.metadata[CHECKPOINT_METADATA.config], '{"MODEL":{}}');
    assert.deepEqual([...file.entries.keys()], tinyNetParameters().map((p) => p.name), 'plain tensors under the model names only');
    const store = WeightStore.fromSafetensors(join(out, 'model_final.safetensors'));
    assert.equal(store.take('conv.weight', [8, 3, 3, 3]).length, 216);
    assert.ok(readSafetensorsFile(join(out, 'model_0000025.solver.safetensors')).entries.has('momentum.conv.weight'));
    const html = trainingReportHtml(metrics, { title: 'tiny' });
    assert.match(html, /<svg[^>]*>.*Losses/s);
    assert.match(html, /Learning rate/);
  });

  it('two CPU replicas with one image each make the same update as one replica with both images', async (t) => {
    const once = async (devices: string): Promise<Map<string, Float32Array>> => {
      const out = await tempDir();
      await train({
        model: tinyNetModel({ seed: 2 }),
        data: tinyShapesData(16),
        solver: solver('SOLVER.MAX_ITER=2', 'SOLVER.IMS_PER_BATCH=2'),
        out,
        devices,
        threads: THREADS,
        seed: 9,
        onWarning: quiet,
      });
      const loaded = await readCheckpoint(join(out, 'model_final.safetensors'), tinyNetParameters().map((p) => p.name));
      return loaded.state.parameters as Map<string, Float32Array>;
    };
    const start = tinyNetModel({ seed: 2 }).initial;
    const parallel = await once('cpu:0,cpu:1');
    const single = await once('cpu');
    let worst = 0;
    for (const [name, p] of single) {
      const q = parallel.get(name)!;
      const moved = p.reduce((a, v, i) => Math.max(a, Math.abs(v - start.get(name)![i]!)), 0);
      assert.ok(moved > 0, `${name} was updated`);
      for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i]! - q[i]!) / Math.max(moved, 1e-6));
    }
    t.diagnostic(`worst |two replicas - one replica| / max|update| per tensor after 2 iterations: ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-4, `worst difference relative to the update: ${worst}`);
  });

  it('--resume after an interruption continues with the same losses as an uninterrupted run', async () => {
    const s = solver('SOLVER.MAX_ITER=8', 'SOLVER.IMS_PER_BATCH=4', 'SOLVER.CHECKPOINT_PERIOD=3');
    const base = { data: tinyShapesData(10), solver: s, threads: THREADS, seed: 11, onWarning: quiet };
    const whole = await train({ ...base, model: tinyNetModel({ seed: 4 }), out: await tempDir() });
    const out = await tempDir();
    const stop = new AbortController();
    const first = await train({ ...base, model: tinyNetModel({ seed: 4 }), out, signal: stop.signal, onIteration: (r) => r.iteration === 4 && stop.abort() });
    assert.equal(first.stoppedBy, 'interrupted');
    assert.equal(first.completed, 5);
    assert.equal(first.checkpoint?.iteration, 5, 'Ctrl-C writes a checkpoint');
    // A different seed on the command line does not change a resumed run.
    const second = await train({ ...base, seed: 12, model: tinyNetModel({ seed: 4 }), out, resume: true });
    assert.equal(second.startIteration, 5);
    assert.deepEqual([...ordinal(first), ...ordinal(second)], ordinal(whole));
    const names = tinyNetParameters().map((p) => p.name);
    const a = await readCheckpoint(join(out, 'model_final.safetensors'), names);
    const b = await readCheckpoint(whole.checkpoint!.model, names);
    for (const name of names) assert.deepEqual([...a.state.parameters.get(name)!], [...b.state.parameters.get(name)!], name);
    for (const name of names) assert.deepEqual([...a.state.momentum.get(name)!], [...b.state.momentum.get(name)!], `momentum of ${name}`);
    const metrics = parseMetrics(await readFile(join(out, METRICS_FILE), 'utf8'));
    assert.deepEqual(metrics.map((m) => m.iteration), [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('stops on a non-finite loss naming the iteration and the losses, keeping the last good checkpoint', async () => {
    const out = await tempDir();
    await assert.rejects(
      train({
        model: tinyNetModel({ seed: 1 }),
        data: tinyShapesData(8),
        solver: solver('SOLVER.MAX_ITER=20', 'SOLVER.IMS_PER_BATCH=2', 'SOLVER.BASE_LR=1e30', 'SOLVER.WARM_UP_ITERS=0', 'SOLVER.CHECKPOINT_PERIOD=1'),
        out,
        threads: THREADS,
        onWarning: quiet,
      }),
      (e: unknown) => {
        assert.ok(e instanceof TrainingError, String(e));
        assert.ok(e.iteration !== undefined && e.iteration >= 1);
        assert.match(e.message, new RegExp(`^iteration ${e.iteration}: .*not finite.*loss_cls .*loss_reg .*model_${String(e.iteration).padStart(7, '0')}\\.safetensors`));
        return true;
      },
    );
    const last = (await readFile(join(out, LAST_CHECKPOINT_FILE), 'utf8')).trim();
    const loaded = await readCheckpoint(join(out, last), tinyNetParameters().map((p) => p.name));
    for (const v of loaded.state.parameters.values()) assert.ok(v.every(Number.isFinite), 'the kept checkpoint is finite');
  });

  it('re-initialises and reports the tensors of the initial weights that do not fit', async () => {
    const dir = await tempDir();
    const path = join(dir, 'five-classes.safetensors');
    const conv = Float32Array.from({ length: 216 }, (_, i) => Math.sin(i));
    const tensors: [string, HostTensor][] = [
      ['conv.weight', { dtype: 'float32', dims: [8, 3, 3, 3], data: conv }],
      ['conv.bias', { dtype: 'float32', dims: [8], data: new Float32Array(8).fill(0.5) }],
      ['cls.weight', { dtype: 'float32', dims: [5, 8], data: new Float32Array(40) }],
      ['cls.bias', { dtype: 'float32', dims: [5], data: new Float32Array(5) }],
      ['reg.weight', { dtype: 'float32', dims: [2, 8], data: new Float32Array(16).fill(0.25) }],
    ];
    await writeFile(path, writeSafetensors(tensors));
    const model = tinyNetModel({ weights: WeightStore.fromSafetensors(path), seed: 0 });
    assert.deepEqual(model.reinitialised, ['cls.weight', 'cls.bias', 'reg.bias']);
    assert.deepEqual([...model.initial.get('conv.weight')!], [...conv]);
    assert.deepEqual([...model.initial.get('reg.weight')!], new Array(16).fill(0.25));
    assert.deepEqual([...model.initial.get('reg.bias')!], [0.5, 0.5], 'drawn with the stage init');
  });

  it('refuses a batch the replicas cannot share evenly', async () => {
    await assert.rejects(
      train({ model: tinyNetModel(), data: tinyShapesData(4), solver: solver('SOLVER.MAX_ITER=1', 'SOLVER.IMS_PER_BATCH=3'), out: await tempDir(), devices: 'cpu:0,cpu:1', onWarning: quiet }),
      /IMS_PER_BATCH \(3\) is not a multiple of the 2 replicas/,
    );
  });

  it('a checkpoint\'s category map names the classes when the checkpoint is used as weights', async () => {
    const dir = await tempDir();
    const path = join(dir, 'model_final.safetensors');
    const one: [string, HostTensor][] = [['x', { dtype: 'float32', dims: [1], data: Float32Array.from([1]) }]];
    await writeFile(path, writeSafetensors(one, { [CHECKPOINT_METADATA.categories]: JSON.stringify({ categoryIds: [3, 8, 11], names: ['circle', 'square', 'triangle'] }) }));
    const sources = await resolveModelSources({ config: toyConfig({ mask: true }), weights: path, register: [registerToy] });
    assert.deepEqual(sources.labels.categories, ['__background__', 'circle', 'square', 'triangle']);
    assert.deepEqual(sources.labels.categoryIds, [0, 3, 8, 11]);
    const five = await resolveModelSources({ config: toyConfig({ mask: true, numClasses: 5 }), weights: path, register: [registerToy] });
    assert.equal(five.labels.categories[1], 'class_1', 'a map that does not fit MODEL.NUM_CLASSES is not used');
  });
});
