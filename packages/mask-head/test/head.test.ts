/** Registration, config/weights checks, legacy weight names and the class-agnostic variant. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type HostTensor, SLOTS, WeightStore, createContainer, decodeEntry, loadConfig, readSafetensorsFile, resolveImplementation } from '@rcnn/core';
import { compareDense } from '@rcnn/testing';
import { MASK_RCNN_FCN_HEAD, PASTE_MASKS, PasteMasks, register } from '../src/index.js';
import { CASE_DIR, batchFeatures, buildMaskHeadModel, config, parity, referenceDetections, runMaskHead } from './harness.js';

describe('registration', () => {
  const container = createContainer();
  register(container);

  it('resolves the head by its Detectron name and aliases', () => {
    for (const name of ['mask_rcnn_heads.mask_rcnn_fcn_head_v1up4convs', 'MaskRCNNHeads', 'mask_rcnn_heads.mask_rcnn_fcn_head_v1upXconvs']) {
      const impl = resolveImplementation(container, SLOTS.roiMaskHead, name);
      assert.equal(impl, MASK_RCNN_FCN_HEAD);
      assert.equal(impl.provider, '@rcnn/mask-head');
      assert.equal(impl.value.hostPostprocessor, PASTE_MASKS);
    }
    assert.ok(resolveImplementation(container, SLOTS.hostPostprocessor, PASTE_MASKS).value instanceof PasteMasks);
  });

  it('an unknown name fails listing the registered ones', () => {
    assert.throws(() => resolveImplementation(container, SLOTS.roiMaskHead, 'mask_rcnn_heads.nope'), {
      name: 'RegistryError',
      message: /mask_rcnn_heads\.mask_rcnn_fcn_head_v1up4convs/,
    });
  });

  it('registering twice is harmless', () => {
    assert.doesNotThrow(() => register(container));
  });
});

describe('config and weight checks', () => {
  it('MRCNN.RESOLUTION must be ROI_XFORM_RESOLUTION x UPSAMPLE_RATIO', () => {
    const cfg = loadConfig({ layers: [join(CASE_DIR, 'case.json')], set: ['MRCNN.RESOLUTION=14'] });
    assert.throws(() => buildMaskHeadModel(cfg), { name: 'ConfigError', key: 'MRCNN.RESOLUTION', message: /14 x 2 = 28/ });
  });

  it('weights of another class count fail naming the tensor', () => {
    const cfg = loadConfig({ layers: [join(CASE_DIR, 'case.json')], set: ['MODEL.NUM_CLASSES=7'] });
    assert.throws(() => buildMaskHeadModel(cfg), {
      name: 'WeightsError',
      message: /roi_heads\.mask_predictor\.mask_fcn_logits\.weight" has shape \[5, 16, 1, 1\], expected \[7, 16, 1, 1\]/,
    });
  });

  it('a head width that differs from the weights fails naming the layer', () => {
    const cfg = loadConfig({ layers: [join(CASE_DIR, 'case.json')], set: ['MRCNN.CONV_HEAD_DIM=8'] });
    assert.throws(() => buildMaskHeadModel(cfg), { name: 'WeightsError', message: /roi_heads\.mask_head\.0\.0\.weight/ });
  });
});

describe('weights saved by torchvision < 0.13 (mask_fcn<i> names)', () => {
  it('give the same masks as the current names', async () => {
    // torchvision renames mask_head.mask_fcn<i+1>.* to mask_head.<i>.0.* when loading old checkpoints.
    const file = readSafetensorsFile(join(CASE_DIR, 'weights.safetensors'));
    const renamed = new Map<string, HostTensor>();
    for (const [key, entry] of file.entries) {
      const m = /^roi_heads\.mask_head\.(\d+)\.0\.(weight|bias)$/.exec(key);
      renamed.set(m ? `roi_heads.mask_head.mask_fcn${Number(m[1]) + 1}.${m[2]}` : key, decodeEntry(entry));
    }
    assert.ok(renamed.has('roi_heads.mask_head.mask_fcn4.weight') && !renamed.has('roi_heads.mask_head.0.0.weight'));
    const weights = WeightStore.fromTensors(renamed, 'legacy names');
    const out = await runMaskHead(buildMaskHeadModel(config, weights), batchFeatures([1]), referenceDetections());
    const v = compareDense('det.mask_probs.0', out.get('det.mask_probs')!, parity.reference('det.mask_probs.0'));
    assert.ok(v.pass, v.detail);
    assert.deepEqual(weights.unusedKeys(['roi_heads.mask_']), []);
  });
});

describe('class-agnostic masks (MRCNN.CLS_SPECIFIC_MASK = false)', () => {
  it('predicts one channel and passes it through the sigmoid', async () => {
    const cfg = loadConfig({ layers: [join(CASE_DIR, 'case.json')], set: ['MRCNN.CLS_SPECIFIC_MASK=false'] });
    const out = await runMaskHead(buildMaskHeadModel(cfg, WeightStore.random(3)), batchFeatures([1]), referenceDetections());
    const logits = out.get('roi.mask_logits')!;
    const probs = out.get('det.mask_probs')!;
    const d = referenceDetections().labels.length;
    assert.deepEqual(logits.dims, [d, 1, 28, 28]);
    assert.deepEqual(probs.dims, [d, 1, 28, 28]);
    const expected: HostTensor = { dtype: 'float32', dims: probs.dims, data: (logits.data as Float32Array).map((v) => 1 / (1 + Math.exp(-v))) };
    const v = compareDense('sigmoid', probs, expected, 1e-6);
    assert.ok(v.pass, v.detail);
    assert.ok(config.MRCNN.CLS_SPECIFIC_MASK, 'the fixture itself is class-specific');
  });
});
