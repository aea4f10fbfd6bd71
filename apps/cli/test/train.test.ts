import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, progressLine, trainCommand } from '../src/commands/train.js';
import { rcnn } from './helpers.js';

describe('rcnn train', () => {
  it('--help lists every option', async () => {
    const r = await rcnn(['train', '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: rcnn train/);
    for (const [name, spec] of Object.entries(trainCommand.options)) {
      assert.ok(r.stdout.includes(`--${name}`), `--${name} is in the help`);
      if (spec.short) assert.ok(r.stdout.includes(`-${spec.short}, --${name}`), `-${spec.short} is in the help`);
    }
    assert.match((await rcnn(['--help'])).stdout, /\n {2}train +fine-tune/);
  });

  it('needs --dataset and --images (usage errors, status 2)', async () => {
    const noData = await rcnn(['train', '--config', 'maskrcnn_resnet50_fpn', '--images', 'x']);
    assert.equal(noData.status, 2);
    assert.match(noData.stderr, /^rcnn train: error: --dataset is required\n {2}hint: /);
    const noImages = await rcnn(['train', '--config', 'maskrcnn_resnet50_fpn', '--dataset', 'x.json']);
    assert.equal(noImages.status, 2);
    assert.match(noImages.stderr, /--images is required/);
    const badIter = await rcnn(['train', '--config', 'maskrcnn_resnet50_fpn', '--dataset', 'x.json', '--images', 'x', '--max-iter', '0']);
    assert.equal(badIter.status, 2);
    assert.match(badIter.stderr, /--max-iter must be an integer >= 1/);
  });

  it('shows iteration, bar, ETA, losses and learning rate on one line', () => {
    const line = progressLine({ iteration: 9, losses: { loss_cls: 0.51234, loss_box_reg: 0.25 }, totalLoss: 0.76234, lr: 0.0025, gradNorm: 1, timeMs: 500, dataMs: 1, etaSeconds: 125 }, 40, 20);
    assert.equal(line, 'iter 10/40 [#####...............] eta 2m05s loss 0.7623 (cls 0.512 box_reg 0.250) lr 0.00250');
    assert.equal(formatDuration(3725), '1h02m');
    assert.equal(formatDuration(7.4), '7s');
    assert.equal(formatDuration(Number.NaN), '?');
  });
});
