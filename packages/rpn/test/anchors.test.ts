/** Base anchors (torchvision and Detectron), config resolution of anchor sizes, and the legacy grid. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, type FeatureMap, type HostTensor, WeightStore, loadConfig } from '@rcnn/core';
import { createTestContext, runModel } from '@rcnn/testing';
import { detectronBaseAnchors, genericRpnOutputs, levelAnchorSpecs, torchvisionBaseAnchors } from '../src/index.js';
import { featureInput, int64Tensor, randomTensor } from './helpers.js';

test('torchvision base anchors: size 32, ratios 0.5/1/2', () => {
  // torchvision AnchorGenerator(((32,),), ((0.5, 1.0, 2.0),)).cell_anchors[0]
  assert.deepEqual(Array.from(torchvisionBaseAnchors({ sizes: [32], aspectRatios: [0.5, 1, 2] })), [-23, -11, 23, 11, -16, -16, 16, 16, -11, -23, 11, 23]);
});

test('torchvision base anchors are ratio-major (a = ratio_index * n_sizes + size_index)', () => {
  const base = torchvisionBaseAnchors({ sizes: [32, 64, 128, 256, 512], aspectRatios: [0.5, 1, 2] });
  assert.equal(base.length, 15 * 4);
  // anchor 1 = ratio 0.5, size 64; anchor 5 = ratio 1, size 32; anchor 14 = ratio 2, size 512.
  assert.deepEqual(Array.from(base.subarray(4, 8)), [-45, -23, 45, 23]);
  assert.deepEqual(Array.from(base.subarray(20, 24)), [-16, -16, 16, 16]);
  assert.deepEqual(Array.from(base.subarray(56, 60)), [-181, -362, 181, 362]);
});

test("Detectron base anchors match generate_anchors' documented output", () => {
  // py-faster-rcnn / Detectron generate_anchors(stride=16, sizes=(128, 256, 512)) docstring (0-based).
  const expected = [
    [-84, -40, 99, 55],
    [-176, -88, 191, 103],
    [-360, -184, 375, 199],
    [-56, -56, 71, 71],
    [-120, -120, 135, 135],
    [-248, -248, 263, 263],
    [-36, -80, 51, 95],
    [-80, -168, 95, 183],
    [-168, -344, 183, 359],
  ];
  assert.deepEqual(Array.from(detectronBaseAnchors({ sizes: [128, 256, 512], aspectRatios: [0.5, 1, 2] }, 16)), expected.flat());
});

const fm = (name: string, level: number): FeatureMap => ({ name, level, channels: 8, spatialScale: 2 ** -level, blob: { name: `f${name}` } });

test('anchor specs from config: explicit FPN sizes, start size, single level', () => {
  const levels = [fm('0', 2), fm('1', 3), fm('2', 4), fm('3', 5), fm('pool', 6)];
  const explicit = loadConfig({ layers: [{ FPN: { RPN_ANCHOR_SIZES: [[16, 20], [32, 40], [64, 80], [128, 160], [256, 320]], RPN_ASPECT_RATIOS: [1] } }] });
  assert.deepEqual(levelAnchorSpecs(explicit, levels).map((s) => s.sizes), [[16, 20], [32, 40], [64, 80], [128, 160], [256, 320]]);
  const start = loadConfig({ layers: [{ FPN: { RPN_ANCHOR_START_SIZE: 24, RPN_MIN_LEVEL: 2 } }] });
  assert.deepEqual(levelAnchorSpecs(start, levels).map((s) => s.sizes), [[24], [48], [96], [192], [384]]);
  const c4 = loadConfig({ layers: [{ FPN: { FPN_ON: false }, RPN: { SIZES: [64, 128], ASPECT_RATIOS: [0.5, 2] } }] });
  assert.deepEqual(levelAnchorSpecs(c4, [fm('0', 4)]), [{ sizes: [64, 128], aspectRatios: [0.5, 2] }]);
});

test('anchor specs: inconsistent configs fail with ConfigError naming the key', () => {
  const levels = [fm('0', 2), fm('1', 3)];
  const wrongCount = loadConfig({ layers: [{ FPN: { RPN_ANCHOR_SIZES: [[32], [64], [128]] } }] });
  assert.throws(() => levelAnchorSpecs(wrongCount, levels), (e: unknown) => e instanceof ConfigError && e.key === 'FPN.RPN_ANCHOR_SIZES');
  const ragged = loadConfig({ layers: [{ FPN: { RPN_ANCHOR_SIZES: [[32], [64, 80]] } }] });
  assert.throws(() => levelAnchorSpecs(ragged, levels), (e: unknown) => e instanceof ConfigError && /same number of anchors/.test(e.message));
  const c4 = loadConfig({ layers: [{ FPN: { FPN_ON: false } }] });
  assert.throws(() => levelAnchorSpecs(c4, levels), (e: unknown) => e instanceof ConfigError && e.key === 'FPN.FPN_ON');
});

test('MODEL.LEGACY_PLUS_ONE: Detectron anchors on the nominal stride', async () => {
  const config = loadConfig({ layers: [{ MODEL: { LEGACY_PLUS_ONE: true }, FPN: { FPN_ON: false }, RPN: { SIZES: [32, 64], ASPECT_RATIOS: [0.5, 1, 2] } }] });
  const ctx = createTestContext(config, { weights: WeightStore.random(3) });
  const f = featureInput(ctx.graph, '0', 8, 4);
  const proposals = genericRpnOutputs.build(ctx, [f]);
  ctx.outputTaps();
  ctx.graph.output(proposals.counts, 'counts', 'int64');
  // Padded 72 x 100 with a 4 x 6 map: torchvision's stride would be 18 x 16; Detectron's is 16.
  const feeds: Record<string, HostTensor> = {
    images: randomTensor([1, 3, 72, 100], 1),
    image_sizes: int64Tensor([1, 2], [72, 100]),
    original_sizes: int64Tensor([1, 2], [72, 100]),
    'backbone.0': randomTensor([1, 8, 4, 6], 2),
  };
  const out = await runModel(ctx.graph.toModelProto(), feeds);
  const anchors = out.get('rpn.anchors')!;
  assert.deepEqual(anchors.dims, [4 * 6 * 6, 4]);
  const base = detectronBaseAnchors({ sizes: [32, 64], aspectRatios: [0.5, 1, 2] }, 16);
  const data = anchors.data as Float32Array;
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 6; x++) {
      for (let a = 0; a < 6; a++) {
        const row = (y * 6 + x) * 6 + a;
        const expected = [x * 16 + base[4 * a]!, y * 16 + base[4 * a + 1]!, x * 16 + base[4 * a + 2]!, y * 16 + base[4 * a + 3]!];
        assert.deepEqual(Array.from(data.subarray(4 * row, 4 * row + 4)), expected.map(Math.fround), `anchor (${y}, ${x}, ${a})`);
      }
    }
  }
});
