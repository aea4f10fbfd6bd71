/**
 * `rcnn train-step` on the public training fixtures (fixtures/train, torchvision 0.14.1 training
 * pass): the dump's losses and intermediates against the reference, with torchvision's recorded
 * sampling and proposals injected from the case directory.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type HostTensor, decodeEntry, readSafetensorsFile } from '@rcnn/core';
import { compareTrainingDump, findRepoRoot } from '@rcnn/testing';
import { rcnn, tempDir } from './helpers.js';

/** The public training cases committed under fixtures/train. */
const TRAIN_CASES = ['maskrcnn_tiny_train_frozen', 'maskrcnn_tiny_train', 'keypointrcnn_tiny_train', 'fasterrcnn_tiny_train_batch2'] as const;

function readAll(path: string): Map<string, HostTensor> {
  const file = readSafetensorsFile(path);
  return new Map([...file.entries].map(([k, e]) => [k, decodeEntry(e, path)]));
}

for (const name of TRAIN_CASES) {
  test(`rcnn train-step matches torchvision's training pass: ${name}`, async (t) => {
    const dir = join(findRepoRoot(), 'fixtures', 'train', name);
    const out = join(tempDir(), 'dump.safetensors');
    const run = await rcnn(['train-step', '--targets', dir, '--dump', out, '--dump-intermediates']);
    assert.equal(run.status, 0, run.stderr);
    const dump = readAll(out);
    const reference = readAll(join(dir, 'reference.safetensors'));
    const caseJson = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as {
      train: { loss_order: string[]; trainable: { trainable_parameters: string[] } };
      diagnostics: { float64_replay?: { grads_mathematically_zero?: Record<string, unknown> } };
    };
    // Every loss of the case, in torchvision's loss-dict order, then the total.
    const losses = [...dump.keys()].filter((k) => k.startsWith('loss.'));
    assert.deepEqual(losses, [...caseJson.train.loss_order.map((l) => `loss.${l.replace(/^loss_/, '')}`), 'loss.total']);
    // Every fixture intermediate is in the dump.
    const expected = [...reference.keys()].filter((k) => k.startsWith('train.') || k === 'transform.image_sizes');
    assert.deepEqual(expected.filter((k) => !dump.has(k)), []);
    // The set of parameters with a gradient is torchvision's trainable set.
    assert.deepEqual([...dump.keys()].filter((k) => k.startsWith('grad.')).sort(), caseJson.train.trainable.trainable_parameters.map((k) => `grad.${k}`).sort());
    const mathematicallyZero = Object.keys(caseJson.diagnostics.float64_replay?.grads_mathematically_zero ?? {});
    const verdicts = compareTrainingDump(dump, reference, { gradients: true, mathematicallyZero });
    for (const v of verdicts) if (!v.name.startsWith('grad.')) t.diagnostic(`${v.name}: ${v.detail}`);
    const grads = verdicts.filter((v) => v.name.startsWith('grad.'));
    const worst = grads.reduce((a, b) => (b.error > a.error ? b : a), grads[0]!);
    t.diagnostic(`${grads.length} gradients, worst ${worst.name}: ${worst.detail}`);
    assert.deepEqual(verdicts.filter((v) => !v.pass).map((v) => `${v.name}: ${v.detail}`), []);
    assert.ok(verdicts.length >= expected.length - dump.size / 10, 'the comparison covered the dump');
  });
}

test('KRCNN.LOSS_WEIGHT scales the keypoint loss and exactly what it reaches (Detectron KRCNN.LOSS_WEIGHT)', async () => {
  const dir = join(findRepoRoot(), 'fixtures', 'train', 'keypointrcnn_tiny_train');
  const out = join(tempDir(), 'weighted.safetensors');
  const weight = 0.25;
  const run = await rcnn(['train-step', '--targets', dir, '--set', `KRCNN.LOSS_WEIGHT=${weight}`, '--dump', out]);
  assert.equal(run.status, 0, run.stderr);
  const dump = readAll(out);
  const reference = readAll(join(dir, 'reference.safetensors'));
  const scalar = (m: Map<string, HostTensor>, k: string): number => Number(m.get(k)!.data[0]);
  const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
  close(scalar(dump, 'loss.keypoint'), weight * scalar(reference, 'loss.keypoint'), 'loss.keypoint');
  for (const l of ['loss.classifier', 'loss.box_reg', 'loss.objectness', 'loss.rpn_box_reg']) close(scalar(dump, l), scalar(reference, l), l);
  close(scalar(dump, 'loss.total'), scalar(reference, 'loss.total') - (1 - weight) * scalar(reference, 'loss.keypoint'), 'loss.total');
  // Only the keypoint loss reaches the keypoint head: its gradients are scaled by the weight.
  for (const key of ['grad.roi_heads.keypoint_predictor.kps_score_lowres.weight', 'grad.roi_heads.keypoint_head.0.weight']) {
    const ours = dump.get(key)!.data as Float32Array;
    const ref = reference.get(key)!.data as Float32Array;
    const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(scale > 0, `${key} has a gradient in the fixture`);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - weight * ref[i]!));
    assert.ok(worst <= 1e-3 * weight * scale, `${key}: max |Δ| ${worst} vs ${weight} x reference (max ${scale})`);
  }
});

for (const name of ['fasterrcnn_tiny_train_batch2', 'maskrcnn_tiny_train_frozen'] as const) {
  test(`TRAIN.RPN_SPARSE_HEAD: the sampled-anchor RPN gives the dense head's losses and gradients (${name})`, async () => {
    const dir = join(findRepoRoot(), 'fixtures', 'train', name);
    const dumps = await Promise.all(
      [true, false].map(async (sparse) => {
        const out = join(tempDir(), `rpn-${sparse}.safetensors`);
        const run = await rcnn(['train-step', '--targets', dir, '--set', `TRAIN.RPN_SPARSE_HEAD=${sparse}`, '--dump', out]);
        assert.equal(run.status, 0, run.stderr);
        return readAll(out);
      }),
    );
    const [sparse, dense] = dumps as [Map<string, HostTensor>, Map<string, HostTensor>];
    assert.deepEqual([...sparse.keys()].sort(), [...dense.keys()].sort());
    let gradients = 0;
    for (const [key, d] of dense) {
      const s = sparse.get(key)!.data as Float32Array;
      const v = d.data as Float32Array;
      if (key.startsWith('loss.')) {
        assert.ok(Math.abs(s[0]! - v[0]!) <= 1e-6 * Math.max(1, Math.abs(v[0]!)), `${key}: ${s[0]} vs ${v[0]}`);
      } else if (key.startsWith('grad.')) {
        const scale = v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        let worst = 0;
        for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(s[i]! - v[i]!));
        assert.ok(worst <= 1e-5 * scale + 1e-12, `${key}: max |Δ| ${worst}, max |dense| ${scale}`);
        if (key.startsWith('grad.rpn.')) assert.ok(scale > 0, `${key} has a gradient`);
        gradients++;
      }
    }
    assert.ok(gradients > 0);
  });
}
