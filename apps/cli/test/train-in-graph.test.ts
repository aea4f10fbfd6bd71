/**
 * TRAIN.PROPOSALS_IN_GRAPH: the one-session training step (proposals, sampling and every head's
 * targets in the training graph) against the two-session chain (`rcnn train-step`: the proposal
 * pass, host targets, training graph) on the training fixtures, the detector's replica step on it,
 * and the chain kept for a head whose training part builds only host targets.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BalancedSample, ConfigError, type RoiReplay, SLOTS, WeightStore, buildTrainingModel, configSections, createContainer, registerImplementation, resolveImplementation } from '@rcnn/core';
import { loadTrainingCase, resolveConfig, trainStep, trainStepInGraph } from '@rcnn/runtime';
import { copyParameters, detectorTrainingModel } from '@rcnn/runtime/training';
import { loadPlugins } from '../src/plugins.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const caseDir = (name: string): string => join(ROOT, 'fixtures', 'train', name);
const CPU = { device: { kind: 'cpu', id: 0, name: 'cpu' }, threads: { intraOp: 1, interOp: 1 } } as const;

async function setup(name: string, set: readonly string[] = []) {
  const container = createContainer();
  await loadPlugins(container, []);
  const trainingCase = await loadTrainingCase(caseDir(name));
  const config = resolveConfig(trainingCase.caseJson, { sections: configSections(container), set }).config;
  return { container, trainingCase, config, weights: () => WeightStore.fromSafetensors(trainingCase.weights) };
}

/** Worst |a - b| / scale(name) over the gradients of `a` and `b` (`grad.<key>` tensors). */
function worstGradient(a: ReadonlyMap<string, { readonly data: ArrayLike<number> | ArrayLike<bigint> }>, b: (name: string) => ArrayLike<number>, scale: (name: string, ref: ArrayLike<number>) => number) {
  let worst = 0;
  let where = '';
  for (const [name, t] of a) {
    if (!name.startsWith('grad.')) continue;
    const ours = t.data as ArrayLike<number>;
    const ref = b(name);
    const s = scale(name, ref);
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(ours[i]! - ref[i]!) / s;
      if (d > worst) [worst, where] = [d, name];
    }
  }
  return { worst, where };
}

