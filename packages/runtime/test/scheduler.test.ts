import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '@rcnn/core';
import { ShutdownError } from '../src/index.js';
import { Scheduler } from '../src/internal/scheduler.js';
import { encode, pattern, toyDetector } from './helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('Scheduler', () => {
  it('runs every job on the least busy replica, at most maxInFlight each, and keeps callers in order', async () => {
    const s = new Scheduler(['a', 'b', 'c'], { maxInFlight: 2 });
    const running = new Map<string, number>();
    let peak = 0;
    const durations = [30, 5, 20, 1, 15, 2, 25, 3, 10, 4, 8, 6];
    const results = await Promise.all(
      durations.map((ms, i) =>
        s.submit(async (worker) => {
          running.set(worker, (running.get(worker) ?? 0) + 1);
          peak = Math.max(peak, ...running.values());
          await sleep(ms);
          running.set(worker, running.get(worker)! - 1);
          return { i, worker };
        }),
      ),
    );
    assert.deepEqual(results.map((r) => r.i), durations.map((_, i) => i));
    assert.equal(peak, 2, 'a replica never ran more than maxInFlight jobs');
    assert.deepEqual(new Set(results.map((r) => r.worker)), new Set(['a', 'b', 'c']));
    const loads = s.loads();
    assert.equal(loads.reduce((a, l) => a + l.completed, 0), durations.length);
    // Least busy first: the first three jobs go to three different replicas.
    assert.deepEqual(new Set(results.slice(0, 3).map((r) => r.worker)), new Set(['a', 'b', 'c']));
  });

  it('a failing job rejects only its own promise', async () => {
    const s = new Scheduler([0, 1], { maxInFlight: 1 });
    const outcomes = await Promise.allSettled(
      [0, 1, 2, 3, 4].map((i) =>
        s.submit(async () => {
          await sleep(2);
          if (i === 2) throw new Error('boom');
          return i;
        }),
      ),
    );
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
    );
    assert.equal(s.loads().reduce((a, l) => a + l.failed, 0), 1);
  });

  it('close() lets running jobs finish, fails queued ones with ShutdownError, refuses new ones', async () => {
    const s = new Scheduler(['x'], { maxInFlight: 1 });
    let finished = 0;
    const jobs = [0, 1, 2].map(() =>
      s.submit(async () => {
        await sleep(20);
        finished++;
        return 'done';
      }),
    );
    const settling = Promise.allSettled(jobs);
    await sleep(5);
    await s.close();
    const settled = await settling;
    assert.equal(settled[0]!.status, 'fulfilled');
    assert.equal(finished, 1, 'only the running job ran');
    for (const o of settled.slice(1)) {
      assert.equal(o.status, 'rejected');
      assert.ok((o as PromiseRejectedResult).reason instanceof ShutdownError);
    }
    await assert.rejects(s.submit(async () => 1), ShutdownError);
  });

  it('a disabled replica gets no more jobs; with none left, jobs fail', async () => {
    const s = new Scheduler(['a', 'b'], { maxInFlight: 1 });
    s.disable(0, 'worker died');
    const used = await Promise.all([1, 2, 3].map(() => s.submit(async (w) => w)));
    assert.deepEqual(used, ['b', 'b', 'b']);
    s.disable(1, 'worker died too');
    await assert.rejects(s.submit(async (w) => w), /no replica is left/);
  });
});

describe('Detector with several CPU replicas (toy model)', () => {
  it('keeps the input order, uses every replica, and isolates a failing image', async () => {
    const { detector } = await toyDetector({ devices: ['cpu', 'cpu', 'cpu'] });
    try {
      assert.deepEqual(detector.replicas.map((r) => r.device), ['cpu:0', 'cpu:1', 'cpu:2']);
      const sizes: [number, number][] = [
        [40, 30],
        [64, 48],
        [30, 50],
        [80, 40],
        [50, 50],
        [33, 71],
        [45, 20],
        [60, 90],
      ];
      const inputs: (Uint8Array | string)[] = await Promise.all(sizes.map(([w, h], i) => encode(pattern(w, h, i + 1), w, h, 'png')));
      inputs.splice(3, 0, Buffer.from('this is not an image'));
      const outcomes = await detector.predict(inputs);
      assert.equal(outcomes.length, inputs.length);
      outcomes.forEach((o, i) => assert.equal(o.index, i));
      const bad = outcomes[3]!;
      assert.equal(bad.ok, false);
      assert.ok(!bad.ok && bad.error instanceof InputError && /<buffer 3>/.test(bad.error.message));
      const good = outcomes.filter((o) => o.ok);
      assert.equal(good.length, sizes.length);
      // Results belong to their inputs: each result has its own image's size.
      const expected = [...sizes.slice(0, 3), [0, 0], ...sizes.slice(3)];
      outcomes.forEach((o, i) => {
        if (o.ok) assert.deepEqual([o.result.width, o.result.height], expected[i]);
      });
      const loads = detector.loads();
      for (const l of loads) assert.ok(l.completed > 0, `replica ${l.device} ran nothing`);
      assert.deepEqual(new Set(good.map((o) => o.ok && o.result.device)), new Set(['cpu:0', 'cpu:1', 'cpu:2']));
    } finally {
      await detector.close();
    }
  });

  it('gives the same detections whichever replica runs an image and whatever the batch', async () => {
    const { detector } = await toyDetector({ devices: ['cpu', 'cpu'] });
    try {
      const img = await encode(pattern(64, 48, 3), 64, 48, 'png');
      const singles = await detector.predict([img, img, img, img]);
      const batched = await detector.predict([img, img, img, img], { batchSize: 4 });
      const ref = singles[0]!.ok ? singles[0]!.result.detections! : undefined;
      assert.ok(ref && ref.scores.length > 0, 'the toy model detects something');
      for (const o of [...singles, ...batched]) {
        assert.ok(o.ok);
        assert.deepEqual(Array.from(o.result.detections!.boxes), Array.from(ref.boxes));
        assert.deepEqual(Array.from(o.result.detections!.scores), Array.from(ref.scores));
      }
      assert.equal(batched[0]!.ok && batched[0]!.result.timings.batchSize, 4);
    } finally {
      await detector.close();
    }
  });

  it('shuts down cleanly with requests in flight: running batches finish, queued ones fail with ShutdownError', async () => {
    const { detector } = await toyDetector({ devices: ['cpu', 'cpu'] });
    const img = await encode(pattern(64, 48, 5), 64, 48, 'png');
    const pending = detector.predict(Array.from({ length: 24 }, () => img));
    await new Promise((r) => setTimeout(r, 30));
    await detector.close();
    const outcomes = await pending;
    assert.equal(outcomes.length, 24);
    const ok = outcomes.filter((o) => o.ok).length;
    const shut = outcomes.filter((o) => !o.ok && o.error instanceof ShutdownError).length;
    assert.equal(ok + shut, 24, 'every request either finished or failed with a ShutdownError');
    assert.ok(shut > 0, 'requests queued at close() fail');
    await assert.rejects(detector.predictOne(img), ShutdownError);
    await detector.close(); // idempotent
  });
});
