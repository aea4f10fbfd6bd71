/**
 * The host side of train mode in core: torchvision's Matcher codes and low-quality ties, the
 * balanced sampler's sizes, box encoding, the training resize and the horizontal flip of targets,
 * and the RoI sample (GT appended, ascending order, injected samples checked).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BELOW_LOW_THRESHOLD,
  BETWEEN_THRESHOLDS,
  TargetError,
  boxIouFloat32,
  checkInjectedSample,
  encodeBox,
  flipTargets,
  loadConfig,
  matchBoxes,
  resizeTargets,
  sampleBalanced,
  sampleRois,
  seededRandom,
  validateTargets,
} from '../src/index.js';

const f32 = (...v: number[]): Float32Array => Float32Array.from(v);

describe('Matcher (torchvision semantics)', () => {
  it('codes -1 below the low threshold, -2 between, the GT index above; first GT on ties', () => {
    const gt = f32(0, 0, 10, 10, 0, 0, 10, 10);
    const boxes = f32(0, 0, 10, 10, 0, 0, 10, 5.5, 0, 0, 10, 2, 50, 50, 60, 60);
    const iou = boxIouFloat32(gt, boxes);
    const m = matchBoxes(iou, 2, 4, { high: 0.7, low: 0.3, allowLowQualityMatches: false });
    assert.deepEqual([...m], [0, BETWEEN_THRESHOLDS, BELOW_LOW_THRESHOLD, BELOW_LOW_THRESHOLD]);
  });

  it('low-quality matches give every GT all of its tied best boxes back', () => {
    // A 4x4 GT inside two same-size boxes: both have the same (low) IoU, both become its matches.
    const gt = f32(2, 2, 6, 6);
    const boxes = f32(0, 0, 16, 16, 0, 0, 16, 16, 100, 100, 116, 116);
    const iou = boxIouFloat32(gt, boxes);
    assert.equal(iou[0], iou[1]);
    const without = matchBoxes(iou, 1, 3, { high: 0.7, low: 0.3, allowLowQualityMatches: false });
    const withLq = matchBoxes(iou, 1, 3, { high: 0.7, low: 0.3, allowLowQualityMatches: true });
    assert.deepEqual([...without], [-1, -1, -1]);
    assert.deepEqual([...withLq], [0, 0, -1]);
  });

  it('an image without GT has every box background', () => {
    assert.deepEqual([...matchBoxes(new Float32Array(0), 0, 3, { high: 0.7, low: 0.3, allowLowQualityMatches: true })], [-1, -1, -1]);
  });
});

describe('balanced sampler', () => {
  it('takes min(#pos, batch * fraction) positives and fills up with negatives, ascending', () => {
    const labels = Int8Array.from({ length: 100 }, (_, i) => (i < 10 ? 1 : i < 90 ? 0 : -1));
    const s = sampleBalanced(labels, { batchSizePerImage: 16, positiveFraction: 0.25 }, seededRandom(1));
    assert.equal(s.positive.length, 4);
    assert.equal(s.negative.length, 12);
    assert.ok(s.positive.every((i) => labels[i] === 1) && s.negative.every((i) => labels[i] === 0));
    assert.deepEqual([...s.positive], [...s.positive].sort((a, b) => a - b));
    const few = sampleBalanced(Int8Array.from([1, 0, 0, -1]), { batchSizePerImage: 256, positiveFraction: 0.5 }, seededRandom(1));
    assert.deepEqual([[...few.positive], [...few.negative]], [[0], [1, 2]]);
  });

  it('checks an injected sample against the run', () => {
    const labels = Int8Array.from([1, 0, -1]);
    assert.deepEqual([...checkInjectedSample({ positive: Int32Array.from([0]), negative: Int32Array.from([1]) }, labels, 'x').negative], [1]);
    assert.throws(() => checkInjectedSample({ positive: Int32Array.from([2]), negative: new Int32Array(0) }, labels, 'x'), TargetError);
    assert.throws(() => checkInjectedSample({ positive: new Int32Array(0), negative: Int32Array.from([7]) }, labels, 'x'), /out of range/);
  });
});

describe('box encoding', () => {
  it('is torchvision BoxCoder.encode with weights', () => {
    const out = new Float32Array(4);
    encodeBox(f32(2, 4, 12, 24), 0, f32(0, 0, 10, 20), 0, [10, 10, 5, 5], out, 0);
    assert.deepEqual([...out].map((v) => Math.round(v * 1e6) / 1e6), [2, 2, 0, 0]);
  });
});

describe('targets', () => {
  const config = loadConfig({ layers: [{ MODEL: { MASK_ON: true, KEYPOINTS_ON: true, NUM_CLASSES: 3 }, KRCNN: { NUM_KEYPOINTS: 3, FLIP_MAP: [0, 2, 1] } }] });

  it('resize: boxes and keypoints by f32(w\'/w), masks nearest with torchvision source indices', () => {
    const masks = Uint8Array.from({ length: 2 * 3 }, (_, i) => i % 3);
    const t = { boxes: f32(0, 0, 3, 2), labels: Int32Array.of(1), masks, keypoints: f32(3, 2, 2, 1, 1, 0, 0, 0, 0) };
    const r = resizeTargets(t, [2, 3], [4, 5], 0);
    assert.deepEqual([...r.boxes], [0, 0, Math.fround(3 * Math.fround(5 / 3)), 4]);
    // Source column min(floor(x * f32(3 / 5)), 2) for x = 0..4: 0, 0, 1, 1, 2.
    assert.deepEqual([...r.masks!.subarray(0, 5)], [0, 0, 1, 1, 2]);
    assert.equal(r.keypoints![2], 2);
  });

  it('flip: x -> W - x, boxes swapped, masks mirrored, keypoints renumbered by KRCNN.FLIP_MAP', () => {
    const t = { boxes: f32(1, 0, 3, 2), labels: Int32Array.of(1), masks: Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0]), keypoints: f32(1, 1, 2, 2, 1, 1, 0, 0, 0) };
    const flipped = flipTargets(t, [2, 4], config);
    assert.deepEqual([...flipped.boxes], [1, 0, 3, 2]);
    assert.deepEqual([...flipped.masks!.subarray(0, 4)], [0, 0, 0, 1]);
    // Keypoint 1 takes keypoint 2's place (unlabeled: stays 0,0,0) and keypoint 2 keypoint 1's.
    assert.deepEqual([...flipped.keypoints!], [3, 1, 2, 0, 0, 0, 2, 1, 1]);
  });

  it('validation names the image and field', () => {
    const ok = { boxes: f32(0, 0, 2, 2), labels: Int32Array.of(2), masks: new Uint8Array(4 * 4), keypoints: new Float32Array(9) };
    validateTargets(ok, [4, 4], config, 0);
    assert.throws(() => validateTargets({ ...ok, labels: Int32Array.of(3) }, [4, 4], config, 1), /image 1 labels\[0\]: 3 is outside 1\.\.2/);
    assert.throws(() => validateTargets({ ...ok, boxes: f32(2, 0, 2, 2) }, [4, 4], config, 0), /no area/);
    assert.throws(() => validateTargets({ ...ok, keypoints: new Float32Array(6) }, [4, 4], config, 0), /expected 1 x 3 x 3/);
  });
});

describe('RoI sampling', () => {
  it('appends the GT, matches without low-quality matches and keeps the sample in ascending order', () => {
    const config = loadConfig({ layers: [{ TRAIN: { BATCH_SIZE_PER_IM: 4, FG_FRACTION: 0.5 } }] });
    const proposals = f32(0, 0, 10, 10, 50, 50, 60, 60, 0, 0, 9, 10, 70, 70, 80, 80);
    const targets = [{ boxes: f32(0, 0, 10, 10), labels: Int32Array.of(2), size: [100, 100] as const }];
    const { samples, host } = sampleRois([proposals], targets, config, { rand: seededRandom(3) });
    const s = samples[0]!;
    assert.equal(s.rows.length, 20);
    assert.deepEqual([...s.labels], [2, 0, 2, 0, 2]);
    assert.equal(s.sampled.length, 4);
    assert.deepEqual([...s.sampled], [...s.sampled].sort((a, b) => a - b));
    assert.ok(s.positives.every((r) => s.labels[r]! > 0));
    assert.equal(host.feeds['train.roi.boxes']!.dims[0], 4);
  });
});
