/**
 * Training semantics around the fixtures, through the runtime's `trainStep`: batch normalisation
 * (one image vs the same image twice with the same injected samples), an image without GT, seeded
 * sampling, and bad targets failing with typed errors.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { type BalancedSample, type HostTensor, type ImageTargets, TargetError, createContainer } from '@rcnn/core';
import { type InjectedTraining, type TrainStepInput, type TrainStepResult, loadTrainingCase, resolveModelSources, trainStep } from '@rcnn/runtime';
import { findRepoRoot } from '@rcnn/testing';
import { loadPlugins } from '../src/plugins.js';

const caseDir = (name: string): string => join(findRepoRoot(), 'fixtures', 'train', name);

async function step(name: string, input: (c: Awaited<ReturnType<typeof loadTrainingCase>>) => TrainStepInput, set: readonly string[] = []): Promise<TrainStepResult> {
  const c = await loadTrainingCase(caseDir(name));
  const container = createContainer();
  await loadPlugins(container, []);
  const { resolved, weights } = await resolveModelSources({ config: c.caseJson, weights: c.weights, container, set });
  return trainStep(resolved.config, container, weights, input(c), { intermediates: true });
}

/** Largest |a - b| / max(1e-6, max|b|) over the tensors both hold with this prefix. */
function worstRelative(a: ReadonlyMap<string, HostTensor>, b: ReadonlyMap<string, HostTensor>, prefix: string): { name: string; rel: number; count: number } {
  let worst = { name: '', rel: 0, count: 0 };
  for (const [name, tb] of b) {
    if (!name.startsWith(prefix)) continue;
    const ta = a.get(name);
    assert.ok(ta, `${name} missing`);
    const x = ta.data as Float32Array;
    const y = tb.data as Float32Array;
    let max = 0;
    let d = 0;
    for (let i = 0; i < y.length; i++) {
      max = Math.max(max, Math.abs(y[i]!));
      d = Math.max(d, Math.abs(x[i]! - y[i]!));
    }
    const rel = d / Math.max(1e-6, max);
    worst = { name: rel >= worst.rel ? name : worst.name, rel: Math.max(rel, worst.rel), count: worst.count + 1 };
  }
  return worst;
}

const twice = <T>(xs: readonly T[]): T[] => [xs[0]!, xs[0]!];

test('one image alone and the same image twice (same injected samples) give the same losses and gradients', async (t) => {
  const one = await step('maskrcnn_tiny_train', (c) => ({ images: c.images, targets: c.targets, injected: c.injected }));
  const two = await step('maskrcnn_tiny_train', (c) => {
    const inj = c.injected;
    const injected: InjectedTraining = { rpnSamples: twice(inj.rpnSamples!), roiSamples: twice(inj.roiSamples!), proposals: twice(inj.proposals!) };
    return { images: twice(c.images), targets: twice(c.targets), injected };
  });
  for (const [name, value] of one.losses) {
    const other = two.losses.get(name)!;
    t.diagnostic(`${name}: ${value} vs ${other}`);
    assert.ok(Math.abs(value - other) <= 1e-5 * Math.max(1, Math.abs(value)), `${name}: ${value} (one image) vs ${other} (twice)`);
  }
  const grads = worstRelative(two.tensors, one.tensors, 'grad.');
  t.diagnostic(`${grads.count} gradients, worst ${grads.name}: ${grads.rel.toExponential(3)} of max|g|`);
  assert.ok(grads.count > 50);
  assert.ok(grads.rel <= 1e-5, `${grads.name} differs by ${grads.rel} of its max`);
});

test('an image without GT trains: only negatives, no box / mask positives from it, finite losses', async () => {
  const result = await step('fasterrcnn_tiny_train_batch2', (c) => ({
    images: c.images,
    targets: [c.targets[0]!, { boxes: new Float32Array(0), labels: new Int32Array(0) }],
  }));
  for (const [name, v] of result.losses) assert.ok(Number.isFinite(v), `${name} = ${v}`);
  const matched = result.tensors.get('train.rpn.matched_gt.1')!.data as BigInt64Array;
  assert.ok(matched.every((m) => m === -1n), 'every anchor of the GT-less image is background');
  assert.equal(result.tensors.get('train.rpn.sampled_pos.1')!.dims[0], 0);
  assert.equal(result.tensors.get('train.roi.sampled_pos.1')!.dims[0], 0);
  const labels = result.tensors.get('train.roi.labels.1')!.data as BigInt64Array;
  assert.ok(labels.every((l) => l === 0n));
  // Regression targets of a GT-less image are encoded against a zero box (-inf in dw, dh), as torchvision; they never reach the loss.
  const reg = result.tensors.get('train.roi.regression_targets.1')!.data as Float32Array;
  assert.equal(reg[2], -Infinity);
});

