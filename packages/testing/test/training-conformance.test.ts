/**
 * The conformance kit's training checks on the built-in heads' training parts (RPN, box outputs,
 * mask head, keypoint head): losses, host targets, gradients against finite differences; and that
 * a head without a training part is reported as such.
 */
import assert from 'node:assert/strict';
import { before, it } from 'node:test';
import { type DependencyContainer, type RoiMaskHead, SLOTS, registerImplementation } from '@rcnn/core';
import { type TrainingSlotId, assertConformance, runTrainingConformance } from '../src/index.js';
import { builtInContainer, caseConfig } from './builtins.js';

let container: DependencyContainer;
before(async () => {
  container = await builtInContainer();
});

const CASES: readonly { slot: TrainingSlotId; name: string; caseName: string }[] = [
  { slot: 'rpn-head', name: 'rpn_heads.add_generic_rpn_outputs', caseName: 'maskrcnn_tiny' },
  { slot: 'rpn-head', name: 'rpn_heads.add_generic_rpn_outputs', caseName: 'fasterrcnn_tiny_c4' },
  { slot: 'roi-box-outputs', name: 'fast_rcnn_heads.add_fast_rcnn_outputs', caseName: 'maskrcnn_tiny' },
  { slot: 'roi-mask-head', name: 'mask_rcnn_heads.mask_rcnn_fcn_head_v1up4convs', caseName: 'maskrcnn_tiny' },
  { slot: 'roi-keypoint-head', name: 'keypoint_rcnn_heads.add_roi_pose_head_v1convX', caseName: 'keypointrcnn_tiny' },
];

for (const c of CASES) {
  it(`training conformance: ${c.slot} ${c.name} (${c.caseName})`, async (t) => {
    const report = await runTrainingConformance({ slot: c.slot, name: c.name, container, config: caseConfig(container, c.caseName) });
    for (const check of report.checks) t.diagnostic(`${check.pass ? 'ok ' : 'BAD'} ${check.id}: ${check.detail}`);
    assertConformance(report);
  });
}

it('training conformance reports a head without a training part', async () => {
  const plugin = container.createChildContainer();
  const value: RoiMaskHead = {
    build: () => {
      throw new Error('not built by the training checks');
    },
    weightPrefixes: ['roi_heads.mask_head.'],
    hostPostprocessor: 'paste_masks',
  };
  registerImplementation(plugin, SLOTS.roiMaskHead, { name: 'test.mask_head_without_training', provider: 'test', description: 'inference only', value });
  const report = await runTrainingConformance({ slot: 'roi-mask-head', name: 'test.mask_head_without_training', container: plugin, config: caseConfig(container, 'maskrcnn_tiny') });
  assert.equal(report.passed, false);
  assert.equal(report.checks.find((k) => k.id === 'training.present')?.pass, false);
});
