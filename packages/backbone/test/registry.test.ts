import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfigError,
  type HostTensor,
  RegistryError,
  SLOTS,
  WeightStore,
  buildFeaturesNet,
  createContainer,
  featureOutputName,
  listImplementations,
  loadConfig,
  resolveImplementation,
} from '@rcnn/core';
import { runModel } from '@rcnn/testing';
import { IMAGE_TRANSFORM, RESNET_BODIES, ResNetBody, register } from '../src/index.js';
import { backboneContainer } from './helpers.js';

const container = backboneContainer();
const architecture = (name: string, layer: Record<string, Record<string, unknown>> = {}) => {
  const body = resolveImplementation(container, SLOTS.convBody, name).value;
  assert.ok(body instanceof ResNetBody);
  return body.architecture(loadConfig({ layers: [{ FPN: { FPN_ON: false }, ...layer }] }));
};

describe('registry', () => {
  it('every registered name and alias resolves to its implementation', () => {
    const names = [...RESNET_BODIES.flatMap((b) => [b.name, ...(b.aliases ?? [])])];
    assert.equal(new Set(names).size, names.length);
    for (const impl of RESNET_BODIES) {
      for (const n of [impl.name, ...(impl.aliases ?? [])]) assert.equal(resolveImplementation(container, SLOTS.convBody, n), impl, n);
      assert.equal(impl.provider, '@rcnn/backbone');
      assert.equal(impl.value.isFpn, false);
      assert.deepEqual(impl.value.weightPrefixes, ['backbone.body.']);
    }
    assert.equal(resolveImplementation(container, SLOTS.imageTransform, 'GeneralizedRCNNTransform'), IMAGE_TRANSFORM);
    assert.equal(listImplementations(container, SLOTS.convBody).length, RESNET_BODIES.length);
  });

  it('has the Detectron names and the friendly aliases', () => {
    for (const n of [
      'ResNet.add_ResNet50_conv4_body', 'ResNet.add_ResNet50_conv5_body', 'ResNet.add_ResNet101_conv4_body', 'ResNet.add_ResNet101_conv5_body',
      'ResNet.add_ResNet152_conv4_body', 'ResNet.add_ResNet152_conv5_body', 'ResNet.add_ResNet_custom_conv4_body', 'ResNet.add_ResNet_custom_conv5_body',
      'R-50-C4', 'R-50-C5', 'R-101-C4', 'R-101-C5', 'R-152-C4', 'R-152-C5', 'X-101-32x8d-C4', 'X-101-32x8d-C5', 'X-101-64x4d-C4', 'X-101-64x4d-C5',
    ]) {
      assert.doesNotThrow(() => resolveImplementation(container, SLOTS.convBody, n), n);
    }
  });

  it('nothing registers on import; register() twice on one container adds nothing', () => {
    const fresh = createContainer();
    assert.equal(listImplementations(fresh, SLOTS.convBody).length, 0);
    register(fresh);
    register(fresh);
    assert.equal(listImplementations(fresh, SLOTS.convBody).length, RESNET_BODIES.length);
    assert.equal(listImplementations(fresh, SLOTS.imageTransform).length, 1);
  });

  it('an unknown body name fails listing the known names', () => {
    assert.throws(
      () => resolveImplementation(container, SLOTS.convBody, 'R-51-C4'),
      (e: unknown) =>
        e instanceof RegistryError &&
        /no conv body named "R-51-C4"/.test(e.message) &&
        e.message.includes('ResNet.add_ResNet50_conv4_body (aliases: R-50-C4) [@rcnn/backbone]') &&
        e.message.includes('X-101-64x4d-C5'),
    );
  });
});

