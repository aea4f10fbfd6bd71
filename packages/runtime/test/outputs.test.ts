import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type HostTensor, decodeEntry, hostTensor, readSafetensorsFile } from '@rcnn/core';
import { InferenceError, dumpTensors, writeDump } from '../src/index.js';
import { rowsPerImage } from '../src/outputs.js';
import { encode, pattern, tempDir, toyDetector } from './helpers.js';

const rows = (...idx: number[]): HostTensor => hostTensor('int64', [idx.length], BigInt64Array.from(idx, BigInt));

describe('rowsPerImage', () => {
  it('splits a non-decreasing batch index, including images without rows', () => {
    assert.deepEqual(rowsPerImage(rows(0, 0, 1, 1, 1), 3), [
      [0, 2],
      [2, 5],
      [5, 5],
    ]);
    assert.deepEqual(rowsPerImage(rows(1, 1), 3), [
      [0, 0],
      [0, 2],
      [2, 2],
    ]);
    assert.deepEqual(rowsPerImage(rows(), 2), [
      [0, 0],
      [0, 0],
    ]);
  });

  it('refuses a broken index instead of mis-assigning rows', () => {
    assert.throws(() => rowsPerImage(rows(1, 0), 2), InferenceError);
    assert.throws(() => rowsPerImage(rows(0, 2), 2), InferenceError);
  });
});

