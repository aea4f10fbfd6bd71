import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, WeightStore, WeightsError, createContainer, hostTensor, registerWeightsReader, writeSafetensors } from '@rcnn/core';
import { publicCaseDir } from '@rcnn/testing';
import {
  DETECTRON_COCO_CATEGORY_IDS,
  PRESETS,
  TORCHVISION_COCO_CATEGORIES,
  defaultLabels,
  findPreset,
  loadWeights,
  resolveConfig,
} from '../src/index.js';
import {
  CLASS_LOGIT_BIAS_KEY,
  RESIDUAL_GAIN,
  calibratedClassBias,
  calibratedRandomWeights,
  spreadClasses,
} from '../src/weights.js';
import { tempDir } from './helpers.js';

describe('presets', () => {
  it('every preset is a valid config', () => {
    for (const p of PRESETS) {
      const { config, labels } = resolveConfig(p.name);
      assert.equal(labels.categories.length, config.MODEL.NUM_CLASSES, p.name);
      for (const a of p.aliases) assert.equal(findPreset(a), p);
    }
  });

  it('torchvision presets: 91 COCO classes with N/A gaps, eps 0 of the published weights, person keypoints', () => {
    const mask = resolveConfig('maskrcnn_resnet50_fpn');
    assert.equal(mask.config.MODEL.MASK_ON, true);
    assert.equal(mask.config.MODEL.NUM_CLASSES, 91);
    assert.equal(mask.config.RESNETS.FROZEN_BN_EPS, 0);
    assert.equal(mask.labels.categories[1], 'person');
    assert.equal(mask.labels.categories[12], 'N/A');
    assert.equal(mask.labels.categories[90], 'toothbrush');
    const kp = resolveConfig('keypointrcnn_resnet50_fpn');
    assert.equal(kp.config.MODEL.KEYPOINTS_ON, true);
    assert.deepEqual(kp.labels.categories, ['__background__', 'person']);
    assert.equal(kp.labels.keypointNames?.length, 17);
    assert.equal(kp.labels.keypointNames?.[0], 'nose');
    assert.ok((kp.labels.skeleton ?? []).every(([a, b]) => a < 17 && b < 17));
    assert.equal(resolveConfig('fasterrcnn_resnet50_fpn').config.MODEL.MASK_ON, false);
  });

  it('Detectron presets carry Detectron semantics', () => {
    const { config, labels } = resolveConfig('e2e_mask_rcnn_R-50-FPN_1x');
    assert.equal(config.MODEL.NUM_CLASSES, 81);
    assert.equal(config.INPUT.FORMAT, 'BGR');
    assert.deepEqual(config.INPUT.PIXEL_MEANS, [102.9801, 115.9465, 122.7717]);
    assert.equal(config.INPUT.RESIZE_RULE, 'detectron');
    assert.equal(config.MODEL.LEGACY_PLUS_ONE, true);
    assert.equal(config.RESNETS.STRIDE_1X1, true);
    assert.equal(config.MRCNN.DILATION, 1);
    assert.equal(labels.categoryIds[80], 90, 'contiguous class 80 is COCO id 90 (toothbrush)');
    assert.equal(DETECTRON_COCO_CATEGORY_IDS[12], 13, 'stop sign');
    const c4 = resolveConfig('e2e_faster_rcnn_R-50-C4_1x').config;
    assert.equal(c4.FPN.FPN_ON, false);
    assert.equal(c4.MODEL.CONV_BODY, 'ResNet.add_ResNet50_conv4_body');
    assert.equal(c4.FAST_RCNN.ROI_BOX_HEAD, 'ResNet.add_ResNet_roi_conv5_head');
    assert.equal(c4.INPUT.SIZE_DIVISIBILITY, 0);
    assert.equal(resolveConfig('e2e_mask_rcnn_R-50-FPN_2x').preset?.name, 'e2e_mask_rcnn_R-50-FPN_1x');
    assert.equal(resolveConfig('e2e_keypoint_rcnn_R-50-FPN_1x.yaml').config.MODEL.KEYPOINTS_ON, true);
  });

  it('an unknown preset lists the presets; a missing file says so', () => {
    assert.throws(
      () => resolveConfig('maskrcnn_resnet50'),
      (e: unknown) => e instanceof ConfigError && /unknown preset "maskrcnn_resnet50"; presets: maskrcnn_resnet50_fpn, /.test(e.message) && /did you mean maskrcnn_resnet50_fpn/.test(e.hint ?? ''),
    );
    assert.throws(() => resolveConfig('configs/nope.yaml'), /config file configs\/nope\.yaml not found/);
  });

  it('reads YAML files, parity case.json files, and --set overrides', () => {
    const dir = tempDir();
    const yaml = join(dir, 'model.yaml');
    writeFileSync(yaml, 'MODEL:\n  NUM_CLASSES: 5\n  MASK_ON: true\n');
    const fromYaml = resolveConfig(yaml, { set: ['TEST.SCORE_THRESH=0.3'] });
    assert.equal(fromYaml.config.MODEL.NUM_CLASSES, 5);
    assert.equal(fromYaml.config.TEST.SCORE_THRESH, 0.3);
    assert.deepEqual(fromYaml.labels.categories, ['__background__', 'class_1', 'class_2', 'class_3', 'class_4']);
    const fromCase = resolveConfig(join(publicCaseDir('keypointrcnn_tiny'), 'case.json'));
    assert.equal(fromCase.config.MODEL.KEYPOINTS_ON, true);
    assert.equal(fromCase.config.TEST.SCALE, 224);
    assert.deepEqual(fromCase.labels.categories, ['__background__', 'person']);
  });

  it('default labels', () => {
    assert.equal(defaultLabels(91, undefined).categories, TORCHVISION_COCO_CATEGORIES);
    assert.equal(defaultLabels(81, undefined).categoryIds[1], 1);
    assert.deepEqual(defaultLabels(3, 4).keypointNames, ['kp_0', 'kp_1', 'kp_2', 'kp_3']);
  });
});

