/**
 * Parity with torchvision on fixtures/parity/maskrcnn_tiny: the mask head on the reference
 * features and detections, then the host paste into the original 200 x 260 image.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { EXTRA_KEYS, type HostTensor, getExtra } from '@rcnn/core';
import { compareDense, compareMasks } from '@rcnn/testing';
import { InstanceMasks, PasteMasks } from '../src/index.js';
import { batchFeatures, buildMaskHeadModel, config, imageDetections, parity, referenceDetections, runMaskHead } from './harness.js';

const ORIGINAL: readonly [number, number] = [200, 260];

describe('mask head parity (maskrcnn_tiny)', () => {
  let outputs: Map<string, HostTensor>;

  before(async () => {
    outputs = await runMaskHead(buildMaskHeadModel(), batchFeatures([1]), referenceDetections());
  });

  it('roi.mask_logits matches [D,C,M,M] within 1e-4 relative', () => {
    const v = compareDense('roi.mask_logits', outputs.get('roi.mask_logits')!, parity.reference('roi.mask_logits'));
    console.log(`  ${v.name}: ${v.detail}`);
    assert.ok(v.pass, v.detail);
  });

  it('det.mask_probs.0 matches [D,1,M,M] within 1e-4', () => {
    const v = compareDense('det.mask_probs.0', outputs.get('det.mask_probs')!, parity.reference('det.mask_probs.0'));
    console.log(`  ${v.name}: ${v.detail}`);
    assert.ok(v.pass, v.detail);
  });

  it('pasted det.masks.0 has IoU >= 0.99 per detection', () => {
    const image = imageDetections(0, ORIGINAL, parity.reference('det.boxes.0').data as Float32Array, parity.reference('det.labels.0').data as BigInt64Array);
    new PasteMasks().apply(outputs, [image], [[0, image.boxes.length / 4]], config);
    const masks = getExtra(image, EXTRA_KEYS.masks);
    assert.ok(masks instanceof InstanceMasks);
    const v = compareMasks('det.masks.0', masks.binaryTensor(), parity.reference('det.masks.0'));
    console.log(`  ${v.name}: ${v.detail}`);
    assert.ok(v.pass, v.detail);
    // The 28x28 probabilities the masks carry are the head's output (for det.mask_probs dumps).
    assert.deepEqual(masks.maskProbsTensor().data, outputs.get('det.mask_probs')!.data);
  });

  it("pasting torchvision's own mask_probs reproduces det.masks.0 pixel for pixel", () => {
    // Isolates the paste from the head's float differences: same input, so the same bits.
    const masks = InstanceMasks.paste(parity.reference('det.mask_probs.0').data as Float32Array, parity.reference('det.boxes.0').data as Float32Array, {
      resolution: config.MRCNN.RESOLUTION,
      padding: config.MRCNN.PASTE_PADDING,
      threshold: config.MRCNN.THRESH_BINARIZE,
      imageHeight: ORIGINAL[0],
      imageWidth: ORIGINAL[1],
    });
    const ours = masks.binaryTensor();
    const ref = parity.reference('det.masks.0');
    assert.deepEqual(ours.dims, ref.dims);
    let differing = 0;
    let foreground = 0;
    for (let i = 0; i < ref.data.length; i++) {
      if (ours.data[i] !== ref.data[i]) differing++;
      if (ref.data[i]) foreground++;
    }
    console.log(`  paste of reference probs: ${differing} of ${ref.data.length} pixels differ (${foreground} foreground)`);
    assert.ok(foreground > 0, 'the reference masks are not empty');
    assert.equal(differing, 0);
  });
});
