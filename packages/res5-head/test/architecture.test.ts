/** Which res5 stage the head builds for each conv body, its typed errors, and that it uses only public APIs. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { register as registerBackbone } from '@rcnn/backbone';
import { ConfigError, type ConfigOverrides, type FeatureMap, GraphBuilder, RegistryError, SLOTS, createContainer, loadConfig, proposalsToRois, resolveImplementation } from '@rcnn/core';
import { createTestContext } from '@rcnn/testing';
import { RES5_HEAD_NAME, res5Architecture, res5Head, register } from '../src/index.js';

function containerWithBodies(): ReturnType<typeof createContainer> {
  const c = createContainer();
  registerBackbone(c);
  register(c);
  return c;
}

const c4 = (layer: Record<string, Record<string, unknown>> = {}): ConfigOverrides => ({
  ...layer,
  MODEL: { CONV_BODY: 'R-50-C4', ...(layer.MODEL ?? {}) },
  FPN: { FPN_ON: false },
  FAST_RCNN: { ROI_BOX_HEAD: RES5_HEAD_NAME, ROI_XFORM_RESOLUTION: 14 },
});

describe('res5 architecture', () => {
  it('is the standard res5 (512 planes, 3 blocks, stride 2) after a named body', () => {
    const a = res5Architecture(loadConfig({ layers: [c4()] }), containerWithBodies());
    assert.deepEqual([a.planes, a.blocks, a.stride, a.dilation, a.conventions.groups], [512, 3, 2, 1, 1]);
  });

  it("takes the ResNeXt body's fixed groups and width", () => {
    const a = res5Architecture(loadConfig({ layers: [c4({ MODEL: { CONV_BODY: 'X-101-32x8d-C4' } })] }), containerWithBodies());
    assert.deepEqual([a.conventions.groups, a.conventions.widthPerGroup], [32, 8]);
  });

  it('takes the 4th RESNETS.STAGE_* entries after the custom C4 body, and names the key when there is none', () => {
    const custom = { MODEL: { CONV_BODY: 'ResNet.add_ResNet_custom_conv4_body' }, RESNETS: { STAGE_PLANES: [8, 16, 32, 24], STAGE_BLOCKS: [1, 1, 1, 2] } };
    const a = res5Architecture(loadConfig({ layers: [c4(custom)] }), containerWithBodies());
    assert.deepEqual([a.planes, a.blocks], [24, 2]);
    const short = { ...custom, RESNETS: { STAGE_PLANES: [8, 16, 32, 24], STAGE_BLOCKS: [1, 1, 1] } };
    assert.throws(() => res5Architecture(loadConfig({ layers: [c4(short)] }), containerWithBodies()), (e: unknown) => e instanceof ConfigError && e.key === 'RESNETS.STAGE_BLOCKS');
  });

  it('is dilated with stride 1 for RESNETS.RES5_DILATION 2 and refuses 3', () => {
    const a = res5Architecture(loadConfig({ layers: [c4({ RESNETS: { RES5_DILATION: 2 } })] }), containerWithBodies());
    assert.deepEqual([a.stride, a.dilation], [1, 2]);
    assert.throws(() => res5Architecture(loadConfig({ layers: [c4({ RESNETS: { RES5_DILATION: 3 } })] }), containerWithBodies()), (e: unknown) => e instanceof ConfigError && e.key === 'RESNETS.RES5_DILATION');
  });

  it('refuses several feature levels (an FPN body) with a ConfigError', () => {
    const config = loadConfig({ layers: [c4()] });
    const ctx = createTestContext(config, { container: containerWithBodies() });
    const g: GraphBuilder = ctx.graph;
    const level = (name: string, l: number): FeatureMap => ({ name, blob: g.input(`f${name}`, 'float32', ['N', 256, 'H', 'W']), channels: 256, spatialScale: 2 ** -l, level: l });
    const proposals = { boxes: g.input('b', 'float32', ['N', 'K', 4]), scores: g.input('s', 'float32', ['N', 'K']), valid: g.input('v', 'bool', ['N', 'K']), counts: g.input('c', 'int64', ['N']) };
    assert.throws(() => res5Head.build(ctx, [level('0', 2), level('1', 3)], proposalsToRois(g, proposals)), (e: unknown) => e instanceof ConfigError && /single C4 feature map/.test(e.message));
  });

  it('is registered only by register(), and an unknown name lists it', () => {
    const c = createContainer();
    assert.throws(() => resolveImplementation(c, SLOTS.roiBoxHead, RES5_HEAD_NAME), RegistryError);
    register(c);
    assert.throws(() => resolveImplementation(c, SLOTS.roiBoxHead, 'ResNet.add_ResNet_roi_conv5_heads'), (e: unknown) => e instanceof RegistryError && e.message.includes(RES5_HEAD_NAME));
  });

  it('imports nothing but @rcnn/core and @rcnn/backbone (and its own files)', () => {
    const src = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
    const specifiers = readdirSync(src)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...readFileSync(join(src, f), 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!));
    assert.ok(specifiers.length > 0);
    assert.deepEqual(specifiers.filter((s) => !s.startsWith('./') && s !== '@rcnn/core' && s !== '@rcnn/backbone'), []);
  });
});
