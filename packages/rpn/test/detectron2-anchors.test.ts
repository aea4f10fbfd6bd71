/** Detectron2's DefaultAnchorGenerator (RPN.ANCHOR_GENERATOR detectron2, RPN.ANCHOR_OFFSET) and nonempty proposal filtering. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphBuilder, type HostTensor, WeightStore, loadConfig } from '@rcnn/core';
import { createTestContext, runModel } from '@rcnn/testing';
import { detectron2BaseAnchors, genericRpnOutputs, keepNonEmptyBoxes } from '../src/index.js';
import { featureInput, int64Tensor, randomTensor } from './helpers.js';

test('Detectron2 base anchors are not rounded (size 32, ratio 0.5: ±22.627 x ±11.314)', () => {
  const base = Array.from(detectron2BaseAnchors({ sizes: [32], aspectRatios: [0.5, 1, 2] }));
  // Detectron2 DefaultAnchorGenerator(sizes=[[32]], aspect_ratios=[[0.5, 1, 2]]).cell_anchors[0].
  const expected = [-22.627417, -11.3137085, 22.627417, 11.3137085, -16, -16, 16, 16, -11.3137085, -22.627417, 11.3137085, 22.627417];
  base.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `coordinate ${i}: ${v} != ${expected[i]}`));
  // torchvision would round them to ±23 x ±11.
  assert.notEqual(base[0], -23);
});

test('Detectron2 anchors: fixed stride 2^level on P6 of a padded size that is not a multiple of 64, with OFFSET', async () => {
  for (const offset of [0, 0.5]) {
    const config = loadConfig({ layers: [{ RPN: { ANCHOR_GENERATOR: 'detectron2', ANCHOR_OFFSET: offset }, FPN: { RPN_MIN_LEVEL: 6, RPN_MAX_LEVEL: 6, RPN_ANCHOR_SIZES: [[512]] } }] });
    const ctx = createTestContext(config, { weights: WeightStore.random(3) });
    const f = featureInput(ctx.graph, 'pool', 8, 6);
    const proposals = genericRpnOutputs.build(ctx, [f]);
    ctx.outputTaps();
    ctx.graph.output(proposals.counts, 'counts', 'int64');
    // Padded 320 x 480: P6 is 5 x 8; torchvision's stride would be 480 // 8 = 60 wide, Detectron2's is 64.
    const feeds: Record<string, HostTensor> = {
      images: randomTensor([1, 3, 320, 480], 1),
      image_sizes: int64Tensor([1, 2], [320, 480]),
      original_sizes: int64Tensor([1, 2], [320, 480]),
      'backbone.pool': randomTensor([1, 8, 5, 8], 2),
    };
    const out = await runModel(ctx.graph.toModelProto(), feeds);
    const data = out.get('rpn.anchors')!.data as Float32Array;
    const base = detectron2BaseAnchors({ sizes: [512], aspectRatios: [0.5, 1, 2] });
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 8; x++) {
        for (let a = 0; a < 3; a++) {
          const row = (y * 8 + x) * 3 + a;
          const sx = (x + offset) * 64;
          const sy = (y + offset) * 64;
          const expected = [sx + base[4 * a]!, sy + base[4 * a + 1]!, sx + base[4 * a + 2]!, sy + base[4 * a + 3]!].map(Math.fround);
          assert.deepEqual(Array.from(data.subarray(4 * row, 4 * row + 4)), expected, `offset ${offset}, anchor (${y}, ${x}, ${a})`);
        }
      }
    }
  }
});

test('nonempty keeps boxes wider and taller than the threshold (strict), unlike remove_small_boxes', async () => {
  const g = new GraphBuilder();
  const boxes = g.input('boxes', 'float32', [4, 4]);
  g.output(keepNonEmptyBoxes(g, boxes, 0), 'keep', 'bool');
  const feeds = { boxes: { dtype: 'float32', dims: [4, 4], data: Float32Array.from([0, 0, 5, 5, 3, 0, 3, 5, 0, 2, 5, 2, 1, 1, 1.5, 1.25]) } as HostTensor };
  const out = await runModel(g.toModelProto(), feeds);
  assert.deepEqual(Array.from(out.get('keep')!.data as Uint8Array, Boolean), [true, false, false, true]);
});
