/**
 * Typed extras in the runtime: the toy post-processors store core's MaskSet / KeypointSet like the
 * real heads, and readMasks / readKeypoints refuse results that do not belong to their image.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DETECTION_OUTPUTS, EXTRA_KEYS, type ImageDetections, type MaskSet, decodeRle, getExtra, hostTensor, keypointSet, setExtra } from '@rcnn/core';
import { InferenceError, readKeypoints, readMasks } from '../src/index.js';
import { encode, pattern, toyDetector } from './helpers.js';

function detections(d: number, [h, w]: [number, number] = [4, 6]): ImageDetections {
  return {
    imageIndex: 3,
    originalSize: [h, w],
    resizedSize: [h, w],
    boxes: new Float32Array(4 * d),
    boxesResized: new Float32Array(4 * d),
    scores: new Float32Array(d),
    labels: new Int32Array(d),
    extras: new Map(),
  };
}

describe('toy post-processors store typed results', () => {
  it('a MaskSet whose crop, binary, tensors, RLE and area agree, and a KeypointSet per image', async () => {
    const { detector } = await toyDetector({ toy: { mask: true, keypoints: true } });
    try {
      const outcomes = await detector.predict([await encode(pattern(60, 40, 2), 60, 40, 'png'), await encode(pattern(30, 50, 3), 30, 50, 'png')], { keepOutputs: true, batchSize: 2 });
      let foreground = 0;
      for (const o of outcomes) {
        assert.ok(o.ok, o.ok ? '' : o.error.message);
        const r = o.result;
        const det = r.detections!;
        const d = det.scores.length;
        assert.ok(d > 0, 'the toy detects something');
        const masks = readMasks(det);
        assert.ok(masks, 'masks');
        assert.equal(masks, getExtra(det, EXTRA_KEYS.masks));
        assert.deepEqual([masks.count, masks.height, masks.width, masks.threshold], [d, r.height, r.width, detector.config.MRCNN.THRESH_BINARIZE]);
        const plane = r.height * r.width;
        const tensor = masks.binaryTensor();
        assert.deepEqual(tensor.dims, [d, 1, r.height, r.width]);
        for (let i = 0; i < d; i++) {
          const { x, y, width, height, probs } = masks.crop(i);
          const expected = new Uint8Array(plane);
          for (let row = 0; row < height; row++) for (let c = 0; c < width; c++) expected[(y + row) * r.width + x + c] = probs[row * width + c]! > masks.threshold ? 1 : 0;
          assert.deepEqual(masks.binary(i), expected, `binary ${i}`);
          assert.deepEqual(tensor.data.subarray(i * plane, (i + 1) * plane), expected, `binaryTensor ${i}`);
          assert.deepEqual(decodeRle(masks.rle(i)), expected, `rle ${i}`);
          const area = expected.reduce((a, v) => a + v, 0);
          assert.equal(masks.area(i), area);
          foreground += area;
        }
        // The M x M probabilities are the image's rows of det.mask_probs.
        const [start, end] = r.batch!.rows![r.batchPosition]!;
        const all = r.batch!.outputs.get(DETECTION_OUTPUTS.maskProbs)!;
        const m = all.dims[3]!;
        assert.deepEqual(masks.maskProbsTensor().dims, [d, 1, m, m]);
        assert.deepEqual(masks.maskProbsTensor().data, (all.data as Float32Array).slice(start * m * m, end * m * m));
        const kp = readKeypoints(det);
        assert.ok(kp, 'keypoints');
        assert.deepEqual([kp.count, kp.numKeypoints, kp.keypoints.length, kp.keypointsResized.length, kp.scores.length], [d, 5, d * 15, d * 15, d * 5]);
        assert.deepEqual([...det.extras.keys()].sort(), ['keypoints', 'masks']);
      }
      assert.ok(foreground > 0, 'some mask has foreground');
    } finally {
      await detector.close();
    }
  });
});

describe('readMasks / readKeypoints', () => {
  const emptyKeypoints = (d: number, k: number): ReturnType<typeof keypointSet> =>
    keypointSet(d, k, { keypoints: new Float32Array(d * k * 3), keypointsResized: new Float32Array(d * k * 3), scores: new Float32Array(d * k) });

  it('give undefined when no post-processor added results', () => {
    assert.equal(readMasks(detections(2)), undefined);
    assert.equal(readKeypoints(detections(2)), undefined);
  });

  it('return the stored sets when they fit the image', () => {
    const det = detections(2);
    const kp = emptyKeypoints(2, 3);
    setExtra(det, EXTRA_KEYS.keypoints, kp);
    assert.equal(readKeypoints(det), kp);
  });

  it('refuse masks of another detection count or image size, naming the image and the sizes', () => {
    const det = detections(2);
    const fake = { count: 3, height: 4, width: 6, threshold: 0.5 } as const;
    const methods = { maskProbsTensor: () => hostTensor('float32', [0], new Float32Array(0)), binaryTensor: () => hostTensor('uint8', [0], new Uint8Array(0)), binary: () => new Uint8Array(0), crop: () => ({ x: 0, y: 0, width: 0, height: 0, probs: new Float32Array(0) }), rle: () => ({ size: [4, 6] as const, counts: '' }), area: () => 0 };
    setExtra(det, EXTRA_KEYS.masks, { ...fake, ...methods } satisfies MaskSet);
    assert.throws(() => readMasks(det), (e: unknown) => e instanceof InferenceError && /image 3: .*"masks" result has 3 masks of 4 x 6, expected 2 of 4 x 6/.test(e.message));
    setExtra(det, EXTRA_KEYS.masks, { ...fake, count: 2, width: 7, ...methods });
    assert.throws(() => readMasks(det), /has 2 masks of 4 x 7, expected 2 of 4 x 6/);
    setExtra(det, EXTRA_KEYS.masks, { ...fake, count: 2, ...methods });
    assert.ok(readMasks(det));
  });

  it('refuse a value stored under the masks key without setExtra (e.g. a raw tensor)', () => {
    const det = detections(1);
    det.extras.set('masks', hostTensor('uint8', [1, 1, 4, 6], new Uint8Array(24)));
    assert.throws(() => readMasks(det), (e: unknown) => e instanceof InferenceError && /is not a MaskSet \(no maskProbsTensor, binaryTensor, binary, crop, rle, area\)/.test(e.message));
  });

  it('refuse keypoints of another detection count or with arrays of the wrong size', () => {
    const det = detections(2);
    setExtra(det, EXTRA_KEYS.keypoints, emptyKeypoints(1, 3));
    assert.throws(() => readKeypoints(det), (e: unknown) => e instanceof InferenceError && /has 1 detections x 3 keypoints, expected 2 detections/.test(e.message));
    setExtra(det, EXTRA_KEYS.keypoints, { ...emptyKeypoints(2, 3), scores: new Float32Array(5) });
    assert.throws(() => readKeypoints(det), /field scores is 5 values, expected a Float32Array of 2 x 3 x 1/);
    det.extras.set('keypoints', new Float32Array(18));
    assert.throws(() => readKeypoints(det), (e: unknown) => e instanceof InferenceError && /is not a KeypointSet/.test(e.message));
  });
});
