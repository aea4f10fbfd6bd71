/** The conformance kit on the res5 head: random weights, the fixture's weights, batches 1 and 2, two sizes, no RoIs. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { register as registerBackbone } from '@rcnn/backbone';
import { configSections, createContainer, loadConfig } from '@rcnn/core';
import { assertConformance, loadParityCase, publicCaseDir, runConformance } from '@rcnn/testing';
import { RES5_HEAD_NAME, RES5_HEAD_PREFIX, register } from '../src/index.js';

function setup(): { container: ReturnType<typeof createContainer>; config: ReturnType<typeof loadConfig>; caseDir: string } {
  const container = createContainer();
  registerBackbone(container);
  register(container);
  const caseDir = publicCaseDir('fasterrcnn_tiny_c4');
  return { container, config: loadConfig({ sections: configSections(container), layers: [loadParityCase(caseDir, { container }).configLayer] }), caseDir };
}

describe('res5 head conformance', () => {
  it('keeps the roi-box-head contract with random weights', async () => {
    const { container, config } = setup();
    const report = await runConformance({ slot: 'roi-box-head', name: RES5_HEAD_NAME, container, config, register });
    assertConformance(report);
    assert.deepEqual(report.weights.prefixes, [RES5_HEAD_PREFIX]);
    assert.deepEqual(report.taps.map((t) => `${t.name}:${t.layout}`), ['roi.box_features:proposal-rows']);
    // res5.0 of the tiny case: conv1..3 + bn1..3 + downsample.0/.1, with 4 tensors per FrozenBN.
    assert.equal(report.weights.consumed.length, 3 + 3 * 4 + 1 + 4);
  });

  it('reads every res5 tensor of the fixture weights and nothing else', async () => {
    const { container, config, caseDir } = setup();
    const weights = loadParityCase(caseDir).weights();
    const report = await runConformance({ slot: 'roi-box-head', name: 'ResNetRes5Head', container, config, weights, batchSizes: [2], imageSizes: [[224, 320]] });
    assertConformance(report);
    const res5Keys = weights.keys().filter((k) => k.startsWith(RES5_HEAD_PREFIX)).sort();
    assert.deepEqual(report.weights.consumed.map((w) => w.key).sort(), res5Keys);
    assert.deepEqual(report.weights.consumed.find((w) => w.key === `${RES5_HEAD_PREFIX}0.conv2.weight`)?.shape, [128, 128, 3, 3]);
  });
});
