/**
 * Training beyond the public training fixtures, checked against central finite differences of
 * loss.total: the C4 res5 plugin (@rcnn/res5-head) trains through its slot like the built-in
 * heads, and a grouped-conv (ResNeXt) backbone trains.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { type BalancedSample, type HostTensor, type ImageTargets, type RgbImage, WeightStore, createContainer, decodeEntry, readSafetensorsFile } from '@rcnn/core';
import { type InjectedTraining, decodeImage, resolveModelSources, trainStep } from '@rcnn/runtime';
import { findRepoRoot } from '@rcnn/testing';
import { loadPlugins } from '../src/plugins.js';

const TARGETS: ImageTargets[] = [
  { boxes: Float32Array.from([10, 12, 80, 90, 50, 40, 120, 100, 3, 4, 12, 15]), labels: Int32Array.from([1, 2, 1]) },
  { boxes: Float32Array.from([20, 30, 150, 120, 0, 0, 60, 70]), labels: Int32Array.from([3, 1]) },
];
/** Small samples keep the three runs of a finite-difference check quick. */
const FAST = ['TRAIN.SEED=3', 'TRAIN.BATCH_SIZE_PER_IM=32', 'TRAIN.RPN_PRE_NMS_TOP_N=300', 'TRAIN.RPN_POST_NMS_TOP_N=100'];

async function run(dir: string, weights: WeightStore, images: RgbImage[], injected?: InjectedTraining): Promise<Map<string, HostTensor>> {
  const container = createContainer();
  await loadPlugins(container, []);
  const { resolved } = await resolveModelSources({ config: join(dir, 'case.json'), weights, container, set: FAST });
  const input = { images, targets: TARGETS.slice(0, images.length), ...(injected ? { injected } : {}) };
  return new Map((await trainStep(resolved.config, container, weights, input, { intermediates: true })).tensors);
}

/** The base run's samples and proposals, so that perturbed runs differ only by the weight (no sample or NMS flips). */
function recorded(base: ReadonlyMap<string, HostTensor>, n: number): InjectedTraining {
  const ints = (name: string): Int32Array => Int32Array.from(base.get(name)!.data as BigInt64Array, Number);
  const sample = (stage: string, i: number): BalancedSample => ({ positive: ints(`train.${stage}.sampled_pos.${i}`), negative: ints(`train.${stage}.sampled_neg.${i}`) });
  const images = Array.from({ length: n }, (_, i) => i);
  return {
    rpnSamples: images.map((i) => sample('rpn', i)),
    roiSamples: images.map((i) => sample('roi', i)),
    proposals: images.map((i) => base.get(`train.rpn.proposals.${i}`)!.data as Float32Array),
  };
}

/** Runs the parity case `name` on its images with {@link TARGETS}; checks d loss.total / d key[argmax |grad|] by central differences. */
async function checkGradient(name: string, key: string, t: { diagnostic(message: string): void }): Promise<Map<string, HostTensor>> {
  const dir = join(findRepoRoot(), 'fixtures', 'parity', name);
  const file = readSafetensorsFile(join(dir, 'weights.safetensors'));
  const tensors = new Map([...file.entries].map(([k, e]) => [k, decodeEntry(e)]));
  const images = await Promise.all(['image_0.png', 'image_1.png'].slice(0, name.includes('batch2') ? 2 : 1).map((f) => decodeImage(join(dir, f), { maxPixels: 1e7, maxSide: 1e4 })));
  const base = await run(dir, WeightStore.fromTensors(tensors, name), images);
  for (const [k, v] of base) if (k.startsWith('loss.')) assert.ok(Number.isFinite((v.data as Float32Array)[0]), k);
  const grad = base.get(`grad.${key}`)!.data as Float32Array;
  let at = 0;
  for (let i = 0; i < grad.length; i++) if (Math.abs(grad[i]!) > Math.abs(grad[at]!)) at = i;
  const h = 1e-2;
  const lossWith = async (delta: number): Promise<number> => {
    const w = tensors.get(key)!;
    const data = Float32Array.from(w.data as Float32Array);
    data[at]! += delta;
    const out = await run(dir, WeightStore.fromTensors(new Map([...tensors, [key, { ...w, data } as HostTensor]]), `${name} perturbed`), images, recorded(base, images.length));
    return (out.get('loss.total')!.data as Float32Array)[0]!;
  };
  const fd = ((await lossWith(h)) - (await lossWith(-h))) / (2 * h);
  t.diagnostic(`${key}[${at}]: analytic ${grad[at]}, central difference ${fd}`);
  assert.ok(Math.abs(fd - grad[at]!) <= 0.02 * Math.abs(grad[at]!) + 1e-4, `analytic ${grad[at]} vs finite difference ${fd}`);
  return base;
}

test('the C4 res5 head trains: res5 gradients match finite differences of loss.total', async (t) => {
  const base = await checkGradient('fasterrcnn_tiny_c4', 'roi_heads.box_head.res5.0.conv3.weight', t);
  const res5 = [...base.keys()].filter((k) => k.startsWith('grad.roi_heads.box_head.res5.'));
  assert.ok(res5.length >= 4, `res5 gradients: ${res5.join(', ')}`);
});

test('a grouped-conv (ResNeXt) backbone trains: a grouped 3x3 conv gradient matches finite differences', async (t) => {
  const base = await checkGradient('fasterrcnn_tiny_x_batch2', 'backbone.body.layer3.0.conv2.weight', t);
  assert.ok(!base.has('grad.backbone.body.layer1.0.conv2.weight'), 'layer1 is frozen (TRAIN.TRAINABLE_BACKBONE_LAYERS 3)');
});
