/** Typed extras: keys, get/set, the keypoint set's checks, and the type errors the keys give. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXTRA_KEYS, type ImageDetections, InputError, type KeypointSet, type MaskSet, extraKey, getExtra, keypointSet, setExtra } from '../src/index.js';

function detections(): ImageDetections {
  return {
    imageIndex: 0,
    originalSize: [4, 6],
    resizedSize: [8, 12],
    boxes: new Float32Array(0),
    boxesResized: new Float32Array(0),
    scores: new Float32Array(0),
    labels: new Int32Array(0),
    extras: new Map(),
  };
}

describe('extra keys', () => {
  it('are plain strings at run time, so the extras map stays an ordinary Map<string, unknown>', () => {
    assert.equal(EXTRA_KEYS.masks, 'masks');
    assert.equal(EXTRA_KEYS.keypoints, 'keypoints');
    assert.equal(extraKey<number>('my-plugin.depth'), 'my-plugin.depth');
  });

  it('getExtra returns what setExtra stored, and undefined for a key nobody set', () => {
    const det = detections();
    const kp = keypointSet(0, 17, { keypoints: new Float32Array(0), keypointsResized: new Float32Array(0), scores: new Float32Array(0) });
    assert.equal(getExtra(det, EXTRA_KEYS.keypoints), undefined);
    setExtra(det, EXTRA_KEYS.keypoints, kp);
    const back: KeypointSet | undefined = getExtra(det, EXTRA_KEYS.keypoints);
    assert.equal(back, kp);
    assert.equal(det.extras.get('keypoints'), kp);
    assert.equal(getExtra(det, EXTRA_KEYS.masks), undefined);
    const depth = extraKey<Float32Array>('my-plugin.depth');
    setExtra(det, depth, Float32Array.of(1, 2));
    assert.deepEqual(getExtra(det, depth), Float32Array.of(1, 2));
    assert.deepEqual([...det.extras.keys()].sort(), ['keypoints', 'my-plugin.depth']);
  });

  it('tie a key to the type of its value (compile-time checks)', () => {
    const det = detections();
    // Each line below must fail to compile; tsc reports an unused @ts-expect-error otherwise.
    // @ts-expect-error a Float32Array is not a KeypointSet
    setExtra(det, EXTRA_KEYS.keypoints, new Float32Array(3));
    // @ts-expect-error a plain string is not a typed key
    getExtra(det, 'masks');
    // @ts-expect-error the masks key gives a MaskSet, not a KeypointSet
    const wrong: KeypointSet | undefined = getExtra(det, EXTRA_KEYS.masks);
    const right: MaskSet | undefined = getExtra(det, EXTRA_KEYS.masks);
    assert.equal(wrong, undefined);
    assert.equal(right, undefined);
  });
});

describe('keypointSet', () => {
  it('keeps the arrays and counts the detections', () => {
    const keypoints = new Float32Array(2 * 3 * 3).fill(1);
    const keypointsResized = new Float32Array(2 * 3 * 3).fill(2);
    const scores = new Float32Array(2 * 3).fill(3);
    const set = keypointSet(2, 3, { keypoints, keypointsResized, scores });
    assert.deepEqual(set, { count: 2, numKeypoints: 3, keypoints, keypointsResized, scores });
    assert.equal(set.keypoints, keypoints);
  });

  it('rejects arrays of the wrong size, naming the array and the expected size', () => {
    const ok = { keypoints: new Float32Array(18), keypointsResized: new Float32Array(18), scores: new Float32Array(6) };
    assert.throws(() => keypointSet(2, 3, { ...ok, keypoints: new Float32Array(17) }), (e: unknown) => e instanceof InputError && /keypoints has 17 values, expected 2 x 3 x 3 = 18/.test(e.message));
    assert.throws(() => keypointSet(2, 3, { ...ok, keypointsResized: new Float32Array(6) }), { name: 'InputError', message: /keypointsResized has 6 values/ });
    assert.throws(() => keypointSet(2, 3, { ...ok, scores: new Float32Array(18) }), { name: 'InputError', message: /scores has 18 values, expected 2 x 3 x 1 = 6/ });
    assert.throws(() => keypointSet(-1, 3, ok), { name: 'InputError', message: /non-negative integers/ });
  });
});
