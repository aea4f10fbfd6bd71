/** Registration in the DI registry and errors for bad inputs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, RegistryError, SLOTS, WeightStore, WeightsError, createContainer, loadConfig, resolveImplementation } from '@rcnn/core';
import { createTestContext } from '@rcnn/testing';
import { GENERIC_RPN_OUTPUTS, genericRpnOutputs, register } from '../src/index.js';
import { featureInput } from './helpers.js';

test('register() adds rpn_heads.add_generic_rpn_outputs under every alias, idempotently', () => {
  const c = createContainer();
  assert.throws(() => resolveImplementation(c, SLOTS.rpnHead, 'RPNHead'), RegistryError);
  register(c);
  register(c);
  for (const name of ['rpn_heads.add_generic_rpn_outputs', 'RPNHead', 'FPN.add_fpn_rpn_outputs', 'rpn_heads.add_single_scale_rpn_outputs']) {
    const impl = resolveImplementation(c, SLOTS.rpnHead, name);
    assert.equal(impl.value, genericRpnOutputs);
    assert.equal(impl.provider, '@rcnn/rpn');
  }
  assert.deepEqual(genericRpnOutputs.weightPrefixes, ['rpn.']);
  assert.throws(
    () => resolveImplementation(c, SLOTS.rpnHead, 'rpn_heads.nope'),
    (e: unknown) => e instanceof RegistryError && e.message.includes(GENERIC_RPN_OUTPUTS.name),
  );
});

test('levels with different channel counts are refused', () => {
  const ctx = createTestContext(loadConfig());
  const a = featureInput(ctx.graph, '0', 8, 2);
  const b = featureInput(ctx.graph, '1', 16, 3);
  assert.throws(() => genericRpnOutputs.build(ctx, [a, b]), (e: unknown) => e instanceof ConfigError && /'1': 16/.test(e.message));
});

test('missing or mis-shaped weights fail with WeightsError naming the key', () => {
  const config = loadConfig({ layers: [{ FPN: { FPN_ON: false } }] });
  const empty = WeightStore.fromTensors(new Map(), 'empty.safetensors');
  const ctx = createTestContext(config, { weights: empty });
  assert.throws(
    () => genericRpnOutputs.build(ctx, [featureInput(ctx.graph, '0', 8, 4)]),
    (e: unknown) => e instanceof WeightsError && e.key === 'rpn.head.conv.0.0.weight',
  );
  const wrong = WeightStore.fromTensors(
    new Map([['rpn.head.conv.0.0.weight', { dtype: 'float32' as const, dims: [4, 4, 3, 3], data: new Float32Array(144) }]]),
    'wrong.safetensors',
  );
  const ctx2 = createTestContext(config, { weights: wrong });
  assert.throws(
    () => genericRpnOutputs.build(ctx2, [featureInput(ctx2.graph, '0', 8, 4)]),
    (e: unknown) => e instanceof WeightsError && /shape \[4, 4, 3, 3\], expected \[8, 8, 3, 3\]/.test(e.message),
  );
});

test('RPN.HEAD_CONV_DEPTH reads rpn.head.conv.{i}.0.* for every layer', () => {
  const config = loadConfig({ layers: [{ FPN: { FPN_ON: false }, RPN: { HEAD_CONV_DEPTH: 3 } }] });
  const weights = WeightStore.random(1);
  const ctx = createTestContext(config, { weights });
  genericRpnOutputs.build(ctx, [featureInput(ctx.graph, '0', 8, 4)]);
  const used = [...weights.usedKeys()].sort();
  assert.deepEqual(used, [
    'rpn.head.bbox_pred.bias',
    'rpn.head.bbox_pred.weight',
    'rpn.head.cls_logits.bias',
    'rpn.head.cls_logits.weight',
    'rpn.head.conv.0.0.bias',
    'rpn.head.conv.0.0.weight',
    'rpn.head.conv.1.0.bias',
    'rpn.head.conv.1.0.weight',
    'rpn.head.conv.2.0.bias',
    'rpn.head.conv.2.0.weight',
  ]);
  assert.equal(ctx.graph.stats().opCounts.Relu, 3);
});
