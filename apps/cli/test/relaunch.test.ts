/**
 * `rcnn train` relaunches itself with the training allocator settings (two glibc malloc arenas,
 * docs/performance.md M6): the child gets MALLOC_ARENA_MAX, the user's own value wins, exit status
 * and messages pass through.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KEEP_ALLOCATOR_ENV, TRAINING_MALLOC_ARENA_MAX, runsOnGlibc, trainingAllocatorEnvironment } from '@rcnn/runtime/training';
import { rcnn } from './helpers.js';

test('trainingAllocatorEnvironment: MALLOC_ARENA_MAX on glibc unless already set or opted out', () => {
  assert.equal(trainingAllocatorEnvironment({ PATH: '/bin' }, true)?.MALLOC_ARENA_MAX, TRAINING_MALLOC_ARENA_MAX);
  assert.equal(trainingAllocatorEnvironment({ PATH: '/bin' }, true)?.PATH, '/bin');
  assert.equal(trainingAllocatorEnvironment({ MALLOC_ARENA_MAX: '8' }, true), undefined);
  assert.equal(trainingAllocatorEnvironment({ [KEEP_ALLOCATOR_ENV]: '1' }, true), undefined);
  assert.equal(trainingAllocatorEnvironment({}, false), undefined);
});

const noData = ['train', '--config', 'maskrcnn_resnet50_fpn', '--images', 'x', '--verbose'];

test('rcnn train runs relaunched with MALLOC_ARENA_MAX (glibc), passing status and messages through', { skip: !runsOnGlibc() && 'not glibc' }, async () => {
  // (A test environment that sets MALLOC_ARENA_MAX itself sees its own value.)
  const expected = process.env.MALLOC_ARENA_MAX ?? TRAINING_MALLOC_ARENA_MAX;
  const r = await rcnn(noData);
  assert.equal(r.status, 2);
  assert.match(r.stderr, new RegExp(`MALLOC_ARENA_MAX=${expected}\\n`));
  assert.match(r.stderr, /rcnn train: error: --dataset is required/);
  // The user's own setting is kept (no relaunch).
  const own = await rcnn(noData, { env: { MALLOC_ARENA_MAX: '4' } });
  assert.equal(own.status, 2);
  assert.match(own.stderr, /MALLOC_ARENA_MAX=4\n/);
});
