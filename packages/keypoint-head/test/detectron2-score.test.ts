/** Detectron2's keypoint score (KRCNN.KEYPOINT_SCORE detectron2): the third keypoint column. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeHeatmaps, detectron2KeypointScore } from '../src/index.js';
import { realisticHeatmaps, rng } from './synthetic.js';

describe('Detectron2 keypoint score', () => {
  it('is exp(max - max) / sum(exp(map - max)) over the low-resolution map', () => {
    const map = Float32Array.from([0, 0, 0, Math.log(3)]);
    assert.equal(detectron2KeypointScore(map, 0, 4, Math.fround(Math.log(3))), 0.5);
    // Normalised by the low-resolution map only, it exceeds 1 when the resized maximum is above every sample.
    assert.ok(detectron2KeypointScore(Float32Array.from([0, 0, 0, 0]), 0, 4, 2) > 1);
  });

  it('fills the third column instead of visibility 1; x, y and the logits are unchanged', () => {
    const k = 3;
    const heatmaps = realisticHeatmaps(2 * k, 56, rng(7));
    const boxes = [10, 20, 90, 150, 5.5, 7.25, 40.75, 33];
    const tv = decodeHeatmaps(heatmaps, [2, k, 56, 56], 0, boxes, 2, { minBoxSize: 1 });
    const d2 = decodeHeatmaps(heatmaps, [2, k, 56, 56], 0, boxes, 2, { minBoxSize: 1, score: 'detectron2' });
    assert.deepEqual(d2.scores, tv.scores);
    for (let i = 0; i < 2 * k; i++) {
      assert.equal(tv.keypoints[3 * i + 2], 1);
      assert.deepEqual([d2.keypoints[3 * i], d2.keypoints[3 * i + 1]], [tv.keypoints[3 * i], tv.keypoints[3 * i + 1]]);
      const expected = detectron2KeypointScore(heatmaps, i * 56 * 56, 56 * 56, tv.scores[i]!);
      assert.equal(d2.keypoints[3 * i + 2], expected);
      assert.ok(expected > 0 && expected !== 1);
    }
  });
});