const maxAbs = (x: ArrayLike<number>): number => Array.from(x).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe('TRAIN.PROPOSALS_IN_GRAPH: the one-session step equals the two-session chain', () => {
  for (const name of ['maskrcnn_tiny_train', 'maskrcnn_tiny_train_frozen', 'fasterrcnn_tiny_train_batch2', 'keypointrcnn_tiny_train']) {
    it(`same losses and gradients with the chain's sample replayed: ${name}`, async (t) => {
      const { container, trainingCase, config, weights } = await setup(name);
      const input = { images: trainingCase.images, targets: trainingCase.targets };
      const chain = await trainStep(config, container, weights(), input, { intermediates: true });
      const indices = (key: string): Int32Array => Int32Array.from(chain.tensors.get(key)!.data as BigInt64Array, Number);
      const rpn: BalancedSample[] = [];
      const roi: RoiReplay[] = [];
      for (let i = 0; i < input.images.length; i++) {
        rpn.push({ positive: indices(`train.rpn.sampled_pos.${i}`), negative: indices(`train.rpn.sampled_neg.${i}`) });
        roi.push({ positive: indices(`train.roi.sampled_pos.${i}`), negative: indices(`train.roi.sampled_neg.${i}`), proposals: chain.tensors.get(`train.rpn.proposals.${i}`)!.dims[0]! });
      }
      const one = await trainStepInGraph(config, container, weights(), input, { replay: { rpn, roi } });
      let worstLoss = 0;
      for (const [loss, v] of chain.losses) worstLoss = Math.max(worstLoss, Math.abs(one.losses.get(loss)! - v) / Math.max(1, Math.abs(v)));
      // The keypoint case is held to 1e-3, the others to 1e-5 of each tensor's largest gradient: the
      // two graphs compute the proposals with the weights as initializers and as inputs, and the
      // keypoint loss (a 3136-way softmax per keypoint) moves its gradients — the head's and, through
      // RoiAlign, the body's — by ~1e-4 when proposal coordinates move by one float32 ulp (measured:
      // a one-ulp nudge of a third of the chain's own proposals moves keypoint_head.14.weight's by
      // 1.2e-4). The keypoint predictor's bias gradient is zero in exact arithmetic (rounding only),
      // so the keypoint head is scaled by its largest gradient.
      const isKeypointCase = config.MODEL.KEYPOINTS_ON;
      const keypoint = (key: string): boolean => key.startsWith('grad.roi_heads.keypoint_');
      const headScale = Math.max(0, ...[...chain.tensors].filter(([k]) => keypoint(k)).map(([, v]) => maxAbs(v.data as Float32Array)));
      const scale = (key: string, ref: ArrayLike<number>): number => Math.max(1e-6, keypoint(key) ? headScale : maxAbs(ref));
      const { worst, where } = worstGradient(one.tensors, (key) => chain.tensors.get(key)!.data as Float32Array, scale);
      t.diagnostic(`losses ${worstLoss.toExponential(2)}, worst gradient ${worst.toExponential(2)} (${where})`);
      assert.equal(one.tensors.size, chain.losses.size + [...chain.tensors.keys()].filter((k) => k.startsWith('grad.')).length, 'every loss and gradient');
      assert.ok(worstLoss <= 1e-6, `losses differ by ${worstLoss}`);
      const tolerance = isKeypointCase ? 1e-3 : 1e-5;
      assert.ok(worst <= tolerance, `gradients differ by ${worst} (${where})`);
    });
  }

  for (const [name, emptied] of [
    ['fasterrcnn_tiny_train_batch2', [1]],
    ['maskrcnn_tiny_train', [0]],
] as const) {
    it(`images without GT (every anchor and RoI background, no positive): ${name}, image(s) ${emptied.join(', ')} emptied`, async (t) => {
      const { container, trainingCase, config, weights } = await setup(name);
      const targets = trainingCase.targets.map((tg, i) =>
        (emptied as readonly number[]).includes(i) ? { boxes: new Float32Array(0), labels: new Int32Array(0), ...(tg.masks ? { masks: new Uint8Array(0) } : {}), ...(tg.keypoints ? { keypoints: new Float32Array(0) } : {}) } : tg,
      );
      const input = { images: trainingCase.images, targets };
      const chain = await trainStep(config, container, weights(), input, { intermediates: true });
      const indices = (key: string): Int32Array => Int32Array.from(chain.tensors.get(key)!.data as BigInt64Array, Number);
      const replay = {
        rpn: input.images.map((_, i) => ({ positive: indices(`train.rpn.sampled_pos.${i}`), negative: indices(`train.rpn.sampled_neg.${i}`) })),
        roi: input.images.map((_, i) => ({ positive: indices(`train.roi.sampled_pos.${i}`), negative: indices(`train.roi.sampled_neg.${i}`), proposals: chain.tensors.get(`train.rpn.proposals.${i}`)!.dims[0]! })),
      };
      for (const i of emptied) assert.equal(replay.roi[i]!.positive.length, 0, `image ${i} has no positive RoI`);
      const one = await trainStepInGraph(config, container, weights(), input, { replay });
      for (const [loss, v] of chain.losses) assert.ok(Number.isFinite(one.losses.get(loss)!) && Math.abs(one.losses.get(loss)! - v) <= 1e-6 * Math.max(1, Math.abs(v)), `${loss}: ${one.losses.get(loss)} vs ${v}`);
      const { worst, where } = worstGradient(one.tensors, (key) => chain.tensors.get(key)!.data as Float32Array, (_k, r) => Math.max(1e-6, maxAbs(r)));
      t.diagnostic(`worst gradient ${worst.toExponential(2)} (${where})`);
      assert.ok(worst <= 1e-5, `gradients differ by ${worst} (${where})`);
    });
  }

  it("the detector's replica step is one session run of the same graph with keys drawn from the step's seed", async (t) => {
    const { container, trainingCase, config, weights } = await setup('fasterrcnn_tiny_train_batch2');
    assert.equal(config.TRAIN.PROPOSALS_IN_GRAPH, true, 'the default');
    const model = detectorTrainingModel({ config, container, weights: weights() });
    assert.match(model.stepChain, /one session run per step/);
    const replica = await model.openReplica(CPU);
    try {
      const samples = trainingCase.images.map((image, i) => ({ image, targets: trainingCase.targets[i]! }));
      const ours = await replica.step(samples, copyParameters(model.initial), { iteration: 0, replica: 0, replicas: 1, seed: config.TRAIN.SEED });
      // trainStepInGraph draws from TRAIN.SEED in the same order: the transform, then the keys.
      const reference = await trainStepInGraph(config, container, weights(), { images: trainingCase.images, targets: trainingCase.targets });
      for (const [loss, v] of Object.entries(ours.losses)) assert.equal(v, reference.losses.get(loss), loss);
      const { worst, where } = worstGradient(new Map([...ours.gradients].map(([k, v]) => [`grad.${k}`, { data: v }])), (k) => reference.tensors.get(k)!.data as Float32Array, (_k, r) => Math.max(1e-6, maxAbs(r)));
      t.diagnostic(`worst gradient ${worst.toExponential(2)} (${where}) over ${ours.gradients.size} parameters`);
      assert.ok(worst <= 1e-6, `gradients differ by ${worst} (${where})`);
    } finally {
      await replica.release();
    }
  });
});

