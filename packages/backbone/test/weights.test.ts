import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HostTensor, WeightStore, WeightsError } from '@rcnn/core';
import { PUBLIC_CASES } from '@rcnn/testing';
import { buildBody, caseSetup, caseTensors } from './helpers.js';

/** The C4 case builds its whole backbone here; the FPN cases build the C5 body (the FPN is @rcnn/fpn's). */
const C5_LAYER = { MODEL: { CONV_BODY: 'ResNet.add_ResNet_custom_conv5_body' }, FPN: { FPN_ON: false } };

describe('weight consumption', () => {
  for (const name of PUBLIC_CASES) {
    const layers = name === 'fasterrcnn_tiny_c4' ? [] : [C5_LAYER];
    it(`${name}: every backbone.body.* key is used${name === 'fasterrcnn_tiny_c4' ? ' (and every backbone.* key)' : ''}`, () => {
      const { parity, config } = caseSetup(name, ...layers);
      const weights = parity.weights();
      buildBody(config, weights);
      assert.deepEqual(weights.unusedKeys(['backbone.body.']), []);
      assert.deepEqual(weights.unusedKeys(['backbone.']).filter((k) => !k.startsWith('backbone.fpn.')), []);
      if (name === 'fasterrcnn_tiny_c4') assert.deepEqual(weights.unusedKeys(['backbone.']), []);
    });
  }
});

describe('bad weights fail naming the key', () => {
  const name = 'fasterrcnn_tiny_x_batch2';
  const { config } = caseSetup(name, C5_LAYER);
  const build = (tensors: Map<string, HostTensor>): WeightStore => {
    const weights = WeightStore.fromTensors(tensors, 'altered.safetensors');
    buildBody(config, weights);
    return weights;
  };
  const fails = (fn: () => unknown, key: string, pattern: RegExp): void => {
    assert.throws(fn, (e: unknown) => e instanceof WeightsError && e.key === key && pattern.test(e.message));
  };

  it('a missing key', () => {
    const tensors = caseTensors(name);
    const key = 'backbone.body.layer3.1.bn2.running_var';
    tensors.delete(key);
    fails(() => build(tensors), key, /missing tensor "backbone\.body\.layer3\.1\.bn2\.running_var" \(expected shape \[64\]\)/);
  });

  it('a projection that torchvision would not have (layer1.0.downsample) is an extra key', () => {
    const tensors = caseTensors(name);
    const key = 'backbone.body.layer1.0.downsample.0.weight';
    tensors.set(key, { dtype: 'float32', dims: [64, 64, 1, 1], data: new Float32Array(64 * 64) });
    const weights = build(tensors);
    assert.throws(
      () => weights.assertAllUsed(['backbone.body.']),
      (e: unknown) => e instanceof WeightsError && e.key === key && e.message.includes(key),
    );
  });

  it('a wrong shape', () => {
    const tensors = caseTensors(name);
    const key = 'backbone.body.layer2.0.conv2.weight';
    tensors.set(key, { dtype: 'float32', dims: [32, 32, 3, 3], data: new Float32Array(32 * 32 * 9) });
    fails(() => build(tensors), key, /"backbone\.body\.layer2\.0\.conv2\.weight" has shape \[32, 32, 3, 3\], expected \[32, 8, 3, 3\]/);
  });
});
