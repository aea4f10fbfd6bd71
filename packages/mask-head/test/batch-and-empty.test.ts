/**
 * Batches and empty inputs: per-image results of a batch of two equal single-image runs, and
 * zero detections through the graph and the paste.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { EXTRA_KEYS, type HostTensor, getExtra } from '@rcnn/core';
import { compareDense } from '@rcnn/testing';
import { InstanceMasks, PasteMasks } from '../src/index.js';
import { type HostDetections, batchFeatures, buildMaskHeadModel, cat, config, imageDetections, parity, referenceDetections, runMaskHead } from './harness.js';

const M = config.MRCNN.RESOLUTION;
const C = config.MODEL.NUM_CLASSES;

/** Rows `start..end` of a [D,…] tensor. */
function rows(t: HostTensor, start: number, end: number): HostTensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  return { dtype: t.dtype, dims: [end - start, ...t.dims.slice(1)], data: (t.data as Float32Array).slice(start * per, end * per) } as HostTensor;
}

function pick(det: HostDetections, indices: readonly number[], batchIndex: number): HostDetections {
  return {
    boxes: Float32Array.from(indices.flatMap((i) => Array.from(det.boxes.subarray(4 * i, 4 * i + 4)))),
    labels: BigInt64Array.from(indices.map((i) => det.labels[i])),
    batchIndex: new BigInt64Array(indices.length).fill(BigInt(batchIndex)),
  };
}

describe('batch of two images', () => {
  const model = buildMaskHeadModel();
  const ref = referenceDetections();
  // Image 1 has other features (scaled by 0.5) and other detections (every other one, reversed),
  // so any mixing of images or rows shows.
  const second = [14, 12, 10, 8, 6, 4, 2, 0];
  const all = [...Array(ref.labels.length).keys()];
  let batch: Map<string, HostTensor>;
  let single0: Map<string, HostTensor>;
  let single1: Map<string, HostTensor>;

  before(async () => {
    const d0 = pick(ref, all, 0);
    const d1 = pick(ref, second, 1);
    batch = await runMaskHead(model, batchFeatures([1, 0.5]), {
      boxes: cat([d0.boxes, d1.boxes]),
      labels: cat([d0.labels, d1.labels]),
      batchIndex: cat([d0.batchIndex, d1.batchIndex]),
    });
    single0 = await runMaskHead(model, batchFeatures([1]), d0);
    single1 = await runMaskHead(model, batchFeatures([0.5]), pick(ref, second, 0));
  });

  it('each image gets the mask probabilities of its own single-image run', () => {
    const d0 = all.length;
    const probs = batch.get('det.mask_probs')!;
    assert.deepEqual(probs.dims, [d0 + second.length, 1, M, M]);
    for (const [name, single, start, end] of [
      ['image 0', single0, 0, d0],
      ['image 1', single1, d0, d0 + second.length],
    ] as const) {
      const v = compareDense(name, rows(probs, start, end), single.get('det.mask_probs')!, 1e-6);
      assert.ok(v.pass, `${name}: ${v.detail}`);
      const l = compareDense(name, rows(batch.get('roi.mask_logits')!, start, end), single.get('roi.mask_logits')!, 1e-6);
      assert.ok(l.pass, `${name} logits: ${l.detail}`);
    }
    // Image 0 is the reference image, so it must also match torchvision.
    const v = compareDense('det.mask_probs.0', rows(probs, 0, d0), parity.reference('det.mask_probs.0'));
    assert.ok(v.pass, v.detail);
    // Halving the features changes the masks: the test would notice images being swapped.
    const swapped = compareDense('swap', rows(probs, d0, d0 + second.length), rows(single0.get('det.mask_probs')!, 0, second.length), 1e-3);
    assert.equal(swapped.pass, false);
  });

  it('the paste keeps images apart (different original sizes)', () => {
    const boxes = parity.reference('det.boxes.0').data as Float32Array;
    const labels = parity.reference('det.labels.0').data as BigInt64Array;
    const d0 = all.length;
    // Image 1: half the original size, its boxes halved.
    const boxes1 = Float32Array.from(second.flatMap((i) => Array.from(boxes.subarray(4 * i, 4 * i + 4), (v) => v / 2)));
    const images = [imageDetections(0, [200, 260], boxes, labels), imageDetections(1, [100, 130], boxes1, second.map((i) => labels[i]!))];
    new PasteMasks().apply(batch, images, [
      [0, d0],
      [d0, d0 + second.length],
    ], config);
    const [m0, m1] = [getExtra(images[0]!, EXTRA_KEYS.masks)!, getExtra(images[1]!, EXTRA_KEYS.masks)!];
    assert.deepEqual(m0.binaryTensor().dims, [d0, 1, 200, 260]);
    assert.deepEqual(m1.binaryTensor().dims, [second.length, 1, 100, 130]);
    const probs = batch.get('det.mask_probs')!;
    const opts = { resolution: M, padding: config.MRCNN.PASTE_PADDING, threshold: config.MRCNN.THRESH_BINARIZE };
    const alone0 = InstanceMasks.paste(rows(probs, 0, d0).data as Float32Array, boxes, { ...opts, imageHeight: 200, imageWidth: 260 });
    const alone1 = InstanceMasks.paste(rows(probs, d0, d0 + second.length).data as Float32Array, boxes1, { ...opts, imageHeight: 100, imageWidth: 130 });
    assert.deepEqual(m0.binaryTensor().data, alone0.binaryTensor().data);
    assert.deepEqual(m1.binaryTensor().data, alone1.binaryTensor().data);
    assert.deepEqual(m1.maskProbsTensor().data, rows(probs, d0, d0 + second.length).data);
  });
});