describe('weights', () => {
  const dir = tempDir();

  it('picks the reader by extension; safetensors is built in', async () => {
    const path = join(dir, 'w.safetensors');
    writeFileSync(path, writeSafetensors([['a.weight', hostTensor('float32', [2], Float32Array.of(1, 2))]]));
    const store = await loadWeights(path);
    assert.deepEqual(Array.from(store.take('a.weight', [2])), [1, 2]);
    assert.equal(store.isRandom, false);
  });

  it('uses a registered reader, and names the formats it knows when none fits', async () => {
    const container = createContainer();
    const pth = join(dir, 'w.pth');
    writeFileSync(pth, 'fake');
    await assert.rejects(
      loadWeights(pth, container),
      (e: unknown) => e instanceof WeightsError && /no reader for weights file .*w\.pth .*known formats: \.safetensors/.test(e.message) && /@rcnn\/checkpoint/.test(e.hint ?? ''),
    );
    registerWeightsReader(container, {
      format: 'fake',
      extensions: ['.pth'],
      provider: 'test',
      read: (p) => WeightStore.fromTensors(new Map([['x', hostTensor('float32', [1], Float32Array.of(7))]]), p),
    });
    assert.deepEqual(Array.from((await loadWeights(pth, container)).take('x', [1])), [7]);
    await assert.rejects(loadWeights(join(dir, 'missing.safetensors')), /cannot read weights file .*missing\.safetensors: no such file/);
  });

  it('calibrates the class-logit bias of random weights so chosen classes pass the score threshold', () => {
    assert.deepEqual(spreadClasses(91, 5, new Set([12, 26])), [1, 19, 38, 55, 73]);
    assert.deepEqual(spreadClasses(2, 5), [1]);
    const bias = calibratedClassBias(91, [1, 19, 38, 55, 73], 0.1);
    // softmax over the bias alone: each chosen class scores the target
    const exp = Array.from(bias, Math.exp);
    const sum = exp.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(exp[1]! / sum - 0.1) < 1e-6);
    assert.equal(bias[0], 0);
    const { config } = resolveConfig('maskrcnn_resnet50_fpn');
    const store = calibratedRandomWeights(3, config, { skipClasses: new Set([12]) });
    assert.equal(store.isRandom, true);
    assert.match(store.description, /random weights \(seed 3; calibrated: residual branches x0\.2, class-logit bias so that classes 1, /);
    // The residual branches' last norm scale is damped; other norms are not.
    const init = { kind: 'uniform', low: 0.5, high: 1.5 } as const;
    const plain = WeightStore.random(3);
    const bn3 = 'backbone.body.layer2.1.bn3.weight';
    const damped = store.take(bn3, [8], init);
    plain.take(bn3, [8], init).forEach((v, i) => assert.ok(Math.abs(damped[i]! - v * RESIDUAL_GAIN) < 1e-6));
    assert.deepEqual(Array.from(store.take('backbone.body.layer2.1.bn2.weight', [8], init)), Array.from(plain.take('backbone.body.layer2.1.bn2.weight', [8], init)));
    const b = store.take(CLASS_LOGIT_BIAS_KEY, [91], { kind: 'constant', value: 0 });
    assert.ok(b[1]! > 2 && b[2] === 0);
    assert.deepEqual(Array.from(store.fork().take(CLASS_LOGIT_BIAS_KEY, [91])), Array.from(b), 'forks keep the calibration');
    // Other tensors are drawn as the stage asks, deterministically.
    assert.deepEqual(Array.from(store.take('x', [3], { kind: 'normal', std: 1 })), Array.from(WeightStore.random(3).take('x', [3], { kind: 'normal', std: 1 })));
  });
});
