/**
 * The RPN's training targets under MODEL.LEGACY_PLUS_ONE: Detectron's `bbox_overlaps` decides the
 * match (a 10 x 10 anchor in a 10 x 14 GT is 100 / 140 = 0.714 with +1, 81 / 117 = 0.692 without)
 * and `bbox_transform_inv` the regression target, both computed by hand here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type HostTensor, type ResizedTargets, loadConfig, seededRandom } from '@rcnn/core';
import { rpnTraining } from '../src/index.js';

const anchors = Float32Array.from([0, 0, 9, 9, 100, 100, 120, 120]);
const gt: ResizedTargets = { boxes: Float32Array.from([0, 0, 9, 13]), labels: Int32Array.of(1), size: [200, 200] };

function targets(legacy: boolean): Readonly<Record<string, HostTensor>> {
  const config = loadConfig({ layers: [{ MODEL: { LEGACY_PLUS_ONE: legacy }, TRAIN: { RPN_ALLOW_LOW_QUALITY_MATCHES: false } }] });
  return rpnTraining.targets({ anchors, targets: [gt], sampling: { rand: seededRandom(0) } }, config).intermediates;
}

test('MODEL.LEGACY_PLUS_ONE: +1 IoU for the match, +1 widths for the target', () => {
  const legacy = targets(true);
  // 0.714 >= RPN_POSITIVE_OVERLAP 0.7: matched to GT 0; the far anchor is background.
  assert.deepEqual([...(legacy['train.rpn.matched_gt.0']!.data as BigInt64Array)].map(Number), [0, -1]);
  assert.deepEqual([...(legacy['train.rpn.sampled_pos.0']!.data as BigInt64Array)].map(Number), [0]);
  // Anchor: width 10, height 10, centre (5, 5). GT: width 10, height 14, centre (5, 7). RPN weights 1.
  const want = [0, 2 / 10, Math.log(10 / 10), Math.log(14 / 10)];
  const got = legacy['train.rpn.regression_targets.0']!.data as Float32Array;
  want.forEach((w, i) => assert.ok(Math.abs(got[i]! - w) <= 1e-6, `delta ${i}: ${got[i]} vs ${w}`));
  // torchvision's convention on the same boxes: 0.692 is between the thresholds (-2, ignored), nothing positive.
  const plain = targets(false);
  assert.deepEqual([...(plain['train.rpn.matched_gt.0']!.data as BigInt64Array)].map(Number), [-2, -1]);
  assert.equal(plain['train.rpn.sampled_pos.0']!.dims[0]!, 0);
});
