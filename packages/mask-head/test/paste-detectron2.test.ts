/**
 * Detectron2's paste_masks_in_image (MRCNN.PASTE_METHOD detectron2): Detectron2's own mask
 * probabilities and boxes (fixtures/d2 reference) pasted here give Detectron2's binary masks.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeEntry, readSafetensorsFile } from '@rcnn/core';
import { findRepoRoot } from '@rcnn/testing';
import { InstanceMasks } from '../src/index.js';
import { inclusiveThreshold } from '../src/paste-detectron2.js';

const reference = readSafetensorsFile(join(findRepoRoot(), 'fixtures', 'd2', 'd2_maskrcnn_R50FPN_tiny_pub', 'reference.safetensors'));
const tensor = (name: string) => decodeEntry(reference.entries.get(name)!);

describe('Detectron2 mask paste', () => {
  for (const index of [0, 1]) {
    it(`image_${index}: pastes Detectron2's probabilities into Detectron2's masks`, () => {
      const probs = tensor(`det.mask_probs.${index}`);
      const boxes = tensor(`det.boxes.${index}`).data as Float32Array;
      const expected = tensor(`det.masks.${index}`);
      const [d, , h, w] = expected.dims as [number, unknown, number, number];
      const masks = InstanceMasks.pasteDetectron2(probs.data as Float32Array, boxes, { resolution: 28, padding: 0, threshold: 0.5, imageHeight: h, imageWidth: w });
      const got = masks.binaryTensor();
      assert.deepEqual(got.dims, expected.dims);
      let differ = 0;
      const a = got.data as Uint8Array;
      const b = expected.data as Uint8Array;
      for (let p = 0; p < a.length; p++) if (a[p] !== b[p]) differ++;
      assert.equal(differ, 0, `${differ} of ${d * h * w} pixels differ`);
      // The same masks through the torchvision paste differ (the reason for the key).
      const tv = InstanceMasks.paste(probs.data as Float32Array, boxes, { resolution: 28, padding: 1, threshold: 0.5, imageHeight: h, imageWidth: w }).binaryTensor().data as Uint8Array;
      assert.ok(tv.some((v, p) => v !== b[p]));
    });
  }

  it('binarises inclusively (>= threshold) through the largest float32 below it', () => {
    const t = inclusiveThreshold(0.5);
    assert.ok(t < 0.5 && Math.fround(t) === t && 0.5 > t);
    assert.equal(Math.fround(0.5 - 2 ** -25), t);
  });
});
