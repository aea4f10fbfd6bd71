import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { loadConfig } from '@rcnn/core';
import { tinyNetModel, tinyShapesData } from '@rcnn/runtime/training';
import { formatDuration, progressLine, runTraining, trainCommand } from '../src/commands/train.js';
import type { CliIO } from '../src/io.js';
import { rcnn, tempDir } from './helpers.js';

/** Captured streams; stdout claims to be a terminal. `onWrite` sees every stdout chunk. */
function capture(onWrite: (chunk: string) => void = () => undefined): { io: CliIO; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const stdout = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString();
      onWrite(chunk.toString());
      done();
    },
  });
  Object.assign(stdout, { isTTY: true });
  const stderr = new Writable({
    write(chunk: Buffer, _enc, done) {
      err += chunk.toString();
      done();
    },
  });
  return { io: { stdout, stderr }, out: () => out, err: () => err };
}

const tinySetup = (maxIter: number) => ({
  config: loadConfig({ set: ['SOLVER.BASE_LR=0.2', 'SOLVER.WARM_UP_ITERS=2', `SOLVER.MAX_ITER=${maxIter}`, 'SOLVER.IMS_PER_BATCH=4', 'SOLVER.CHECKPOINT_PERIOD=100'] }),
  model: tinyNetModel({ seed: 1 }),
  data: tinyShapesData(16),
  metadata: { 'rcnn.categories': '{"categoryIds":[1,2,3],"names":["r","g","b"]}' },
  notes: ['a note for the user'],
  description: 'tiny net',
});

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

  it('runs with a progress bar on a terminal, writes the report, and Ctrl-C checkpoints and stops with status 130', async () => {
    const out = join(tempDir(), 'run');
    let signalled = false;
    const first = capture((chunk) => {
      if (!signalled && chunk.includes('iter 3/8')) {
        signalled = true;
        process.emit('SIGINT');
      }
    });
    const status = await runTraining(tinySetup(8), { out, devices: 'cpu', threads: 1, dataset: 'tiny', seed: 2 }, first.io);
    assert.equal(status, 130);
    assert.match(first.err(), /rcnn: a note for the user/);
    assert.match(first.err(), /stopping after this iteration and writing a checkpoint/);
    assert.match(first.out(), /\riter 1\/8 \[[#.]+\] eta \S+ loss \d+\.\d{4} \(cls \d+\.\d{3} reg \d+\.\d{3}\) lr 0\.0667/);
    assert.match(first.out(), /checkpoint .*model_0000003\.safetensors after 3 iterations/);
    assert.match(first.out(), /interrupted: 3\/8 iterations/);
    assert.equal(process.listenerCount('SIGINT'), 0, 'the handler is removed');
    const resumed = capture();
    assert.equal(await runTraining(tinySetup(8), { out, devices: 'cpu', threads: 1, dataset: 'tiny', resume: true }, resumed.io), 0);
    assert.doesNotMatch(resumed.out(), /iter 3\/8/, 'continues after the checkpoint');
    assert.match(resumed.out(), /iter 8\/8/);
    assert.match(resumed.out(), /done: 8\/8 iterations; checkpoint .*model_final\.safetensors; report .*report\.html/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<title>rcnn train: tiny net<\/title>/);
    assert.match(html, /<svg/);
    assert.match(html, /0 … 7/, 'the report covers the whole run');
    assert.ok(existsSync(join(out, 'model_final.solver.safetensors')));
  });
});
