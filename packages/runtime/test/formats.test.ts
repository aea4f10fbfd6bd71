import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '@rcnn/core';
import sharp from 'sharp';
import { CocoResultsBuilder, RANDOM_WEIGHTS_WARNING, decodeRle, drawResult, encodeRle, readMasks, rleFromString, rleToString } from '../src/index.js';
import { encode, pattern, toyDetector } from './helpers.js';

describe('COCO RLE', () => {
  it('encodes column-major runs starting with zeros, in COCO string form', () => {
    const mask = [0, 1, 0, 0, 1, 0, 0, 0, 0]; // 3x3, middle column's top two pixels
    const rle = encodeRle(mask, 3, 3);
    assert.deepEqual(rle.counts, [3, 2, 4]);
    assert.equal(rleToString(rle.counts), '324');
    assert.deepEqual(encodeRle([1, 1, 1, 1], 2, 2).counts, [0, 4]);
  });

  it('round-trips random masks through the string form', () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 20; trial++) {
      const h = 1 + Math.floor(rand() * 40);
      const w = 1 + Math.floor(rand() * 40);
      const density = rand();
      const mask = Uint8Array.from({ length: h * w }, () => (rand() < density ? 1 : 0));
      const rle = encodeRle(mask, h, w);
      const counts = rleFromString(rleToString(rle.counts));
      assert.deepEqual(counts, rle.counts);
      assert.deepEqual(Array.from(decodeRle({ size: [h, w], counts })), Array.from(mask));
    }
    // Long runs need several 5-bit groups, and differences can be negative.
    const big = [100000, 3, 5, 70000, 2];
    assert.deepEqual(rleFromString(rleToString(big)), big);
  });
});

describe('COCO results and drawings (toy model)', () => {
  it('formats boxes as [x, y, w, h], masks as RLE, keypoints as [x, y, v] * K, failures and the random-weights warning', async () => {
    const { detector } = await toyDetector({ toy: { mask: true, keypoints: true } });
    try {
      const img = await encode(pattern(60, 40), 60, 40, 'png');
      const outcomes = await detector.predict([img, Buffer.from('nope')]);
      const builder = new CocoResultsBuilder({
        labels: detector.labels,
        config: detector.config,
        configSource: 'toy',
        weightsDescription: detector.weights.description,
        randomWeights: detector.randomWeights,
      });
      for (const o of outcomes) builder.add(o);
      const doc = builder.toJSON();
      assert.equal(Object.keys(doc)[0], 'warning');
      assert.equal(doc.warning, RANDOM_WEIGHTS_WARNING);
      assert.equal(doc.info.random_weights, true);
      assert.deepEqual(doc.images.map((i) => [i.id, i.width, i.height]), [[1, 60, 40]]);
      assert.equal(doc.failures.length, 1);
      assert.equal(doc.failures[0].image_id, 2);
      assert.equal(doc.failures[0].code, new InputError('x').code);
      const det = outcomes[0].ok ? outcomes[0].result.detections! : assert.fail('image 0 failed');
      const masks = readMasks(det, detector.config.MRCNN.THRESH_BINARIZE)!;
      assert.equal(doc.annotations.length, det.scores.length);
      doc.annotations.forEach((a, d) => {
        const [x1, y1, x2, y2] = det.boxes.subarray(4 * d, 4 * d + 4);
        assert.ok(Math.abs(a.bbox[0] - x1) < 1e-3 && Math.abs(a.bbox[2] - (x2 - x1)) < 2e-3 && Math.abs(a.bbox[3] - (y2 - y1)) < 2e-3);
        assert.equal(a.category_name, detector.labels.categories[det.labels[d]]);
        assert.equal(a.image_id, 1);
        const decoded = decodeRle({ size: a.segmentation!.size as [number, number], counts: rleFromString(a.segmentation!.counts) });
        assert.deepEqual(Array.from(decoded), Array.from(masks.binary().subarray(d * 2400, (d + 1) * 2400)));
        assert.equal(a.area, decoded.reduce((s, v) => s + v, 0));
        assert.equal(a.keypoints!.length, 15);
        assert.equal(a.num_keypoints, 5);
      });
      assert.equal(doc.categories.length, 3);
      assert.equal(doc.categories[0].keypoints?.length, 5);
    } finally {
      await detector.close();
    }
  });

  it('draws masks, boxes, keypoints and the random-weights banner', async () => {
    const { detector } = await toyDetector({ toy: { mask: true, keypoints: true }, set: ['TEST.DETECTIONS_PER_IM=3'] });
    try {
      const [w, h] = [160, 120];
      const grey = new Uint8Array(w * h * 3).fill(128);
      const result = await detector.predictOne({ data: grey, width: w, height: h, maxValue: 255 }, { keepImages: true });
      const png = await drawResult(result, { labels: detector.labels, config: detector.config });
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height], [w, h]);
      const px = (x: number, y: number): number[] => Array.from(data.subarray((y * w + x) * info.channels, (y * w + x) * info.channels + 3));
      assert.ok(px(w - 3, 2)[0] > 150 && px(w - 3, 2)[1] < 60, `red banner at the top: ${px(w - 3, 2)}`);
      let changed = 0;
      for (let y = 30; y < h; y++) for (let x = 0; x < w; x++) if (px(x, y).some((v) => v !== 128)) changed++;
      assert.ok(changed > 100, `detections are drawn (${changed} pixels changed)`);
    } finally {
      await detector.close();
    }
  });
});
