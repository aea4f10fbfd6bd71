/**
 * Memory the detector frees once the model is serialised: the weights file it read and the
 * graph's own arrays go at once (not at a garbage collection that may never come), while weights
 * the caller passed in stay theirs, untouched.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WeightStore, hostTensor, writeSafetensors } from '@rcnn/core';
import { RELEASE_MIN_BYTES, releaseArrayBuffers } from '../src/internal/release-memory.js';
import { register, toyConfig, toyWeights } from '../src/toy/index.js';
import { createDetector } from '../src/index.js';
import { pattern, tempDir } from './helpers.js';

describe('releaseArrayBuffers', () => {
  it('detaches each large buffer once and reports its bytes; small, shared and pooled buffers stay', async () => {
    const large = new Float32Array(RELEASE_MIN_BYTES / 4);
    const view = large.subarray(10, 20);
    const small = new Float32Array(16).fill(3);
    const shared = new Float32Array(new SharedArrayBuffer(RELEASE_MIN_BYTES * 2));
    const pooled = Buffer.from('pooled');
    const neighbour = Buffer.from('neighbour');
    assert.equal(pooled.buffer, neighbour.buffer, "Node's pool slab");
    const released = releaseArrayBuffers([large.buffer, large.buffer, small.buffer, shared.buffer, pooled.buffer, view.buffer]);
    assert.equal(released, RELEASE_MIN_BYTES);
    assert.equal(large.length, 0);
    assert.equal(view.length, 0);
    assert.deepEqual([...small], new Array(16).fill(3));
    assert.equal(shared.length, RELEASE_MIN_BYTES / 2);
    assert.equal(neighbour.toString(), 'neighbour');
    assert.equal(releaseArrayBuffers([large.buffer]), 0, 'already detached');
    assert.equal(releaseArrayBuffers([small.buffer], 0), 64, 'minBytes 0 takes any owned buffer');
    assert.equal(small.length, 0);
  });
});

describe('detector memory after creation', () => {
  const dir = tempDir();
  const tensors = toyWeights();
  // A tensor the model does not read, as large as a real model's weights would be next to the toy's:
  // it shares the file's one buffer, so it shows whether the file is still held.
  const ballastBytes = 48 * 1024 * 1024;
  const path = join(dir, 'toy.safetensors');
  writeFileSync(path, writeSafetensors(new Map([...tensors, ['unused.ballast', hostTensor('float32', [ballastBytes / 4], new Float32Array(ballastBytes / 4))]])));
  // What a detector still holds must not depend on when the test's own garbage is collected:
  // collect it first (the test exposes V8's gc for itself; the library never collects garbage).
  setFlagsFromString('--expose-gc');
  const collectGarbage = runInNewContext('gc') as () => void;
  const base = { config: toyConfig({ mask: true }), register: [register], threads: { intraOp: 1 }, onWarning: () => undefined } as const;
  const image = { data: pattern(64, 48), width: 64, height: 48, maxValue: 255 } as const;

  it('does not keep the weights file it read', async () => {
    collectGarbage();
    await nextTurn();
    const before = process.memoryUsage().arrayBuffers;
    const detector = await createDetector({ ...base, weights: path });
    try {
      await nextTurn();
      const held = process.memoryUsage().arrayBuffers - before;
      assert.ok(held < ballastBytes / 2, `${(held / 2 ** 20).toFixed(1)} MiB of array buffers still held after creation (file: ${(ballastBytes / 2 ** 20).toFixed(0)} MiB + the toy weights)`);
    } finally {
      await detector.close();
    }
  });

  it('leaves a WeightStore the caller passed intact, with the same detections as from the file', async () => {
    const store = WeightStore.fromSafetensors(path);
    const key = 'toy.box.fc.weight';
    const expected = tensors.get(key)!;
    const taken = store.take(key, expected.dims);
    const fromStore = await createDetector({ ...base, weights: store });
    const fromFile = await createDetector({ ...base, weights: path });
    try {
      assert.deepEqual([...taken], [...(expected.data as Float32Array)], 'an array taken before is untouched');
      assert.deepEqual([...store.take(key, expected.dims)], [...(expected.data as Float32Array)], 'the store still reads');
      assert.equal(store.take('unused.ballast', [ballastBytes / 4]).length, ballastBytes / 4);
      const [a] = await fromStore.predict([image]);
      const [b] = await fromFile.predict([image]);
      assert.ok(a?.ok && b?.ok);
      const [fromA, fromB] = [a.result.detections!, b.result.detections!];
      assert.ok(fromA.scores.length > 0, 'the toy detects something in the pattern');
      assert.deepEqual([...fromB.boxes], [...fromA.boxes]);
      assert.deepEqual([...fromB.scores], [...fromA.scores]);
    } finally {
      await fromStore.close();
      await fromFile.close();
    }
  });
});
