/**
 * DATALOADER keys in the training engine: the aspect-ratio grouped sampler (single-aspect
 * replica shares, every sample each epoch, a pure function of (seed, iteration)) and the
 * prefetch depth.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '@rcnn/core';
import { AspectRatioGroupedSampler, type TinySample, type TrainingData, tinyNetModel, tinyShapesData, train } from '../src/training/index.js';

const dirs: string[] = [];
const tempDir = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'rcnn-train-data-'));
  dirs.push(d);
  return d;
};
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** 7 landscape and 4 portrait samples, interleaved; square (1.0) counts as portrait (w > h is landscape). */
const RATIOS = [1.5, 0.75, 1.33, 1.0, 2, 1.2, 0.5, 1.7, 1.9, 0.8, 1.1];
const landscape = (i: number): boolean => RATIOS[i]! > 1;

describe('AspectRatioGroupedSampler', () => {
  it('every group of one replica share is single-aspect, and every epoch covers every sample', () => {
    for (const group of [2, 3]) {
      const sampler = new AspectRatioGroupedSampler(RATIOS, group, 5);
      // Groups per epoch: ceil(7 / g) + ceil(4 / g).
      const perEpoch = Math.ceil(7 / group) + Math.ceil(4 / group);
      for (let epoch = 0; epoch < 3; epoch++) {
        const seen = new Set<number>();
        for (let g = 0; g < perEpoch; g++) {
          const indices = sampler.batch(epoch * perEpoch + g, group);
          assert.equal(indices.length, group);
          assert.ok(indices.every((i) => landscape(i) === landscape(indices[0]!)), `group ${g} of epoch ${epoch} (size ${group}) mixes aspects: ${indices}`);
          for (const i of indices) seen.add(i);
        }
        assert.equal(seen.size, RATIOS.length, `epoch ${epoch} with groups of ${group} visits every sample`);
      }
    }
  });

  it('a batch of two replica shares has each share single-aspect, and epochs differ in order', () => {
    const sampler = new AspectRatioGroupedSampler(RATIOS, 2, 5);
    const batches = Array.from({ length: 12 }, (_, i) => sampler.batch(i, 4));
    for (const b of batches) {
      assert.equal(b.length, 4);
      for (const share of [b.slice(0, 2), b.slice(2)]) assert.equal(landscape(share[0]!), landscape(share[1]!), `share ${share} of batch ${b}`);
    }
    // 6 groups per epoch = 3 batches: epoch 0 and epoch 1 are different orders.
    assert.notDeepEqual(batches.slice(0, 3), batches.slice(3, 6));
    assert.throws(() => sampler.batch(0, 3), /cannot be made of aspect-ratio groups of 2/);
  });

  it('is a pure function of (seed, iteration): any query order, a fresh sampler and another seed', () => {
    const forward = new AspectRatioGroupedSampler(RATIOS, 2, 9);
    const expected = Array.from({ length: 20 }, (_, i) => forward.batch(i, 4));
    const backward = new AspectRatioGroupedSampler(RATIOS, 2, 9);
    for (let i = 19; i >= 0; i--) assert.deepEqual(backward.batch(i, 4), expected[i], `iteration ${i}`);
    const other = new AspectRatioGroupedSampler(RATIOS, 2, 10);
    assert.notDeepEqual(Array.from({ length: 20 }, (_, i) => other.batch(i, 4)), expected);
  });

  it('a queue smaller than a group repeats its own samples, never the other aspect', () => {
    const sampler = new AspectRatioGroupedSampler([2, 0.5, 0.5, 0.5], 3, 1);
    const groups = [0, 1].map((i) => sampler.batch(i, 3)).sort((a, b) => a[0]! - b[0]!);
    assert.deepEqual(groups[0], [0, 0, 0]);
    assert.deepEqual([...groups[1]!].sort(), [1, 2, 3]);
    assert.throws(() => new AspectRatioGroupedSampler([1, Number.NaN], 2, 0), /sample 1 has aspect ratio NaN/);
  });
});

const SOLVER = ['SOLVER.BASE_LR=0.2', 'SOLVER.WARM_UP_ITERS=3', 'SOLVER.MOMENTUM=0.9'];
const solver = (...set: string[]) => loadConfig({ set: [...SOLVER, ...set] }).SOLVER;