describe('zero detections', () => {
  const model = buildMaskHeadModel();
  const none: HostDetections = { boxes: new Float32Array(0), labels: new BigInt64Array(0), batchIndex: new BigInt64Array(0) };

  it('the graph returns empty [0,C,M,M] logits and [0,1,M,M] probabilities', async () => {
    const out = await runMaskHead(model, batchFeatures([1]), none);
    assert.deepEqual(out.get('roi.mask_logits')!.dims, [0, C, M, M]);
    assert.deepEqual(out.get('det.mask_probs')!.dims, [0, 1, M, M]);
  });

  it('a batch where one image has no detections', async () => {
    const ref = referenceDetections(1);
    const out = await runMaskHead(model, batchFeatures([0.5, 1]), ref);
    const v = compareDense('det.mask_probs.0', out.get('det.mask_probs')!, parity.reference('det.mask_probs.0'));
    assert.ok(v.pass, v.detail);
    const d = ref.labels.length;
    const images = [imageDetections(0, [200, 260], new Float32Array(0), []), imageDetections(1, [200, 260], parity.reference('det.boxes.0').data as Float32Array, ref.labels)];
    new PasteMasks().apply(out, images, [
      [0, 0],
      [0, d],
    ], config);
    const empty = getExtra(images[0]!, EXTRA_KEYS.masks);
    assert.ok(empty instanceof InstanceMasks);
    assert.equal(empty.count, 0);
    assert.deepEqual(empty.binaryTensor().dims, [0, 1, 200, 260]);
    assert.deepEqual(empty.maskProbsTensor().dims, [0, 1, M, M]);
    assert.deepEqual(empty.toRles(), []);
    assert.equal(getExtra(images[1]!, EXTRA_KEYS.masks)?.count, d);
  });
});

describe('paste_masks input checks', () => {
  const image = (): ReturnType<typeof imageDetections> => imageDetections(0, [200, 260], Float32Array.of(1, 2, 30, 40), [1n]);
  const probs = (d: number, m = M): HostTensor => ({ dtype: 'float32', dims: [d, 1, m, m], data: new Float32Array(d * m * m) });

  it('names the missing output', () => {
    assert.throws(() => new PasteMasks().apply(new Map(), [image()], [[0, 1]], config), { name: 'InputError', message: /det\.mask_probs/ });
  });
  it('rejects a wrong mask resolution', () => {
    assert.throws(() => new PasteMasks().apply(new Map([['det.mask_probs', probs(1, 14)]]), [image()], [[0, 1]], config), {
      name: 'InputError',
      message: /\[1, 1, 14, 14\].*MRCNN\.RESOLUTION/,
    });
  });
  it('rejects rows that do not match the boxes or the outputs', () => {
    const out = new Map([['det.mask_probs', probs(1)]]);
    assert.throws(() => new PasteMasks().apply(out, [image()], [[0, 2]], config), { name: 'InputError', message: /outside the 1 mask rows/ });
    assert.throws(() => new PasteMasks().apply(new Map([['det.mask_probs', probs(2)]]), [image()], [[0, 2]], config), {
      name: 'InputError',
      message: /1 boxes but 2 mask rows/,
    });
    assert.throws(() => new PasteMasks().apply(out, [image()], [], config), { name: 'InputError', message: /0 row ranges for 1 images/ });
  });
  it('rejects non-finite boxes', () => {
    const bad = imageDetections(0, [200, 260], Float32Array.of(1, NaN, 30, 40), [1n]);
    assert.throws(() => new PasteMasks().apply(new Map([['det.mask_probs', probs(1)]]), [bad], [[0, 1]], config), { name: 'InputError', message: /not finite/ });
  });
});
