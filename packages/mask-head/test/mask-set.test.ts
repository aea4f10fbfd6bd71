/**
 * InstanceMasks as core's MaskSet: what `paste_masks` stores under EXTRA_KEYS.masks, and the
 * views every reader of that key relies on agreeing with each other (crop, binary, tensor, RLE,
 * area).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXTRA_KEYS, type ImageDetections, type MaskSet, decodeRle, getExtra, hostTensor, loadConfig, rleArea } from '@rcnn/core';
import { InstanceMasks, PasteMasks } from '../src/index.js';

const M = 28;
const H = 50;
const W = 70;

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function image(boxes: readonly number[]): ImageDetections {
  const d = boxes.length / 4;
  return {
    imageIndex: 0,
    originalSize: [H, W],
    resizedSize: [H, W],
    boxes: Float32Array.from(boxes),
    boxesResized: Float32Array.from(boxes),
    scores: new Float32Array(d).fill(0.9),
    labels: new Int32Array(d).fill(1),
    extras: new Map(),
  };
}

describe('paste_masks stores a MaskSet under EXTRA_KEYS.masks', () => {
  // Inside, past the top-left corner, past the bottom-right corner, and outside the image.
  const boxes = [10.5, 5.2, 40.3, 30.9, -12, -8, 20, 15, 55, 35, 90, 70, 100, 60, 120, 80];
  const d = boxes.length / 4;
  const r = rng(3);
  const probs = Float32Array.from({ length: d * M * M }, () => r());
  const config = loadConfig();
  const det = image(boxes);
  new PasteMasks().apply(new Map([['det.mask_probs', hostTensor('float32', [d, 1, M, M], probs)]]), [det], [[0, d]], config);
  const masks: MaskSet | undefined = getExtra(det, EXTRA_KEYS.masks);

  it('an InstanceMasks of the image size and detections, with MRCNN.THRESH_BINARIZE', () => {
    assert.ok(masks instanceof InstanceMasks);
    assert.deepEqual([masks.count, masks.height, masks.width, masks.threshold], [d, H, W, config.MRCNN.THRESH_BINARIZE]);
    assert.deepEqual(masks.maskProbsTensor().dims, [d, 1, M, M]);
    assert.deepEqual(masks.maskProbsTensor().data, probs);
  });

  it('crop, binary, binaryTensor, rle and area describe the same mask', () => {
    assert.ok(masks);
    const tensor = masks.binaryTensor();
    assert.deepEqual(tensor.dims, [d, 1, H, W]);
    let foreground = 0;
    for (let i = 0; i < d; i++) {
      const { x, y, width, height, probs: crop } = masks.crop(i);
      assert.equal(crop.length, width * height);
      const expected = new Uint8Array(H * W);
      for (let row = 0; row < height; row++) for (let c = 0; c < width; c++) expected[(y + row) * W + x + c] = crop[row * width + c]! > masks.threshold ? 1 : 0;
      const binary = masks.binary(i);
      assert.deepEqual(binary, expected, `binary ${i}`);
      assert.deepEqual(tensor.data.subarray(i * H * W, (i + 1) * H * W), expected, `binaryTensor row ${i}`);
      const rle = masks.rle(i);
      assert.deepEqual(rle.size, [H, W]);
      assert.deepEqual(decodeRle(rle), expected, `rle ${i}`);
      const area = expected.reduce((a, v) => a + v, 0);
      assert.equal(masks.area(i), area);
      assert.equal(rleArea(rle), area);
      foreground += area;
    }
    assert.ok(foreground > 0, 'some detection has foreground pixels');
    assert.equal(masks.crop(3).width * masks.crop(3).height, 0, 'the box outside the image has an empty crop');
    assert.throws(() => masks.crop(d), RangeError);
  });
});
