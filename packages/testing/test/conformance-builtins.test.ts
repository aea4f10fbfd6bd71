/**
 * The conformance kit on every built-in head: conv bodies (the fixtures' tiny C4 body, ResNet-50
 * C4, a custom tiny C5 body in Detectron's conventions, the FPN bodies incl. a grouped one), the
 * FPN itself, the RPN (FPN and C4), the 2-MLP box head, the box outputs, the mask head and the
 * keypoint head.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { DependencyContainer } from '@rcnn/core';
import { type ConformanceOptions, assertConformance, loadParityCase, publicCaseDir, runConformance } from '../src/index.js';
import { builtInContainer, caseConfig, loadPackage } from './builtins.js';

let container: DependencyContainer;
before(async () => {
  container = await builtInContainer();
});

type Case = Omit<ConformanceOptions, 'container' | 'config'> & { readonly caseName: string; readonly overrides?: Record<string, Record<string, unknown>> };

const CASES: readonly Case[] = [
  { slot: 'conv-body', name: 'ResNet.add_ResNet_custom_conv4_body', caseName: 'fasterrcnn_tiny_c4' },
  // A named-depth body at full width (ResNet-50 C4, 8.5M parameters).
  { slot: 'conv-body', name: 'R-50-C4', caseName: 'fasterrcnn_tiny_c4', overrides: { MODEL: { CONV_BODY: 'R-50-C4' } } },
  {
    slot: 'conv-body',
    name: 'ResNet.add_ResNet_custom_conv5_body',
    caseName: 'fasterrcnn_tiny_c4',
    // A custom tiny C5 body: four stages, Detectron's stride-in-1x1 and AffineChannel conventions.
    overrides: { RESNETS: { STAGE_PLANES: [4, 8, 8, 16], STAGE_BLOCKS: [1, 2, 1, 1], STEM_OUT_CHANNELS: 8, STRIDE_1X1: true, NORM: 'AffineChannel' } },
  },
  { slot: 'conv-body', name: 'FPN.add_fpn_ResNet_custom_conv5_body', caseName: 'maskrcnn_tiny' },
  { slot: 'conv-body', name: 'FPN.add_fpn_ResNet_custom_conv5_body', caseName: 'fasterrcnn_tiny_x_batch2' },
  { slot: 'fpn', name: 'FPN.add_fpn', caseName: 'maskrcnn_tiny', weightPrefixes: ['backbone.fpn.'] },
  { slot: 'rpn-head', name: 'rpn_heads.add_generic_rpn_outputs', caseName: 'maskrcnn_tiny' },
  { slot: 'rpn-head', name: 'RPNHead', caseName: 'fasterrcnn_tiny_c4' },
  { slot: 'roi-box-head', name: 'fast_rcnn_heads.add_roi_2mlp_head', caseName: 'maskrcnn_tiny' },
  { slot: 'roi-box-outputs', name: 'fast_rcnn_heads.add_fast_rcnn_outputs', caseName: 'fasterrcnn_tiny_x_batch2', boxHeadDim: 64 },
  { slot: 'roi-mask-head', name: 'mask_rcnn_heads.mask_rcnn_fcn_head_v1up4convs', caseName: 'maskrcnn_tiny' },
  { slot: 'roi-keypoint-head', name: 'keypoint_rcnn_heads.add_roi_pose_head_v1convX', caseName: 'keypointrcnn_tiny' },
];

describe('conformance of the built-in heads', () => {
  for (const c of CASES) {
    it(`${c.slot} ${c.name} (${c.caseName}${c.overrides ? ', custom' : ''})`, async (t) => {
      const { caseName, overrides, ...rest } = c;
      const report = await runConformance({ ...rest, container, config: caseConfig(container, caseName, ...(overrides ? [overrides] : [])) });
      // The full report is in the assertion message when a check fails.
      t.diagnostic(`${report.checks.length} checks, ${report.weights.consumed.length} weights read, ${report.taps.length} taps, ${report.durationMs.toFixed(0)} ms`);
      assertConformance(report);
      assert.ok(report.cases.length >= 4, 'ran every batch and image size');
    });
  }

  it('checks the register() of each package in a fresh container', async () => {
    const rpn = await loadPackage('@rcnn/rpn');
    const report = await runConformance({ slot: 'rpn-head', name: 'rpn_heads.add_generic_rpn_outputs', container, config: caseConfig(container, 'fasterrcnn_tiny_c4'), register: rpn.register, batchSizes: [1], imageSizes: [[64, 64]] });
    assertConformance(report);
    assert.ok(report.checks.some((k) => k.id === 'registry.register' && k.pass));
  });

  it('reports the weights a stage reads from a file, and none ignored under its prefixes', async () => {
    const pc = loadParityCase(publicCaseDir('fasterrcnn_tiny_c4'));
    const report = await runConformance({
      slot: 'rpn-head',
      name: 'rpn_heads.add_generic_rpn_outputs',
      container,
      config: caseConfig(container, 'fasterrcnn_tiny_c4'),
      weights: pc.weights(),
      batchSizes: [1],
      imageSizes: [[64, 96]],
    });
    assertConformance(report);
    assert.deepEqual(
      report.weights.consumed.map((w) => w.key).sort(),
      ['rpn.head.bbox_pred.bias', 'rpn.head.bbox_pred.weight', 'rpn.head.cls_logits.bias', 'rpn.head.cls_logits.weight', 'rpn.head.conv.0.0.bias', 'rpn.head.conv.0.0.weight'],
    );
    assert.deepEqual(report.weights.consumed.find((w) => w.key === 'rpn.head.cls_logits.weight')?.shape, [15, 256, 1, 1]);
    assert.ok(report.checks.some((k) => k.id === 'weights.unused' && k.pass));
  });
});
