import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { aspectRatioBatches, loadCocoDataset, prefetch, trainingBatches, trainingOrder } from '../src/index.js';

test('trainingOrder: every epoch a permutation, reproducible from the seed, different across seeds and epochs', () => {
  const take = (seed: number, n: number): number[] => {
    const out: number[] = [];
    for (const i of trainingOrder(7, seed)) {
      out.push(i);
      if (out.length === n) break;
    }
    return out;
  };
  const a = take(3, 21);
  assert.deepEqual(a, take(3, 21));
  assert.notDeepEqual(a, take(4, 21));
  for (let e = 0; e < 3; e++) assert.deepEqual([...a.slice(7 * e, 7 * e + 7)].sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.notDeepEqual(a.slice(0, 7), a.slice(7, 14));
  assert.throws(() => trainingOrder(0, 1).next(), /at least one image/);
});

test('aspectRatioBatches: landscape and portrait images never share a batch; order kept within a bucket; leftovers at the end', () => {
  const ratios = [2, 0.5, 1.5, 0.7, 1, 3, 0.9, 1.2];
  const batches = [...aspectRatioBatches(ratios.keys(), (i) => ratios[i]!, 2)];
  assert.deepEqual(batches, [
    [0, 2],
    [1, 3],
    [4, 6],
    [5, 7],
  ]);
  for (const b of batches) assert.equal(new Set(b.map((i) => ratios[i]! > 1)).size, 1);
  assert.deepEqual([...aspectRatioBatches([0, 1, 2], (i) => ratios[i]!, 2)], [[0, 2], [1]]);
  assert.deepEqual([...aspectRatioBatches([0, 1, 2], (i) => ratios[i]!, 2, { dropLast: true })], [[0, 2]]);
  assert.deepEqual([...aspectRatioBatches([0, 1, 2], (i) => ratios[i]!, 2, { grouping: false })], [[0, 1], [2]]);
  assert.throws(() => [...aspectRatioBatches([0], () => 1, 0)], /positive integer/);
});

test('prefetch: results in order, `depth` loads running ahead while the consumer works', async () => {
  let started = 0;
  const load = async (i: number): Promise<number> => {
    started++;
    await new Promise((r) => setTimeout(r, (7 - i) % 3));
    return i * 10;
  };
  const got: number[] = [];
  for await (const v of prefetch([0, 1, 2, 3, 4, 5, 6], load, 2)) {
    got.push(v);
    // While the consumer holds item k, items up to k + 2 have been started, never more.
    assert.equal(started, Math.min(7, got.length + 2), `after ${got.length} results`);
  }
  assert.deepEqual(got, [0, 10, 20, 30, 40, 50, 60]);
  started = 0;
  for await (const v of prefetch([0, 1, 2], load, 0)) assert.equal(started, v / 10 + 1);
});

test('prefetch: a failing load fails at its own position, not earlier; stopping early stops pulling', async () => {
  const got: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const v of prefetch([1, 2, 3, 4], async (i) => (i === 3 ? Promise.reject(new Error('bad image 3')) : i), 3)) got.push(v);
    })(),
    /bad image 3/,
  );
  assert.deepEqual(got, [1, 2]);
  let pulled = 0;
  function* source(): Generator<number> {
    for (let i = 0; i < 100; i++) {
      pulled++;
      yield i;
    }
  }
  for await (const v of prefetch(source(), async (i) => i, 2)) if (v === 1) break;
  assert.ok(pulled <= 4, `pulled ${pulled}`);
});

test('trainingBatches: decoded images in aspect-ratio groups', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rcnn-coco-batches-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const sizes: [number, number][] = [
    [30, 20],
    [20, 30],
    [32, 16],
    [16, 32],
    [40, 20],
  ];
  const images = [];
  const annotations = [];
  for (const [i, [w, h]] of sizes.entries()) {
    await sharp(Buffer.alloc(w * h * 3, 10 * i), { raw: { width: w, height: h, channels: 3 } }).png().toFile(join(dir, `${i}.png`));
    images.push({ id: i + 1, file_name: `${i}.png`, width: w, height: h });
    annotations.push({ id: i + 1, image_id: i + 1, category_id: 1, bbox: [1, 1, 5, 5], area: 25, iscrowd: 0 });
  }
  const ds = await loadCocoDataset({ annotations: { images, annotations, categories: [{ id: 1, name: 'thing' }] }, imagesDir: dir });
  const batches = [];
  for await (const b of trainingBatches(ds, [0, 1, 2, 3, 4], { batchSize: 2, prefetch: 2 })) batches.push(b.map((img) => [img.imageId, img.width, img.height, img.data[0]]));
  assert.deepEqual(batches, [
    [
      [1, 30, 20, 0],
      [3, 32, 16, 20],
    ],
    [
      [2, 20, 30, 10],
      [4, 16, 32, 30],
    ],
    [[5, 40, 20, 40]],
  ]);
});