describe('architectures by name', () => {
  it('standard depths: R-50 [3,4,6,3], R-101 [3,4,23,3], R-152 [3,8,36,3], planes 64..512; C4 stops at layer3', () => {
    assert.deepEqual(architecture('R-50-C5').blocks, [3, 4, 6, 3]);
    assert.deepEqual(architecture('R-101-C5').blocks, [3, 4, 23, 3]);
    assert.deepEqual(architecture('ResNet.add_ResNet152_conv5_body').blocks, [3, 8, 36, 3]);
    assert.deepEqual(architecture('R-152-C4').blocks, [3, 8, 36]);
    assert.deepEqual(architecture('R-50-C5').planes, [64, 128, 256, 512]);
    const r50 = architecture('R-50-C4');
    assert.deepEqual(r50.planes, [64, 128, 256]);
    assert.deepEqual(r50.conventions, { groups: 1, widthPerGroup: 64, stride1x1: false, norm: 'FrozenBN', eps: 1e-5 });
  });

  it('ResNeXt bodies have fixed groups/width; matching or default keys are fine, conflicting ones fail', () => {
    assert.deepEqual(architecture('X-101-32x8d-C4').conventions.groups, 32);
    assert.deepEqual(architecture('X-101-32x8d-C4').conventions.widthPerGroup, 8);
    assert.deepEqual(architecture('X-101-64x4d-C5').blocks, [3, 4, 23, 3]);
    assert.equal(architecture('X-101-64x4d-C5', { RESNETS: { NUM_GROUPS: 64, WIDTH_PER_GROUP: 4 } }).conventions.groups, 64);
    for (const [key, value] of [['NUM_GROUPS', 64], ['WIDTH_PER_GROUP', 4]] as const) {
      assert.throws(
        () => architecture('X-101-32x8d-C5', { RESNETS: { [key]: value } }),
        (e: unknown) =>
          e instanceof ConfigError && e.key === `RESNETS.${key}` && new RegExp(`ResNeXt101_32x8d_conv5_body .*fixed at (32|8), but RESNETS\\.${key} is ${value}`).test(e.message),
      );
    }
  });

  it('standard bodies honour RESNETS.NUM_GROUPS / WIDTH_PER_GROUP like Detectron (ResNeXt via ResNet101 + keys)', () => {
    const a = architecture('R-101-C5', { RESNETS: { NUM_GROUPS: 32, WIDTH_PER_GROUP: 8, STRIDE_1X1: true, NORM: 'AffineChannel' } });
    assert.deepEqual(a.conventions, { groups: 32, widthPerGroup: 8, stride1x1: true, norm: 'AffineChannel', eps: 1e-5 });
  });

  it('the custom bodies read RESNETS.STAGE_* (first 3 for C4, 4 for C5) and fail naming a short key', () => {
    const layer = { RESNETS: { STAGE_PLANES: [8, 16, 32, 64], STAGE_BLOCKS: [1, 2, 3], STEM_OUT_CHANNELS: 16 } };
    const c4 = architecture('ResNet.add_ResNet_custom_conv4_body', layer);
    assert.deepEqual([c4.planes, c4.blocks, c4.stemChannels], [[8, 16, 32], [1, 2, 3], 16]);
    assert.throws(
      () => architecture('ResNet.add_ResNet_custom_conv5_body', layer),
      (e: unknown) => e instanceof ConfigError && e.key === 'RESNETS.STAGE_BLOCKS' && /needs 4 entries in RESNETS\.STAGE_BLOCKS .* got 3/.test(e.message),
    );
    assert.throws(
      () => architecture('ResNet.add_ResNet_custom_conv4_body'),
      (e: unknown) => e instanceof ConfigError && e.key === 'RESNETS.STAGE_BLOCKS',
    );
    assert.throws(
      () => architecture('ResNet.add_ResNet_custom_conv4_body', { RESNETS: { STAGE_BLOCKS: [1, 0, 1] } }),
      (e: unknown) => e instanceof ConfigError && e.key === 'RESNETS.STAGE_BLOCKS' && /positive integers/.test(e.message),
    );
  });
});

describe('a random R-50-C4 (features-only net)', () => {
  it('outputs 1024 channels at stride 16, finite', async () => {
    const config = loadConfig({ layers: [{ MODEL: { CONV_BODY: 'R-50-C4' }, FPN: { FPN_ON: false } }] });
    const net = buildFeaturesNet(config, container, WeightStore.random(3));
    assert.deepEqual(net.levels.map((l) => [l.name, l.channels, l.spatialScale]), [['0', 1024, 1 / 16]]);
    const images: HostTensor<'float32'> = { dtype: 'float32', dims: [1, 3, 64, 96], data: Float32Array.from({ length: 3 * 64 * 96 }, (_, i) => Math.sin(i)) };
    const out = (await runModel(net.toBytes(), { images })).get(featureOutputName('0'))!;
    assert.deepEqual(out.dims, [1, 1024, 4, 6]);
    assert.ok((out.data as Float32Array).every(Number.isFinite));
  });

  it('conv5 bodies return layer1..layer4 as "0".."3" at levels 2..5; RES5_DILATION 2 keeps layer4 at stride 16', () => {
    const levels = (dilation: number) => {
      const config = loadConfig({ layers: [{ MODEL: { CONV_BODY: 'ResNet.add_ResNet_custom_conv5_body' }, FPN: { FPN_ON: false }, RESNETS: { STAGE_BLOCKS: [1, 1, 1, 1], STAGE_PLANES: [4, 8, 16, 32], STEM_OUT_CHANNELS: 8, RES5_DILATION: dilation } }] });
      return buildFeaturesNet(config, container, WeightStore.random(1)).levels.map((l) => [l.name, l.channels, l.spatialScale]);
    };
    assert.deepEqual(levels(1), [['0', 16, 1 / 4], ['1', 32, 1 / 8], ['2', 64, 1 / 16], ['3', 128, 1 / 32]]);
    assert.deepEqual(levels(2)[3], ['3', 128, 1 / 16]);
  });
});
