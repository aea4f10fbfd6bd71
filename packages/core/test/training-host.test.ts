/**
 * The host side of train mode in core: torchvision's Matcher codes and low-quality ties, the
 * balanced sampler's sizes, box encoding, the training resize and the horizontal flip of targets,
 * and the RoI sample (GT appended, ascending order, injected samples checked).
 */
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import {
  BELOW_LOW_THRESHOLD,
  BETWEEN_THRESHOLDS,
  TargetError,
  boxIouFloat32,
  checkInjectedSample,
  encodeBox,
  flipTargets,
  int64Tensor,
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

/**
 * Detectron's +1 box convention (MODEL.LEGACY_PLUS_ONE), against hand-computed values and an
 * independent float64 reference written from Detectron's formulas (`bbox_overlaps`,
 * `bbox_transform_inv`, `flip_boxes`, `flip_keypoints`): a box [x1, x2] of integer pixel indices
 * is x2 - x1 + 1 pixels wide.
 */
describe('MODEL.LEGACY_PLUS_ONE (Detectron +1 widths)', () => {
  /** Detectron's IoU of two x1y1x2y2 boxes in float64. */
  const iouPlusOne = (a: readonly number[], b: readonly number[]): number => {
    const iw = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!) + 1;
    const ih = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!) + 1;
    if (iw <= 0 || ih <= 0) return 0;
    const area = (x: readonly number[]): number => (x[2]! - x[0]! + 1) * (x[3]! - x[1]! + 1);
    return (iw * ih) / (area(a) + area(b) - iw * ih);
  };
  /** Detectron's regression target of `gt` vs `ex` in float64. */
  const encodePlusOne = (gt: readonly number[], ex: readonly number[], w: readonly number[]): number[] => {
    const exW = ex[2]! - ex[0]! + 1;
    const exH = ex[3]! - ex[1]! + 1;
    const gW = gt[2]! - gt[0]! + 1;
    const gH = gt[3]! - gt[1]! + 1;
    const dx = gt[0]! + 0.5 * gW - (ex[0]! + 0.5 * exW);
    const dy = gt[1]! + 0.5 * gH - (ex[1]! + 0.5 * exH);
    return [(w[0]! * dx) / exW, (w[1]! * dy) / exH, w[2]! * Math.log(gW / exW), w[3]! * Math.log(gH / exH)];
  };

  it('IoU of integer boxes by hand: 10 x 10 boxes overlapping 5 x 5 pixels give 25 / 175', () => {
    const gt = f32(0, 0, 9, 9);
    const boxes = f32(5, 5, 14, 14, 0, 0, 9, 9, 10, 0, 19, 9, 9, 9, 20, 20);
    const plus = boxIouFloat32(gt, boxes, true);
    // [5, 14] vs [0, 9]: 5 shared pixels per side; a box touching at x = 9 shares one column.
    assert.deepEqual([...plus], [25 / 175, 1, 0, 1 / 243].map(Math.fround));
    // Without +1 the same numbers are torchvision's: 4 x 4 of 9 x 9, and touching boxes share nothing.
    assert.deepEqual([...boxIouFloat32(gt, boxes)], [16 / 146, 1, 0, 0].map(Math.fround));
  });

  it('IoU matches the float64 reference on random integer and fractional boxes', () => {
    const rand = seededRandom(7);
    const box = (): number[] => {
      const x1 = Math.floor(rand() * 40);
      const y1 = Math.floor(rand() * 40);
      const frac = rand() < 0.5 ? 0 : 0.25;
      return [x1, y1, x1 + Math.floor(rand() * 30) + frac, y1 + Math.floor(rand() * 30) + frac];
    };
    const gt = Array.from({ length: 5 }, box);
    const boxes = Array.from({ length: 40 }, box);
    const iou = boxIouFloat32(Float32Array.from(gt.flat()), Float32Array.from(boxes.flat()), true);
    let positive = 0;
    gt.forEach((g, i) =>
      boxes.forEach((b, j) => {
        const want = iouPlusOne(g, b);
        if (want > 0) positive++;
        assert.ok(Math.abs(iou[i * boxes.length + j]! - want) <= 1e-6, `gt ${g} box ${b}: ${iou[i * boxes.length + j]} vs ${want}`);
      }),
    );
    assert.ok(positive > 10, 'the random boxes overlap often enough to test something');
  });

  it('encoding by hand: anchor [0, 0, 9, 9] (10 px), GT [2, 3, 13, 11] (12 x 9 px)', () => {
    const out = new Float32Array(4);
    encodeBox(f32(2, 3, 13, 11), 0, f32(0, 0, 9, 9), 0, [10, 10, 5, 5], out, 0, true);
    // Centres: anchor (5, 5), GT (2 + 6, 3 + 4.5) = (8, 7.5).
    const want = [(10 * 3) / 10, (10 * 2.5) / 10, 5 * Math.log(12 / 10), 5 * Math.log(9 / 10)];
    out.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-6, `delta ${i}: ${v} vs ${want[i]}`));
    // torchvision's (no +1) is another target for the same boxes.
    const tv = new Float32Array(4);
    encodeBox(f32(2, 3, 13, 11), 0, f32(0, 0, 9, 9), 0, [10, 10, 5, 5], tv, 0);
    assert.ok(Math.abs(tv[2]! - 5 * Math.log(11 / 9)) <= 1e-6);
  });

  it('encoding matches the float64 reference on random boxes', () => {
    const rand = seededRandom(11);
    for (let n = 0; n < 50; n++) {
      const ex = [rand() * 50, rand() * 50];
      ex.push(ex[0]! + rand() * 40, ex[1]! + rand() * 40);
      const gt = [ex[0]! + (rand() - 0.5) * 10, ex[1]! + (rand() - 0.5) * 10];
      gt.push(gt[0]! + rand() * 40, gt[1]! + rand() * 40);
      const ef = Float32Array.from(ex);
      const gf = Float32Array.from(gt);
      const out = new Float32Array(4);
      encodeBox(gf, 0, ef, 0, [1, 1, 1, 1], out, 0, true);
      const want = encodePlusOne([...gf], [...ef], [1, 1, 1, 1]);
      out.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)), `case ${n} delta ${i}: ${v} vs ${want[i]}`));
    }
  });

  it('flip: x -> W - x - 1 for boxes and keypoints; the bitmap mirror keeps pixel x at W - 1 - x', () => {
    const config = loadConfig({ layers: [{ MODEL: { LEGACY_PLUS_ONE: true, MASK_ON: true, KEYPOINTS_ON: true, NUM_CLASSES: 3 }, KRCNN: { NUM_KEYPOINTS: 3, FLIP_MAP: [0, 2, 1] } }] });
    // Box of pixel columns 0..1 in a 4-pixel-wide image, mask set on column 0.
    const t = { boxes: f32(0, 0, 1, 1), labels: Int32Array.of(1), masks: Uint8Array.from([1, 0, 0, 0, 1, 0, 0, 0]), keypoints: f32(1, 1, 2, 0, 0, 0, 3, 1, 1) };
    const flipped = flipTargets(t, [2, 4], config);
    // Columns 0..1 mirror to columns 2..3: the box is [2, 3], where the mask's pixel now is.
    assert.deepEqual([...flipped.boxes], [2, 0, 3, 1]);
    assert.deepEqual([...flipped.masks!.subarray(0, 4)], [0, 0, 0, 1]);
    // Keypoint 0 (x 1) -> x 2; keypoint 1 takes keypoint 2's (x 3 -> 0); keypoint 2 takes the unlabeled one.
    assert.deepEqual([...flipped.keypoints!], [2, 1, 2, 0, 1, 1, 0, 0, 0]);
  });

  it('RoI matching uses the +1 IoU', () => {
    // Proposal [0, 0, 9, 9] vs GT [0, 0, 9, 13]: 100 / 140 (0.714) with +1, 81 / 117 (0.692) without.
    const gt = { boxes: f32(0, 0, 9, 13), labels: Int32Array.of(1), size: [40, 40] as const };
    const layer = { TRAIN: { FG_THRESH: 0.7, BG_THRESH_HI: 0.7, ADD_GT_PROPOSALS: false } };
    const sample = (legacy: boolean): number => {
      const config = loadConfig({ layers: [{ ...layer, MODEL: { LEGACY_PLUS_ONE: legacy } }] });
      return sampleRois([f32(0, 0, 9, 9)], [gt], config, { rand: seededRandom(1) }).samples[0]!.labels[0]!;
    };
    assert.equal(sample(true), 1);
    assert.equal(sample(false), 0);
  });
});

test('int64Tensor: int32-range values (the fast path), wider integers and negatives are exact; non-integers fail', () => {
  const values = [0, 1, -1, -2, 2147483647, -2147483648, 2147483648, -(2 ** 40), 2 ** 53 - 1, 123456789];
  const t = int64Tensor(values, [2, 5]);
  assert.deepEqual(t.dims, [2, 5]);
  assert.deepEqual([...t.data], values.map((v) => BigInt(v)));
  assert.throws(() => int64Tensor([1.5]), RangeError);
});
