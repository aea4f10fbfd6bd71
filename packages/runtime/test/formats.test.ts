import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError, decodeRle } from '@rcnn/core';
import sharp from 'sharp';
import { CocoResultsBuilder, drawResult, readKeypoints, readMasks } from '../src/index.js';
import { RANDOM_WEIGHTS_WARNING } from '../src/detector.js';
import { encode, pattern, toyDetector } from './helpers.js';

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
      assert.equal(doc.failures[0]!.image_id, 2);
      assert.equal(doc.failures[0]!.code, new InputError('x').code);
      const det = outcomes[0]!.ok ? outcomes[0]!.result.detections! : assert.fail('image 0 failed');
      const masks = readMasks(det)!;
      const kp = readKeypoints(det)!;
      assert.equal(doc.annotations.length, det.scores.length);
      doc.annotations.forEach((a, d) => {
        const [x1, y1, x2, y2] = [det.boxes[4 * d]!, det.boxes[4 * d + 1]!, det.boxes[4 * d + 2]!, det.boxes[4 * d + 3]!];
        assert.ok(Math.abs(a.bbox[0]! - x1) < 1e-3 && Math.abs(a.bbox[2]! - (x2 - x1)) < 2e-3 && Math.abs(a.bbox[3]! - (y2 - y1)) < 2e-3);
        assert.equal(a.category_name, detector.labels.categories[det.labels[d]!]);
        assert.equal(a.image_id, 1);
        const decoded = decodeRle(a.segmentation!);
        assert.deepEqual(decoded, masks.binary(d));
        assert.equal(a.area, decoded.reduce((s, v) => s + v, 0));
        assert.equal(a.keypoints!.length, 15);
        assert.equal(a.num_keypoints, 5);
        a.keypoints!.forEach((v, j) => assert.ok(Math.abs(v - kp.keypoints[d * 15 + j]!) <= 0.006, `keypoint value ${j}`));
      });
      assert.equal(doc.categories.length, 3);
      assert.equal(doc.categories[0]!.keypoints?.length, 5);
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
      assert.ok(px(w - 3, 2)[0]! > 150 && px(w - 3, 2)[1]! < 60, `red banner at the top: ${px(w - 3, 2)}`);
      let changed = 0;
      for (let y = 30; y < h; y++) for (let x = 0; x < w; x++) if (px(x, y).some((v) => v !== 128)) changed++;
      assert.ok(changed > 100, `detections are drawn (${changed} pixels changed)`);
    } finally {
      await detector.close();
    }
  });
});
