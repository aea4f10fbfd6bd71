import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MODEL_INPUTS, decodeModelProto } from '@rcnn/core';
import { runModel } from '@rcnn/testing';
import { decodeImage, exportModel } from '../src/index.js';
import { register, toyConfig, toyTransform } from '../src/toy/index.js';
import { encode, pattern, toyDetector } from './helpers.js';

describe('exportModel', () => {
  it('gives a self-contained ONNX model whose detections equal the runtime\'s', async () => {
    const exported = await exportModel({ config: toyConfig({ mask: true }), register: [register], seed: 5 });
    assert.equal(exported.weights.random, true);
    assert.deepEqual(exported.inputs.map((i) => i.name), [MODEL_INPUTS.images, MODEL_INPUTS.imageSizes, MODEL_INPUTS.originalSizes]);
    assert.ok(exported.outputs.some((o) => o.name === 'det.mask_probs'));
    assert.deepEqual(exported.hostPostprocessors, ['Toy.paste_masks']);
    const proto = decodeModelProto(exported.bytes) as { metadata_props?: { key: string; value: string }[]; graph: { node: { name: string }[] } };
    assert.ok(proto.metadata_props?.some((m) => m.key === 'rcnn.config'));
    assert.ok(proto.graph.node.every((n) => !n.name.startsWith('cpu_0/')), 'no replica scope in an export');

    const files = [await encode(pattern(60, 40, 4), 60, 40, 'png'), await encode(pattern(45, 70, 6), 45, 70, 'png')];
    const { detector } = await toyDetector({ toy: { mask: true }, seed: 5 });
    try {
      const outcomes = await detector.predict(files, { batchSize: 2 });
      const limits = { maxPixels: 1e8, maxSide: 1e5 };
      const prepared = toyTransform.prepare(await Promise.all(files.map((f) => decodeImage(f, limits))), detector.config);
      const out = await runModel(exported.bytes, {
        [MODEL_INPUTS.images]: prepared.images,
        [MODEL_INPUTS.imageSizes]: prepared.imageSizes,
        [MODEL_INPUTS.originalSizes]: prepared.originalSizes,
      });
      const batchIndex = Array.from(out.get('det.batch_index')!.data as BigInt64Array, Number);
      const boxes = out.get('det.boxes')!.data as Float32Array;
      const scores = out.get('det.scores')!.data as Float32Array;
      outcomes.forEach((o, i) => {
        assert.ok(o.ok);
        const det = o.result.detections!;
        const mine = batchIndex.flatMap((b, r) => (b === i ? [r] : []));
        assert.equal(mine.length, det.scores.length);
        assert.ok(mine.length > 0);
        assert.deepEqual(mine.map((r) => scores[r]), Array.from(det.scores));
        assert.deepEqual(mine.flatMap((r) => Array.from(boxes.subarray(4 * r, 4 * r + 4))), Array.from(det.boxes));
      });
    } finally {
      await detector.close();
    }
  });
});