/** Tiny-net data with aspect ratios, recording the indices it loads, the loads started and the most running at once. */
function countingData(count: number) {
  const base = tinyShapesData(count);
  const stats = { started: 0, running: 0, mostRunning: 0, loaded: [] as number[] };
  const data: TrainingData<TinySample> = {
    size: base.size,
    aspectRatio: (i) => RATIOS[i % RATIOS.length]!,
    load: async (index, random) => {
      stats.started++;
      stats.running++;
      stats.mostRunning = Math.max(stats.mostRunning, stats.running);
      stats.loaded.push(index);
      // Finish on a later turn of the event loop, so loads of several batches can overlap.
      await new Promise((resolve) => setImmediate(resolve));
      stats.running--;
      return base.load(index, random);
    },
  };
  return { data, stats };
}

describe('train: DATALOADER.PREFETCH and ASPECT_RATIO_GROUPING', () => {
  for (const prefetch of [0, 1, 3]) {
    it(`prefetch ${prefetch}: exactly ${prefetch} batches are requested ahead of each step`, async () => {
      const batch = 2;
      const maxIter = 6;
      const { data, stats } = countingData(10);
      const startedAt: number[] = [];
      const result = await train({
        model: tinyNetModel({ seed: 4 }),
        data,
        solver: solver(`SOLVER.MAX_ITER=${maxIter}`, `SOLVER.IMS_PER_BATCH=${batch}`),
        threads: { intraOp: 1 },
        out: await tempDir(),
        prefetch,
        onWarning: () => undefined,
        onIteration: () => startedAt.push(stats.started),
      });
      assert.equal(result.completed, maxIter);
      assert.deepEqual(
        startedAt,
        Array.from({ length: maxIter }, (_, i) => Math.min(i + 1 + prefetch, maxIter) * batch),
        'loads started when each step finishes: its own batch and `prefetch` more',
      );
      assert.ok(stats.mostRunning <= (prefetch + 1) * batch, `at most ${prefetch + 1} batches load at once (saw ${stats.mostRunning} loads)`);
      if (prefetch > 0) assert.ok(stats.mostRunning > batch, `loads of the next batches overlap the current one (saw ${stats.mostRunning})`);
      else assert.equal(stats.mostRunning, batch);
    });
  }

  it('ASPECT_RATIO_GROUPING: every batch the engine loads is single-aspect, and the run is the same with any prefetch', async () => {
    const run = async (prefetch: number, aspectRatioGrouping: boolean) => {
      const { data, stats } = countingData(11);
      const result = await train({
        model: tinyNetModel({ seed: 4 }),
        data,
        solver: solver('SOLVER.MAX_ITER=6', 'SOLVER.IMS_PER_BATCH=3'),
        threads: { intraOp: 1 },
        out: await tempDir(),
        seed: 3,
        prefetch,
        aspectRatioGrouping,
        onWarning: () => undefined,
      });
      return { losses: result.records.map((r) => r.losses), loaded: stats.loaded };
    };
    const grouped = await run(2, true);
    for (let b = 0; b < grouped.loaded.length; b += 3) {
      const share = grouped.loaded.slice(b, b + 3);
      assert.ok(share.every((i) => landscape(i) === landscape(share[0]!)), `batch ${share} mixes aspects`);
    }
    assert.deepEqual(await run(0, true), grouped, 'the prefetch depth does not change what is trained');
    const plain = await run(2, false);
    assert.ok(
      Array.from({ length: plain.loaded.length / 3 }, (_, b) => plain.loaded.slice(3 * b, 3 * b + 3)).some((s) => s.some((i) => landscape(i) !== landscape(s[0]!))),
      'without grouping some batch mixes aspects (so the check above can fail)',
    );
  });

  it('--resume with aspect-ratio grouping continues with the same losses as an uninterrupted run', async () => {
    const base = { solver: solver('SOLVER.MAX_ITER=7', 'SOLVER.IMS_PER_BATCH=2', 'SOLVER.CHECKPOINT_PERIOD=3'), threads: { intraOp: 1 }, seed: 8, prefetch: 2, aspectRatioGrouping: true, onWarning: () => undefined };
    const whole = await train({ ...base, data: countingData(11).data, model: tinyNetModel({ seed: 4 }), out: await tempDir() });
    const out = await tempDir();
    const stop = new AbortController();
    const first = await train({ ...base, data: countingData(11).data, model: tinyNetModel({ seed: 4 }), out, signal: stop.signal, onIteration: (r) => r.iteration === 3 && stop.abort() });
    assert.equal(first.completed, 4);
    const second = await train({ ...base, data: countingData(11).data, model: tinyNetModel({ seed: 4 }), out, resume: true });
    assert.equal(second.startIteration, 4);
    assert.deepEqual([...first.records, ...second.records].map((r) => r.losses), whole.records.map((r) => r.losses));
  });
});
