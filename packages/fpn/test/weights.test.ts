import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HostTensor, WeightStore, WeightsError } from '@rcnn/core';
import { FPN_CASES, buildBody, caseSetup, caseTensors } from './helpers.js';

describe('weight consumption', () => {
  for (const name of FPN_CASES) {
    it(`${name}: every backbone.* key is used`, () => {
      const { parity, config } = caseSetup(name);
      const weights = parity.weights();
      buildBody(config, weights);
      assert.deepEqual(weights.unusedKeys(['backbone.']), []);
      assert.ok(weights.usedKeys().has('backbone.fpn.layer_blocks.3.0.bias'));
    });
  }
});

describe('bad weights fail naming the key', () => {
  const name = 'maskrcnn_tiny';
  const { config } = caseSetup(name);
  const build = (tensors: Map<string, HostTensor>): WeightStore => {
    const weights = WeightStore.fromTensors(tensors, 'altered.safetensors');
    buildBody(config, weights);
    return weights;
  };
  const isWeightsError = (key: string, pattern: RegExp) => (e: unknown) => e instanceof WeightsError && e.key === key && pattern.test(e.message);

  it('a missing key', () => {
    const tensors = caseTensors(name);
    const key = 'backbone.fpn.inner_blocks.2.0.bias';
    tensors.delete(key);
    assert.throws(() => build(tensors), isWeightsError(key, /missing tensor "backbone\.fpn\.inner_blocks\.2\.0\.bias" \(expected shape \[32\]\)/));
  });

  it('an extra key (Detectron P6 conv weights while FPN.EXTRA_CONV_LEVELS is off)', () => {
    const tensors = caseTensors(name);
    const key = 'backbone.fpn.extra_blocks.p6.weight';
    tensors.set(key, { dtype: 'float32', dims: [32, 512, 3, 3], data: new Float32Array(32 * 512 * 9) });
    const weights = build(tensors);
    assert.throws(() => weights.assertAllUsed(['backbone.']), isWeightsError(key, /1 tensor\(s\) not used .*backbone\.fpn\.extra_blocks\.p6\.weight/));
  });

  it('a wrong shape', () => {
    const tensors = caseTensors(name);
    const key = 'backbone.fpn.layer_blocks.1.0.weight';
    tensors.set(key, { dtype: 'float32', dims: [32, 32, 1, 1], data: new Float32Array(32 * 32) });
    assert.throws(() => build(tensors), isWeightsError(key, /has shape \[32, 32, 1, 1\], expected \[32, 32, 3, 3\]/));
  });
});
