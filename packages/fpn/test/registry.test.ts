import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RESNET_BODIES } from '@rcnn/backbone';
import { RegistryError, SLOTS, WeightStore, createContainer, listImplementations, loadConfig, resolveImplementation } from '@rcnn/core';
import { FEATURE_PYRAMID, FPN_BODIES, FpnConvBody, register } from '../src/index.js';
import { buildBody, fpnContainer } from './helpers.js';

describe('registry', () => {
  const container = fpnContainer();

  it('every registered name and alias resolves; each FPN body names an existing bottom-up body', () => {
    for (const impl of FPN_BODIES) {
      for (const n of [impl.name, ...(impl.aliases ?? [])]) assert.equal(resolveImplementation(container, SLOTS.convBody, n), impl, n);
      assert.equal(impl.provider, '@rcnn/fpn');
      assert.equal(impl.value.isFpn, true);
      assert.deepEqual(impl.value.weightPrefixes, ['backbone.']);
      assert.ok(impl.value instanceof FpnConvBody);
      const bottomUp = resolveImplementation(container, SLOTS.convBody, impl.value.bottomUp);
      assert.ok(RESNET_BODIES.includes(bottomUp));
      assert.equal(bottomUp.value.isFpn, false);
    }
    for (const n of ['FPN.add_fpn', 'FeaturePyramidNetwork']) assert.equal(resolveImplementation(container, SLOTS.fpn, n), FEATURE_PYRAMID);
    for (const n of ['R-50-FPN', 'R-101-FPN', 'R-152-FPN', 'X-101-32x8d-FPN', 'X-101-64x4d-FPN', 'FPN.add_fpn_ResNet_custom_conv5_body']) {
      assert.doesNotThrow(() => resolveImplementation(container, SLOTS.convBody, n), n);
    }
  });

  it('nothing registers on import; register() twice adds nothing', () => {
    const fresh = createContainer();
    assert.equal(listImplementations(fresh, SLOTS.fpn).length, 0);
    register(fresh);
    register(fresh);
    assert.equal(listImplementations(fresh, SLOTS.fpn).length, 1);
    assert.equal(listImplementations(fresh, SLOTS.convBody).length, FPN_BODIES.length);
  });

  it('an unknown body name fails listing the known names', () => {
    assert.throws(
      () => resolveImplementation(container, SLOTS.convBody, 'R-50-FPN-typo'),
      (e: unknown) =>
        e instanceof RegistryError &&
        e.message.includes('FPN.add_fpn_ResNet50_conv5_body (aliases: R-50-FPN) [@rcnn/fpn]') &&
        e.message.includes('ResNet.add_ResNet50_conv5_body (aliases: R-50-C5) [@rcnn/backbone]'),
    );
  });

  it('an FPN body without @rcnn/backbone registered fails naming the missing body and the package', () => {
    const onlyFpn = createContainer();
    register(onlyFpn);
    const config = loadConfig({ layers: [{ MODEL: { CONV_BODY: 'R-50-FPN' } }] });
    assert.throws(
      () => buildBody(config, WeightStore.random(0), onlyFpn),
      (e: unknown) =>
        e instanceof RegistryError &&
        /conv body "FPN\.add_fpn_ResNet50_conv5_body" builds on the conv body "ResNet\.add_ResNet50_conv5_body", which is not registered/.test(e.message) &&
        /@rcnn\/backbone/.test(e.hint ?? ''),
    );
  });

  it('an unknown FPN.IMPL fails listing the known FPN implementations', () => {
    const config = loadConfig({ layers: [{ MODEL: { CONV_BODY: 'R-50-FPN' }, FPN: { IMPL: 'BiFPN' } }] });
    assert.throws(
      () => buildBody(config, WeightStore.random(0)),
      (e: unknown) => e instanceof RegistryError && /no FPN named "BiFPN" \(FPN\.IMPL\).*FPN\.add_fpn \(aliases: FeaturePyramidNetwork\)/.test(e.message),
    );
  });
});