test('a Mask R-CNN batch without any positive RoI has a zero mask loss (not NaN)', async () => {
  const result = await step('maskrcnn_tiny_train', (c) => ({
    images: c.images,
    targets: [{ boxes: new Float32Array(0), labels: new Int32Array(0), masks: new Uint8Array(0) }],
  }));
  assert.equal(result.losses.get('loss.mask'), 0);
  assert.equal(result.losses.get('loss.box_reg'), 0);
  assert.ok(Number.isFinite(result.losses.get('loss.total')!));
  const maskGrad = result.tensors.get('grad.roi_heads.mask_predictor.mask_fcn_logits.weight')!.data as Float32Array;
  assert.ok(maskGrad.every((v) => v === 0));
});

test('sampling is reproducible from TRAIN.SEED and differs with another seed', async () => {
  const draw = (seed: number): Promise<TrainStepResult> =>
    step('maskrcnn_tiny_train', (c) => ({ images: c.images, targets: c.targets }), [`TRAIN.SEED=${seed}`]);
  const [a, b, other] = [await draw(7), await draw(7), await draw(8)];
  const samples = (r: TrainStepResult): string => ['train.rpn.sampled_neg.0', 'train.roi.sampled_neg.0'].map((n) => (r.tensors.get(n)!.data as BigInt64Array).join(',')).join('|');
  assert.equal(samples(a), samples(b));
  assert.notEqual(samples(a), samples(other));
  assert.equal(a.losses.get('loss.total'), b.losses.get('loss.total'));
  // A drawn sample has torchvision's sizes: 256 anchors and 512 RoIs per image (enough candidates here).
  const size = (r: TrainStepResult, stage: string): number => r.tensors.get(`train.${stage}.sampled_pos.0`)!.dims[0]! + r.tensors.get(`train.${stage}.sampled_neg.0`)!.dims[0]!;
  assert.equal(size(a, 'rpn'), 256);
  assert.equal(size(a, 'roi'), 512);
});

/** Runs the first image of maskrcnn_tiny_train with its targets changed by `edit`; expects a TargetError matching `message`. */
async function rejects(edit: (t: ImageTargets) => ImageTargets, message: RegExp): Promise<void> {
  await assert.rejects(
    step('maskrcnn_tiny_train', (c) => ({ images: c.images, targets: [edit(c.targets[0]!)] })),
    (e: unknown) => e instanceof TargetError && message.test(e.message),
  );
}

test('bad targets fail with a TargetError naming the image and field', async () => {
  const swapX = (t: ImageTargets): ImageTargets => {
    const boxes = Float32Array.from(t.boxes);
    [boxes[0], boxes[2]] = [boxes[2]!, boxes[0]!];
    return { ...t, boxes };
  };
  await rejects(swapX, /image 0 boxes\[0\].*no area/);
  await rejects((t) => ({ ...t, labels: Int32Array.from(t.labels, (l, i) => (i === 1 ? 4 : l)) }), /image 0 labels\[1\]: 4 is outside 1\.\.3/);
  await rejects((t) => ({ ...t, labels: Int32Array.from(t.labels, (l, i) => (i === 0 ? 0 : l)) }), /labels\[0\]: 0 is outside/);
  await rejects((t) => ({ ...t, masks: t.masks!.subarray(0, t.masks!.length - 7) }), /masks: hold .* expected 6 x 144 x 210/);
  await rejects((t) => ({ boxes: t.boxes, labels: t.labels }), /masks: missing/);
  await rejects((t) => ({ ...t, boxes: Float32Array.from(t.boxes, (v, i) => (i === 5 ? Number.NaN : v)) }), /boxes\[1\].*not finite/);
  await rejects((t) => ({ ...t, boxes: t.boxes.subarray(0, 20) }), /5 boxes for 6 labels/);
});

test('keypoints of the wrong count fail with a TargetError', async () => {
  await assert.rejects(
    step('keypointrcnn_tiny_train', (c) => ({ images: c.images, targets: [{ ...c.targets[0]!, keypoints: c.targets[0]!.keypoints!.subarray(0, 6 * 16 * 3) }] })),
    (e: unknown) => e instanceof TargetError && /keypoints: hold 288 values, expected 6 x 17 x 3/.test(e.message),
  );
});

test('a recorded sample that does not fit the run is refused, not silently used', async () => {
  await assert.rejects(
    step('maskrcnn_tiny_train', (c) => {
      const rpn: BalancedSample[] = [{ positive: c.injected.rpnSamples![0]!.negative.subarray(0, 1), negative: c.injected.rpnSamples![0]!.negative.subarray(1) }];
      return { images: c.images, targets: c.targets, injected: { ...c.injected, rpnSamples: rpn } };
    }),
    (e: unknown) => e instanceof TargetError && /injected positive index \d+ is labelled 0/.test(e.message),
  );
});
