import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HostTensor, buildFeaturesNet, featureOutputName } from '@rcnn/core';
import { compareDense, runModel } from '@rcnn/testing';
import { GeneralizedRCNNTransform } from '../src/index.js';
import { backboneContainer, caseSetup } from './helpers.js';

const transform = new GeneralizedRCNNTransform();

describe('features-only net on the C4 fixture (fasterrcnn_tiny_c4)', () => {
  const { parity, config } = caseSetup('fasterrcnn_tiny_c4');
  const net = buildFeaturesNet(config, backboneContainer(), parity.weights());

  it('has one level "0" = layer3: 256 channels at stride 16', () => {
    assert.deepEqual(net.levels, [{ output: featureOutputName('0'), name: '0', channels: 256, spatialScale: 1 / 16 }]);
  });

  it('folds every frozen norm: no BatchNormalization node, one Conv per conv weight', () => {
    const ops = net.graph.stats().opCounts;
    assert.equal(ops.BatchNormalization, undefined);
    // stem 1 + layer1 (1 block, no projection) 3 + layer2 3+1 + layer3 2x3+1
    assert.equal(ops.Conv, 1 + 3 + 4 + 7);
  });

  const check = async (images: HostTensor): Promise<void> => {
    const out = await runModel(net.toBytes(), { images });
    const verdict = compareDense('backbone.0', out.get(featureOutputName('0'))!, parity.reference('backbone.0'));
    console.log(`  fasterrcnn_tiny_c4 backbone.0 ${verdict.detail}`);
    assert.ok(verdict.pass, verdict.detail);
  };

  it('backbone.0 from our transform of the PNG matches the reference', async () => {
    await check(transform.prepare(await parity.images(), config).images);
  });

  it('backbone.0 from the reference transform.images matches the reference', async () => {
    await check(parity.reference('transform.images') as HostTensor<'float32'>);
  });
});
