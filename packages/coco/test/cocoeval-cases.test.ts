import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '@rcnn/core';
import { type CocoDatasetJson, type CocoResultJson, defaultEvalParams, evaluateCoco, formatSummary, pythonFixed } from '../src/index.js';

/** pycocotools divides by tp + fp + eps, so a perfect precision is 1 - 2e-16, not 1. */
function near(actual: number | null | undefined, expected: number, what = ''): void {
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) < 1e-12, `${what} ${actual} vs ${expected}`);
}

const dataset: CocoDatasetJson = {
  images: [
    { id: 1, width: 200, height: 100, file_name: 'a.png' },
    { id: 2, width: 200, height: 100, file_name: 'b.png' },
  ],
  categories: [
    { id: 3, name: 'cat' },
    { id: 7, name: 'dog' },
  ],
  annotations: [
    { id: 1, image_id: 1, category_id: 3, bbox: [10, 10, 50, 40], area: 2000, iscrowd: 0 },
    { id: 2, image_id: 1, category_id: 7, bbox: [100, 20, 20, 20], area: 400, iscrowd: 0 },
    { id: 3, image_id: 2, category_id: 3, bbox: [0, 0, 200, 100], area: 20000, iscrowd: 1 },
  ],
};

test('the defaults are pycocotools Params: thresholds, maxDets, area ranges', () => {
  const p = defaultEvalParams('bbox');
  assert.equal(p.iouThrs.length, 10);
  assert.equal(p.iouThrs[0], 0.5);
  assert.equal(p.iouThrs[5], 0.75);
  assert.equal(p.iouThrs[9], 0.95);
  assert.equal(p.recThrs.length, 101);
  assert.deepEqual(p.maxDets, [1, 10, 100]);
  assert.deepEqual(p.areaRanges.map((a) => a.label), ['all', 'small', 'medium', 'large']);
  const k = defaultEvalParams('keypoints');
  assert.deepEqual(k.maxDets, [20]);
  assert.deepEqual(k.areaRanges.map((a) => a.label), ['all', 'medium', 'large']);
  assert.equal(k.kptOksSigmas.length, 17);
});

test('the ground truth as results gives AP 1; detections on a crowd region are neither right nor wrong', () => {
  const results: CocoResultJson[] = [
    { image_id: 1, category_id: 3, bbox: [10, 10, 50, 40], score: 0.9 },
    { image_id: 1, category_id: 7, bbox: [100, 20, 20, 20], score: 0.8 },
    { image_id: 2, category_id: 3, bbox: [20, 20, 30, 30], score: 0.95 },
    { image_id: 2, category_id: 3, bbox: [60, 20, 30, 30], score: 0.94 },
  ];
  const r = evaluateCoco(dataset, results, 'bbox');
  near(r.stats[0], 1);
  near(r.stats[1], 1);
  near(r.stats[3], 1); // small: the dog (area 400)
  near(r.stats[4], 1); // medium: the cat (area 2000)
  assert.equal(r.stats[5], -1); // large: only the crowd region, which is ignored
  near(r.perCategory.get(3), 1);
  near(r.perCategory.get(7), 1);
  assert.match(formatSummary(r), /^ Average Precision {2}\(AP\) @\[ IoU=0\.50:0\.95 \| area= {3}all \| maxDets=100 \] = 1\.000$/m);
});

test('no results: every AP and AR is 0 where there is ground truth', () => {
  const r = evaluateCoco(dataset, [], 'bbox');
  assert.equal(r.stats[0], 0);
  assert.equal(r.stats[8], 0);
  assert.equal(r.stats[5], -1);
  assert.equal(r.perCategory.get(3), 0);
});

test('one false positive ranked above the true one halves the precision at that recall', () => {
  const results: CocoResultJson[] = [
    { image_id: 1, category_id: 7, bbox: [0, 60, 20, 20], score: 0.9 },
    { image_id: 1, category_id: 7, bbox: [100, 20, 20, 20], score: 0.8 },
  ];
  const r = evaluateCoco(dataset, results, 'bbox', { categoryIds: [7] });
  // Recall reaches 1 at the second detection with precision 1/2 (up to pycocotools' epsilon).
  assert.ok(Math.abs(r.stats[0]! - 0.5) < 1e-12, String(r.stats[0]));
  assert.equal(r.stats[6], 0); // AR@1: the top detection is wrong
  near(r.stats[7], 1);
});

test('bad results fail with InputError naming the entry', () => {
  assert.throws(() => evaluateCoco(dataset, [{ image_id: 99, category_id: 3, bbox: [0, 0, 1, 1], score: 1 }], 'bbox'), /results\[0\]: image_id 99/);
  assert.throws(() => evaluateCoco(dataset, [{ image_id: 1, category_id: 3, bbox: [0, 0, 1], score: 1 }], 'bbox'), InputError);
  assert.throws(() => evaluateCoco(dataset, [{ image_id: 1, category_id: 3, bbox: [0, 0, 1, 1], score: Number.NaN }], 'bbox'), /score/);
  assert.throws(() => evaluateCoco({ images: [] } as unknown as CocoDatasetJson, [], 'bbox'), /not a COCO dataset/);
});

test('keypoints: sigmas must match the keypoint count, and own sigmas can be given', () => {
  const kp: CocoDatasetJson = {
    images: [{ id: 1, width: 100, height: 100, file_name: 'a.png' }],
    categories: [{ id: 1, name: 'tri', keypoints: ['a', 'b', 'c'] }],
    annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 50, 50], area: 1250, iscrowd: 0, keypoints: [10, 10, 2, 60, 10, 2, 10, 60, 2], num_keypoints: 3 }],
  };
  const results: CocoResultJson[] = [{ image_id: 1, category_id: 1, bbox: [10, 10, 50, 50], score: 1, keypoints: [10, 10, 1, 60, 10, 1, 10, 60, 1] }];
  assert.throws(() => evaluateCoco(kp, results, 'keypoints'), /expected 51/);
  const r = evaluateCoco(kp, results, 'keypoints', { params: { kptOksSigmas: [0.05, 0.05, 0.05] } });
  near(r.stats[0], 1);
  assert.equal(r.stats.length, 10);
});

test('printed numbers round like Python: exact ties to even', () => {
  assert.equal(pythonFixed(0.0625, 3), '0.062');
  assert.equal(pythonFixed(0.1875, 3), '0.188');
  assert.equal(pythonFixed(0.3748603162445779, 3), '0.375');
  assert.equal(pythonFixed(-1, 3), '-1.000');
  assert.equal(pythonFixed(0.5, 2), '0.50');
  assert.equal(pythonFixed(0.125, 2), '0.12');
});

test('custom maxDets are summarised at pycocotools indices (AP at maxDets[2], AR at [0], [1], [2])', () => {
  const results: CocoResultJson[] = [{ image_id: 1, category_id: 3, bbox: [10, 10, 50, 40], score: 0.9 }];
  const r = evaluateCoco(dataset, results, 'bbox', { params: { maxDets: [5, 2, 50] } });
  assert.deepEqual(r.params.maxDets, [2, 5, 50]);
  assert.deepEqual(r.statDefinitions.map((s) => s.maxDets), [100, 50, 50, 50, 50, 50, 2, 5, 50, 50, 50, 50]);
  assert.equal(r.stats[0], -1, 'no maxDets of 100: nothing to average, as pycocotools');
  near(r.stats[8], 0.5);
});