describe('TRAIN.PROPOSALS_IN_GRAPH with a head that builds only host targets', () => {
  it('the detector keeps the two-session chain and says why; an explicit in-graph build names the head', async () => {
    const { container, trainingCase, config, weights } = await setup('fasterrcnn_tiny_train_batch2');
    // A plugin predictor: the built-in one without buildTargets, under its own name.
    const builtIn = resolveImplementation(container, SLOTS.roiBoxOutputs, config.FAST_RCNN.OUTPUTS).value;
    const training = builtIn.training!;
    registerImplementation(container, SLOTS.roiBoxOutputs, {
      name: 'test.host_targets_only',
      provider: 'test',
      description: 'host targets only',
      value: { ...builtIn, training: { targets: training.targets, buildLosses: training.buildLosses } },
    });
    const plugin = { ...config, FAST_RCNN: { ...config.FAST_RCNN, OUTPUTS: 'test.host_targets_only' } };
    assert.throws(
      () => buildTrainingModel(plugin, container, weights(), { targetsInGraph: true }),
      (e: unknown) => e instanceof ConfigError && /"test.host_targets_only" .* builds no targets in the graph/.test(e.message) && e.key === 'TRAIN.PROPOSALS_IN_GRAPH',
    );
    const model = detectorTrainingModel({ config: plugin, container, weights: weights() });
    assert.match(model.stepChain, /proposal pass \+ host targets .*"test.host_targets_only".* builds no targets in the graph/);
    const replica = await model.openReplica(CPU);
    try {
      const samples = trainingCase.images.map((image, i) => ({ image, targets: trainingCase.targets[i]! }));
      const step = await replica.step(samples, copyParameters(model.initial), { iteration: 0, replica: 0, replicas: 1, seed: config.TRAIN.SEED });
      // The chain's draws: the train-step of the same seed.
      const reference = await trainStep(plugin, container, weights(), { images: trainingCase.images, targets: trainingCase.targets });
      for (const [loss, v] of Object.entries(step.losses)) assert.ok(Math.abs(v - reference.losses.get(loss)!) <= 1e-5 * Math.max(1, Math.abs(v)), loss);
    } finally {
      await replica.release();
    }
  });
});