describe('dumps with the fixtures\' tensor names', () => {
  const dir = tempDir();
  const images = async (): Promise<Buffer[]> => [await encode(pattern(60, 40, 2), 60, 40, 'png'), await encode(pattern(30, 50, 3), 30, 50, 'png')];

  it('writes every output and tap per its layout', async () => {
    const { detector } = await toyDetector({ toy: { mask: true, keypoints: true }, intermediates: true });
    try {
      const outcomes = await detector.predict(await images(), { keepOutputs: true, batchSize: 2 });
      const results = outcomes.map((o) => (o.ok ? o.result : assert.fail(String(!o.ok && o.error))));
      const path = join(dir, 'dump.safetensors');
      await writeDump(path, results, detector.config);
      const file = readSafetensorsFile(path);
      const t = (name: string): HostTensor => {
        const e = file.entries.get(name);
        assert.ok(e, `dump has ${name}; it has ${[...file.entries.keys()].join(' ')}`);
        return decodeEntry(e);
      };
      assert.equal(t('transform.images').dims.length, 4);
      assert.deepEqual(t('transform.image_sizes').dims, [2, 2]);
      for (const level of ['0', '1', '2', '3', 'pool']) {
        assert.equal(t(`backbone.${level}`).dims[0], 2, 'whole-batch tensors keep the batch axis');
        assert.equal(t(`rpn.objectness.${level}`).dims[0], 2);
      }
      const counts = Array.from(t('rpn.proposal_counts').data as BigInt64Array, Number);
      assert.equal(counts.length, 2);
      for (const i of [0, 1]) {
        const r = results[i]!;
        const det = r.detections!;
        const d = det.scores.length;
        assert.ok(d > 0);
        assert.deepEqual(t(`rpn.anchors.${i}`).dims, t('rpn.anchors.0').dims, 'anchors replicated per image');
        assert.deepEqual(t(`rpn.proposals.${i}`).dims, [counts[i], 4]);
        assert.deepEqual(t(`rpn.proposal_scores.${i}`).dims, [counts[i]]);
        assert.deepEqual(Array.from(t(`det.boxes.${i}`).data as Float32Array), Array.from(det.boxes));
        assert.deepEqual(Array.from(t(`det.boxes_resized.${i}`).data as Float32Array), Array.from(det.boxesResized));
        assert.deepEqual(Array.from(t(`det.scores.${i}`).data as Float32Array), Array.from(det.scores));
        const labels = t(`det.labels.${i}`);
        assert.equal(labels.dtype, 'int64', 'labels are I64 as in the fixtures');
        assert.deepEqual(Array.from(labels.data as BigInt64Array, Number), Array.from(det.labels));
        assert.deepEqual(t(`det.mask_probs.${i}`).dims, [d, 1, 6, 6]);
        const masks = t(`det.masks.${i}`);
        assert.equal(masks.dtype, 'uint8');
        assert.deepEqual(masks.dims, [d, 1, r.height, r.width]);
        assert.deepEqual(t(`det.keypoints.${i}`).dims, [d, 5, 3]);
        assert.deepEqual(t(`det.keypoints_resized.${i}`).dims, [d, 5, 3]);
        assert.deepEqual(t(`det.keypoints_scores.${i}`).dims, [d, 5]);
        assert.deepEqual(t(`det.keypoint_heatmaps.${i}`).dims, [d, 5, 6, 6]);
        assert.deepEqual(t(`toy.mask_logits.${i}`).dims, [d, 1, 6, 6], 'per-image-detections taps split by image');
      }
      const total = counts[0]! + counts[1]!;
      assert.deepEqual(t('roi.box_features').dims, [total, 4, 3, 3], 'proposal rows: valid rows only');
      assert.deepEqual(t('roi.class_logits').dims, [total, 4]);
      assert.ok(!file.entries.has('det.batch_index'));
      assert.equal(JSON.parse(file.metadata['rcnn.images']!).length, 2);
    } finally {
      await detector.close();
    }
  });

  it('gives zero-sized tensors (begin == end) for images without detections', async () => {
    const { detector } = await toyDetector({ toy: { mask: true }, set: ['TEST.SCORE_THRESH=0.999'] });
    try {
      const outcomes = await detector.predict(await images(), { keepOutputs: true, batchSize: 2 });
      const results = outcomes.map((o) => (o.ok ? o.result : assert.fail('failed')));
      assert.equal(results[0]!.detections!.scores.length, 0);
      const path = join(dir, 'empty.safetensors');
      await writeDump(path, results, detector.config);
      const file = readSafetensorsFile(path);
      for (const name of ['det.boxes.0', 'det.scores.1', 'det.labels.0', 'det.mask_probs.1', 'det.masks.0']) {
        const e = file.entries.get(name);
        assert.ok(e, name);
        assert.equal(e.shape[0], 0, `${name} has no rows`);
        assert.equal(e.bytes.byteLength, 0);
      }
      assert.deepEqual(file.entries.get('det.masks.1')!.shape, [0, 1, 50, 30]);
    } finally {
      await detector.close();
    }
  });

  it('RPN-only models return and dump proposals per image', async () => {
    const { detector } = await toyDetector({ toy: { rpnOnly: true } });
    try {
      assert.equal(detector.kind, 'proposals');
      const outcomes = await detector.predict(await images(), { keepOutputs: true, batchSize: 2 });
      const results = outcomes.map((o) => (o.ok ? o.result : assert.fail('failed')));
      const p = results[1]!.proposals!;
      assert.ok(p.count > 0 && p.boxes.length === 4 * p.count && p.scores.length === p.count);
      for (let i = 1; i < p.count; i++) assert.ok(p.scores[i - 1]! >= p.scores[i]!, 'sorted by score');
      // Original-image boxes are the resized ones scaled back.
      const [h, w] = [50, 30];
      for (let i = 0; i < p.count; i++) assert.ok(p.boxes[4 * i + 2]! <= w + 1e-3 && p.boxes[4 * i + 3]! <= h + 1e-3);
      const tensors = dumpTensors(results, detector.config);
      assert.deepEqual(tensors.get('rpn.proposals.1')!.dims, [p.count, 4]);
      assert.deepEqual(Array.from(tensors.get('rpn.proposals_original.1')!.data as Float32Array), Array.from(p.boxes));
      assert.deepEqual(tensors.get('rpn.proposal_scores.0')!.dims, [results[0]!.proposals!.count]);
    } finally {
      await detector.close();
    }
  });

  it('refuses a dump spread over several batches', async () => {
    const { detector } = await toyDetector();
    try {
      const outcomes = await detector.predict(await images(), { keepOutputs: true, batchSize: 1 });
      assert.throws(() => dumpTensors(outcomes.map((o) => (o.ok ? o.result : assert.fail('failed'))), detector.config), /ran in 2 batches/);
    } finally {
      await detector.close();
    }
  });
});
