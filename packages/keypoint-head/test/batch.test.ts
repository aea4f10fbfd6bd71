/**
 * Zero detections and batches of two images, through the graph head and the host decoder.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXTRA_KEYS, type HostTensor, getExtra } from '@rcnn/core';
import { compareDense } from '@rcnn/testing';
import { heatmapsToKeypoints } from '../src/index.js';
import { heatmapsToKeypointsReference } from './reference-bicubic.js';
import { concatBatch, f32, imageDetections, keypointCase, referenceFeatures, runHead, scaled } from './helpers.js';

describe('zero detections', () => {
  it('the head returns [0, K, S, S] heatmaps and the decoder empty arrays', async () => {
    const { pc, config } = keypointCase();
    const run = await runHead(config, pc.weights(), referenceFeatures(pc), { boxes: new Float32Array(0), labels: [], batchIndex: [] });
    assert.deepEqual(run.heatmaps.dims, [0, 17, 56, 56]);
    assert.deepEqual(run.logits.dims, [0, 17, 56, 56]);

    const images = [imageDetections(0, new Float32Array(0), [298, 224], [240, 180]), imageDetections(1, new Float32Array(0), [224, 300], [200, 268])];
    heatmapsToKeypoints.apply(new Map([['det.keypoint_heatmaps', run.heatmaps]]), images, [[0, 0], [0, 0]], config);
    for (const image of images) {
      const kp = getExtra(image, EXTRA_KEYS.keypoints);
      assert.ok(kp, 'a keypoint set, empty');
      assert.deepEqual([kp.count, kp.numKeypoints], [0, 17]);
      for (const a of [kp.keypoints, kp.keypointsResized, kp.scores]) assert.ok(a instanceof Float32Array && a.length === 0);
      assert.deepEqual([...image.extras.keys()], [EXTRA_KEYS.keypoints], 'one extra, under the typed key');
    }
  });
});

describe('a batch of two images', () => {
  it('each image\'s rows equal the single-image run on its own features', async () => {
    const { pc, config } = keypointCase();
    const feats = referenceFeatures(pc);
    const boxes = pc.reference('det.boxes_resized.0').data as Float32Array;
    // Image 1: other features (scaled) and only some of the boxes, in another order.
    const second = feats.map((t) => scaled(t, 0.5));
    const pick = [5, 1, 3];
    const boxes1 = Float32Array.from(pick.flatMap((i) => Array.from(boxes.subarray(4 * i, 4 * i + 4))));
    const d0 = boxes.length / 4;
    const d1 = pick.length;

    const batch = await runHead(
      config,
      pc.weights(),
      feats.map((t, i) => concatBatch([t, second[i]!])),
      {
        boxes: Float32Array.from([...boxes, ...boxes1]),
        labels: Array.from({ length: d0 + d1 }, () => 1),
        batchIndex: [...Array.from({ length: d0 }, () => 0), ...Array.from({ length: d1 }, () => 1)],
      },
    );
    const single0 = await runHead(config, pc.weights(), feats, { boxes, labels: Array.from({ length: d0 }, () => 1), batchIndex: Array.from({ length: d0 }, () => 0) });
    const single1 = await runHead(config, pc.weights(), second, { boxes: boxes1, labels: [1, 1, 1], batchIndex: [0, 0, 0] });
    assert.deepEqual(batch.heatmaps.dims, [d0 + d1, 17, 56, 56]);
    const per = 17 * 56 * 56;
    const rows = (t: HostTensor, from: number, to: number): HostTensor => f32([to - from, 17, 56, 56], (t.data as Float32Array).slice(from * per, to * per));
    for (const [name, actual, expected] of [
      ['image 0', rows(batch.heatmaps, 0, d0), single0.heatmaps],
      ['image 1', rows(batch.heatmaps, d0, d0 + d1), single1.heatmaps],
    ] as const) {
      const v = compareDense(name, actual, expected, 1e-5);
      assert.ok(v.pass, `${name}: ${v.detail}`);
    }
    // Image 1 really differs from image 0's rows for the same boxes.
    const other = compareDense('image 1 vs image 0 features', rows(batch.heatmaps, d0, d0 + 1), rows(single0.heatmaps, 5, 6), 1e-3);
    assert.ok(!other.pass);

    // Host decoding per image: rows [0, d0) and [d0, d0 + d1), each against its own sizes.
    const images = [imageDetections(0, boxes, [298, 224], [240, 180]), imageDetections(1, boxes1, [320, 240], [480, 360])];
    heatmapsToKeypoints.apply(new Map([['det.keypoint_heatmaps', batch.heatmaps]]), images, [[0, d0], [d0, d0 + d1]], config);
    const hm = batch.heatmaps.data as Float32Array;
    const dims = batch.heatmaps.dims;
    const ratios = (
      [
        [240 / 298, 180 / 224],
        [480 / 320, 360 / 240],
      ] as const
    ).map(([h, w]) => [Math.fround(w), Math.fround(h)]);
    images.forEach((image, i) => {
      const [start, n] = i === 0 ? [0, d0] : [d0, d1];
      const expected = heatmapsToKeypointsReference(hm, dims, start, image.boxesResized, n);
      const got = getExtra(image, EXTRA_KEYS.keypoints)!;
      assert.equal(got.numKeypoints, 17);
      assert.equal(got.count, n);
      assert.deepEqual(got.keypointsResized, expected.keypoints, `image ${i} resized keypoints`);
      assert.deepEqual(got.scores, expected.scores, `image ${i} scores`);
      for (let p = 0; p < got.keypoints.length; p += 3) {
        assert.equal(got.keypoints[p], Math.fround(expected.keypoints[p]! * ratios[i]![0]!));
        assert.equal(got.keypoints[p + 1], Math.fround(expected.keypoints[p + 1]! * ratios[i]![1]!));
        assert.equal(got.keypoints[p + 2], 1);
      }
    });
  });
});
