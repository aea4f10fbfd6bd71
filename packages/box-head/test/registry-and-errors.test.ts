/** Registration, and the typed errors a bad config, bad weights or bad inputs give. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfigError,
  type FeatureMaps,
  RegistryError,
  SLOTS,
  WeightStore,
  WeightsError,
  createContainer,
  loadConfig,
  proposalsToRois,
  resolveImplementation,
} from '@rcnn/core';
import { createTestContext, loadParityCase, publicCaseDir } from '@rcnn/testing';
import { FAST_RCNN_OUTPUTS, TWO_MLP_HEAD, fastRcnnOutputs, register, twoMlpHead } from '../src/index.js';
import { buildBoxStage, caseConfig } from './harness.js';

const pc = loadParityCase(publicCaseDir('fasterrcnn_tiny_x_batch2'));

describe('register', () => {
  it('registers both slots under their Detectron names and torchvision aliases, idempotently', () => {
    const container = createContainer();
    register(container);
    register(container);
    for (const name of ['fast_rcnn_heads.add_roi_2mlp_head', 'TwoMLPHead']) {
      assert.equal(resolveImplementation(container, SLOTS.roiBoxHead, name).value, twoMlpHead);
    }
    for (const name of ['fast_rcnn_heads.add_fast_rcnn_outputs', 'FastRCNNPredictor']) {
      assert.equal(resolveImplementation(container, SLOTS.roiBoxOutputs, name).value, fastRcnnOutputs);
    }
    assert.equal(TWO_MLP_HEAD.provider, '@rcnn/box-head');
    assert.equal(FAST_RCNN_OUTPUTS.provider, '@rcnn/box-head');
    // The defaults of FAST_RCNN.* name these implementations.
    const config = loadConfig();
    assert.equal(resolveImplementation(container, SLOTS.roiBoxHead, config.FAST_RCNN.ROI_BOX_HEAD).value, twoMlpHead);
    assert.equal(resolveImplementation(container, SLOTS.roiBoxOutputs, config.FAST_RCNN.OUTPUTS).value, fastRcnnOutputs);
  });

  it('nothing is registered by importing the package', () => {
    assert.throws(() => resolveImplementation(createContainer(), SLOTS.roiBoxHead, 'TwoMLPHead'), RegistryError);
  });

  it('an unknown head name fails with the list of registered names', () => {
    const container = createContainer();
    register(container);
    assert.throws(
      () => resolveImplementation(container, SLOTS.roiBoxHead, 'fast_rcnn_heads.add_roi_Xconv1fc_head'),
      (e: unknown) => e instanceof RegistryError && e.message.includes('fast_rcnn_heads.add_roi_2mlp_head') && e.message.includes('TwoMLPHead'),
    );
  });
});

describe('typed errors', () => {
  const expectWeightsError = (set: string[], key: string, shape: string): void => {
    assert.throws(
      () => buildBoxStage(caseConfig(pc, set), pc.weights(), 32),
      (e: unknown) => e instanceof WeightsError && e.key === key && e.message.includes(shape),
    );
  };

  it('weights that do not fit MODEL.NUM_CLASSES name the predictor tensor and both shapes', () => {
    expectWeightsError(['MODEL.NUM_CLASSES=5'], 'roi_heads.box_predictor.cls_score.weight', '[5, 64]');
  });

  it('weights that do not fit FAST_RCNN.MLP_HEAD_DIM name fc6', () => {
    expectWeightsError(['FAST_RCNN.MLP_HEAD_DIM=128'], 'roi_heads.box_head.fc6.weight', '[128, 1568]');
  });

  it('per-class weights with MODEL.CLS_AGNOSTIC_BBOX_REG name bbox_pred and its expected 8 outputs', () => {
    expectWeightsError(['MODEL.CLS_AGNOSTIC_BBOX_REG=true'], 'roi_heads.box_predictor.bbox_pred.weight', '[8, 64]');
  });

  it('weights for another RoI resolution name fc6', () => {
    expectWeightsError(['FAST_RCNN.ROI_XFORM_RESOLUTION=14'], 'roi_heads.box_head.fc6.weight', '[64, 6272]');
  });

  it('RoI levels of different widths are a ConfigError, not an ORT failure', () => {
    const ctx = createTestContext(loadConfig(), { weights: WeightStore.random(0) });
    const g = ctx.graph;
    const features: FeatureMaps = [
      { name: '0', blob: g.input('f0', 'float32', ['N', 32, 'H', 'W']), channels: 32, spatialScale: 1 / 4, level: 2 },
      { name: '1', blob: g.input('f1', 'float32', ['N', 64, 'H1', 'W1']), channels: 64, spatialScale: 1 / 8, level: 3 },
    ];
    const proposals = {
      boxes: g.input('b', 'float32', ['N', 'K', 4]),
      scores: g.input('s', 'float32', ['N', 'K']),
      valid: g.input('v', 'bool', ['N', 'K']),
      counts: g.input('c', 'int64', ['N']),
    };
    assert.throws(
      () => twoMlpHead.build(ctx, features, proposalsToRois(g, proposals)),
      (e: unknown) => e instanceof ConfigError && e.message.includes("'1': 64"),
    );
    assert.throws(() => twoMlpHead.build(ctx, [], proposalsToRois(g, proposals)), ConfigError);
  });
});
