import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '@rcnn/core';
import { validationOksSigmas } from '../src/train/validate.js';
import { rcnn, tempDir } from './helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const CASE = join(ROOT, 'fixtures', 'train', 'keypointrcnn_tiny_train');

/** A COCO dataset of the fixture image with two objects of one category with three keypoints. */
function threeKeypointDataset(dir: string): string {
  const dataset = {
    images: [{ id: 1, file_name: 'image_0.png', width: 150, height: 200 }],
    categories: [{ id: 5, name: 'tri', keypoints: ['top', 'left', 'right'], skeleton: [] }],
    annotations: [
      { id: 1, image_id: 1, category_id: 5, iscrowd: 0, bbox: [20, 30, 60, 50], area: 3000, keypoints: [50, 32, 2, 22, 78, 2, 78, 78, 2], num_keypoints: 3 },
      { id: 2, image_id: 1, category_id: 5, iscrowd: 0, bbox: [70, 100, 50, 70], area: 3500, keypoints: [95, 102, 2, 72, 168, 2, 118, 168, 2], num_keypoints: 3 },
    ],
  };
  const path = join(dir, 'tri.json');
  writeFileSync(path, JSON.stringify(dataset));
  return path;
}

describe('rcnn train --val on a keypoint model with another keypoint count; rcnn eval / predict of its checkpoint with the training config', () => {
  it('needs OKS sigmas unless the model has COCO\'s 17 person keypoints', () => {
    const config = (k: number) => loadConfig({ set: ['MODEL.KEYPOINTS_ON=true', `KRCNN.NUM_KEYPOINTS=${k}`] });
    assert.equal(validationOksSigmas(config(17), undefined), undefined, 'COCO person sigmas by default');
    assert.throws(() => validationOksSigmas(config(3), undefined), /COCO's default sigmas are for the 17 person keypoints, the model has KRCNN\.NUM_KEYPOINTS 3/);
    assert.deepEqual(validationOksSigmas(config(3), [0.1, 0.2, 0.3]), [0.1, 0.2, 0.3]);
    assert.throws(() => validationOksSigmas(config(3), [0.1, 0.2]), /--oks-sigmas has 2 values, the model has KRCNN\.NUM_KEYPOINTS 3/);
    assert.equal(validationOksSigmas(loadConfig({ set: ['MODEL.MASK_ON=true'] }), undefined), undefined, 'no keypoints, nothing to check');
  });

  it('evaluates keypoints at checkpoints with --oks-sigmas, and refuses to start without them', async () => {
    const dir = tempDir();
    const dataset = threeKeypointDataset(dir);
    const common = [
      'train', '--config', join(CASE, 'case.json'),
      '--set', 'KRCNN.NUM_KEYPOINTS=3', '--set', 'KRCNN.FLIP_MAP=[0,2,1]',
      '--set', 'SOLVER.IMS_PER_BATCH=1', '--set', 'SOLVER.CHECKPOINT_PERIOD=1', '--set', 'SOLVER.WARM_UP_ITERS=0',
      '--set', 'DATALOADER.MIN_KEYPOINTS_PER_IMAGE=0',
      '--dataset', dataset, '--images', CASE, '--val', dataset, '--max-iter', '1', '--threads', '1',
    ];
    const refused = await rcnn([...common, '--out', join(dir, 'refused')]);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /KRCNN\.NUM_KEYPOINTS 3/);
    assert.match(refused.stderr, /hint: give --oks-sigmas with 3 comma-separated values/);
    assert.doesNotMatch(refused.stdout, /iter 1\/1/, 'refused before training');
    const run = await rcnn([...common, '--oks-sigmas', '0.05,0.05,0.05', '--out', join(dir, 'run')]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /checkpoint .*model_final\.safetensors after 1 iterations \(bbox\/AP -?\d\.\d{4}, bbox\/AP50 -?\d\.\d{4}, keypoints\/AP -?\d\.\d{4}, keypoints\/AP50 -?\d\.\d{4}\)/);
    // rcnn eval and rcnn predict take the training config as it is (DATALOADER.* keys included).
    const evaluated = await rcnn([
      'eval', '--config', join(CASE, 'case.json'), '--set', 'KRCNN.NUM_KEYPOINTS=3', '--set', 'DATALOADER.MIN_KEYPOINTS_PER_IMAGE=0',
      '--weights', join(dir, 'run', 'model_final.safetensors'), '--dataset', dataset, '--images', CASE, '--oks-sigmas', '0.05,0.05,0.05', '--json', '-',
    ]);
    assert.equal(evaluated.status, 0, evaluated.stderr);
    assert.deepEqual(Object.keys(JSON.parse(evaluated.stdout) as object).sort(), ['bbox', 'keypoints', 'per_category']);
    const predicted = await rcnn([
      'predict', '--config', join(CASE, 'case.json'), '--set', 'KRCNN.NUM_KEYPOINTS=3', '--set', 'DATALOADER.MIN_KEYPOINTS_PER_IMAGE=0',
      '--weights', join(dir, 'run', 'model_final.safetensors'), join(CASE, 'image_0.png'),
    ]);
    assert.equal(predicted.status, 0, predicted.stderr);
    const needsVal = await rcnn([...common.filter((a, i) => a !== '--val' && common[i - 1] !== '--val'), '--oks-sigmas', '0.05,0.05,0.05', '--out', join(dir, 'noval')]);
    assert.equal(needsVal.status, 2);
    assert.match(needsVal.stderr, /--oks-sigmas needs --val/);
  });
});
