/**
 * Whole-model integration the fixtures do not cover directly: Mask + Keypoint R-CNN in one model,
 * and an RPN-only model run from an image file.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXTRA_KEYS, type HostTensor, WeightStore, decodeEntry, getExtra, readSafetensorsFile } from '@rcnn/core';
import { type ImageResult, createDetector } from '@rcnn/runtime';
import { compareProposals, loadParityCase, publicCaseDir } from '@rcnn/testing';
import { BUILT_IN_PACKAGES } from '../src/index.js';

/** maskrcnn_tiny's weights plus keypointrcnn_tiny's keypoint head (both heads read 32-channel FPN levels). */
function combinedWeights(): WeightStore {
  const tensors = new Map<string, HostTensor>();
  for (const [k, e] of readSafetensorsFile(join(publicCaseDir('maskrcnn_tiny'), 'weights.safetensors')).entries) tensors.set(k, decodeEntry(e));
  for (const [k, e] of readSafetensorsFile(join(publicCaseDir('keypointrcnn_tiny'), 'weights.safetensors')).entries) {
    if (k.startsWith('roi_heads.keypoint_')) tensors.set(k, decodeEntry(e));
  }
  return WeightStore.fromTensors(tensors, 'maskrcnn_tiny + keypointrcnn_tiny keypoint head');
}

const KEYPOINT_HEAD = ['KRCNN.NUM_STACKED_CONVS=8', 'KRCNN.CONV_HEAD_DIM=32', 'KRCNN.NUM_KEYPOINTS=17'];

async function predictWith(set: readonly string[], weights: WeightStore): Promise<ImageResult> {
  const dir = publicCaseDir('maskrcnn_tiny');
  const detector = await createDetector({ config: join(dir, 'case.json'), set, weights, register: BUILT_IN_PACKAGES, threads: { intraOp: 1, interOp: 1 } });
  try {
    const [outcome] = await detector.predict([join(dir, 'image_0.png')]);
    assert.ok(outcome.ok, outcome.ok ? '' : outcome.error.message);
    return outcome.result;
  } finally {
    await detector.close();
  }
}

describe('Mask R-CNN and Keypoint R-CNN heads in one model', () => {
  it('gives each head the outputs of its single-head model with the same weights', async () => {
    const weights = combinedWeights();
    const both = await predictWith(['MODEL.KEYPOINTS_ON=true', ...KEYPOINT_HEAD], weights.fork());
    const maskOnly = await predictWith([], weights.fork());
    const keypointsOnly = await predictWith(['MODEL.MASK_ON=false', 'MODEL.KEYPOINTS_ON=true', ...KEYPOINT_HEAD], weights.fork());
    const d = both.detections!;
    assert.equal(d.scores.length, 16, 'the maskrcnn_tiny fixture has 16 detections');
    for (const single of [maskOnly, keypointsOnly]) {
      assert.deepEqual(d.boxes, single.detections!.boxes);
      assert.deepEqual(d.scores, single.detections!.scores);
      assert.deepEqual(d.labels, single.detections!.labels);
    }
    const masks = getExtra(d, EXTRA_KEYS.masks)!;
    const singleMasks = getExtra(maskOnly.detections!, EXTRA_KEYS.masks)!;
    assert.deepEqual(masks.binaryTensor().dims, [16, 1, 200, 260]);
    assert.deepEqual(masks.binaryTensor().data, singleMasks.binaryTensor().data);
    assert.deepEqual(masks.maskProbsTensor().data, singleMasks.maskProbsTensor().data);
    const kp = getExtra(d, EXTRA_KEYS.keypoints)!;
    assert.deepEqual([kp.count, kp.numKeypoints, kp.keypoints.length], [16, 17, 16 * 17 * 3]);
    assert.deepStrictEqual(kp, getExtra(keypointsOnly.detections!, EXTRA_KEYS.keypoints));
    assert.equal(getExtra(maskOnly.detections!, EXTRA_KEYS.keypoints), undefined);
    assert.equal(getExtra(keypointsOnly.detections!, EXTRA_KEYS.masks), undefined);
  });
});

describe('RPN-only model from an image file', () => {
  it('returns the proposals of the fixture in original-image coordinates', async () => {
    const dir = publicCaseDir('maskrcnn_tiny');
    const c = loadParityCase(dir);
    const result = await predictWith(['MODEL.RPN_ONLY=true', 'MODEL.MASK_ON=false'], c.weights());
    const p = result.proposals!;
    assert.equal(p.count, 300);
    const ref = c.reference('rpn.proposals.0');
    const v = compareProposals('rpn-only', { dtype: 'float32', dims: [p.count, 4], data: p.boxesResized }, { dtype: 'float32', dims: [p.count], data: p.scores }, ref, c.reference('rpn.proposal_scores.0'));
    assert.ok(v.pass, v.detail);
    // original = resized × original/resized per axis (200×260 → 224×291)
    const [h, w] = [200, 260];
    const [rh, rw] = Array.from(c.reference('transform.image_sizes').data as BigInt64Array, Number) as [number, number];
    for (let i = 0; i < p.count * 4; i++) {
      const ratio = i % 2 === 0 ? Math.fround(w) / Math.fround(rw) : Math.fround(h) / Math.fround(rh);
      assert.ok(Math.abs(p.boxes[i]! - p.boxesResized[i]! * Math.fround(ratio)) < 1e-3, `coordinate ${i}`);
    }
  });
});
