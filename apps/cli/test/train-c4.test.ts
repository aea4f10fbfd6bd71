/**
 * The C4 res5 plugin (@rcnn/res5-head) trains through its slot like the built-in heads: a C4
 * Faster R-CNN training step gives finite losses, gradients for the res5 stage, and the res5
 * gradient agrees with central finite differences of loss.total.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { type HostTensor, type ImageTargets, type RgbImage, WeightStore, createContainer, decodeEntry, readSafetensorsFile } from '@rcnn/core';
import { decodeImage, resolveModelSources, trainStep } from '@rcnn/runtime';
import { findRepoRoot } from '@rcnn/testing';
import { loadPlugins } from '../src/plugins.js';

const dir = join(findRepoRoot(), 'fixtures', 'parity', 'fasterrcnn_tiny_c4');
const TARGETS: ImageTargets[] = [{ boxes: Float32Array.from([10, 12, 80, 90, 50, 40, 120, 100, 3, 4, 12, 15]), labels: Int32Array.from([1, 2, 1]) }];

async function run(weights: WeightStore, image: RgbImage): Promise<Map<string, HostTensor>> {
  const container = createContainer();
  await loadPlugins(container, []);
  const { resolved } = await resolveModelSources({ config: join(dir, 'case.json'), weights, container, set: ['TRAIN.SEED=3', 'TRAIN.BATCH_SIZE_PER_IM=32', 'TRAIN.RPN_PRE_NMS_TOP_N=300', 'TRAIN.RPN_POST_NMS_TOP_N=100'] });
  return new Map((await trainStep(resolved.config, container, weights, { images: [image], targets: TARGETS })).tensors);
}

test('the C4 res5 head trains: res5 gradients match finite differences of loss.total', async (t) => {
  const file = readSafetensorsFile(join(dir, 'weights.safetensors'));
  const tensors = new Map([...file.entries].map(([k, e]) => [k, decodeEntry(e)]));
  const image = await decodeImage(join(dir, 'image_0.png'), { maxPixels: 1e7, maxSide: 1e4 });
  const base = await run(WeightStore.fromTensors(tensors, 'c4'), image);
  const res5 = [...base.keys()].filter((k) => k.startsWith('grad.roi_heads.box_head.res5.'));
  assert.ok(res5.length >= 4, `res5 gradients: ${res5.join(', ')}`);
  for (const [k, v] of base) if (k.startsWith('loss.')) assert.ok(Number.isFinite((v.data as Float32Array)[0]), k);

  const key = 'roi_heads.box_head.res5.0.conv3.weight';
  const grad = base.get(`grad.${key}`)!.data as Float32Array;
  let at = 0;
  for (let i = 0; i < grad.length; i++) if (Math.abs(grad[i]) > Math.abs(grad[at])) at = i;
  const h = 1e-2;
  const lossWith = async (delta: number): Promise<number> => {
    const w = tensors.get(key)!;
    const data = Float32Array.from(w.data as Float32Array);
    data[at] += delta;
    const out = await run(WeightStore.fromTensors(new Map([...tensors, [key, { ...w, data } as HostTensor]]), 'c4 perturbed'), image);
    return (out.get('loss.total')!.data as Float32Array)[0];
  };
  const fd = ((await lossWith(h)) - (await lossWith(-h))) / (2 * h);
  t.diagnostic(`${key}[${at}]: analytic ${grad[at]}, central difference ${fd}`);
  assert.ok(Math.abs(fd - grad[at]) <= 0.02 * Math.abs(grad[at]) + 1e-4, `analytic ${grad[at]} vs finite difference ${fd}`);
});
