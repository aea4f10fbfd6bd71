import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { register as registerCoco } from '@rcnn/coco';
import { WeightStore, configSections, createContainer } from '@rcnn/core';
import { loadTrainingCase, resolveConfig, trainStep } from '@rcnn/runtime';
import { type DetectorSample, SgdMomentum, ShuffledSampler, type StepResult, type TrainingData, copyParameters, detectorTrainingModel, mixSeed, readCheckpoint, train } from '@rcnn/runtime/training';
import { loadPlugins } from '../src/plugins.js';
import { type CocoDataset, type CocoLoader, detectorTraining, loadCocoTrainingSet } from '../src/train/detector.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const CASE = join(ROOT, 'fixtures', 'train', 'maskrcnn_tiny_train');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function setup(set: readonly string[] = [], caseDir: string = CASE) {
  const container = createContainer();
  await loadPlugins(container, []);
  const trainingCase = await loadTrainingCase(caseDir);
  const config = resolveConfig(trainingCase.caseJson, { sections: configSections(container), set }).config;
  return { container, trainingCase, config, weights: WeightStore.fromSafetensors(trainingCase.weights) };
}

describe('rcnn train: the detector step in the engine', () => {
  // The frozen case also checks the frozen body's features fed from the proposal pass (the training
  // graph does not run the body) against train-step's graph, which runs it; the batch-2 case two
  // images per step. (Not the keypoint case: with the same graph and weights, the rounding
  // differences of the two proposal passes — trainable weights are inputs in one, initializers in
  // the other — move its heatmap loss's gradients by ~1e-4 of their largest element, and the
  // predictor's bias gradient, zero in exact arithmetic, entirely.)
  // With TRAIN.PROPOSALS_IN_GRAPH false: the two-session chain, whose draws are train-step's (the
  // one-session step is compared with it in train-in-graph.test.ts).
  for (const name of ['maskrcnn_tiny_train', 'maskrcnn_tiny_train_frozen', 'fasterrcnn_tiny_train_batch2']) {
    it(`one replica step (two-session chain) equals the train-step of the same images, draws and weights: ${name}`, async (t) => {
      const { container, trainingCase, config, weights } = await setup(['TRAIN.PROPOSALS_IN_GRAPH=false'], join(ROOT, 'fixtures', 'train', name));
      const model = detectorTrainingModel({ config, container, weights });
      assert.deepEqual(model.reinitialised, [], 'the case weights fit the case config');
      const replica = await model.openReplica({ device: { kind: 'cpu', id: 0, name: 'cpu' }, threads: { intraOp: 1, interOp: 1 } });
      try {
        const samples = trainingCase.images.map((image, i) => ({ image, targets: trainingCase.targets[i]! }));
        const ours = await replica.step(samples, copyParameters(model.initial), { iteration: 0, replica: 0, replicas: 1, seed: config.TRAIN.SEED });
        // Both sessions' run times are reported (the proposal pass and the training graph).
        assert.ok(ours.sessionMs !== undefined && ours.sessionMs > 0, `sessionMs ${ours.sessionMs}`);
        const reference = await trainStep(config, container, WeightStore.fromSafetensors(trainingCase.weights), { images: trainingCase.images, targets: trainingCase.targets });
        let worstLoss = 0;
        for (const [name, v] of Object.entries(ours.losses)) {
          const r = reference.losses.get(name)!;
          worstLoss = Math.max(worstLoss, Math.abs(v - r) / Math.max(1, Math.abs(r)));
        }
        let worstGrad = 0;
        for (const [name, g] of ours.gradients) {
          const r = reference.tensors.get(`grad.${name}`)!.data as Float32Array;
          const scale = Math.max(1e-6, ...Array.from(r, Math.abs));
          for (let i = 0; i < g.length; i++) worstGrad = Math.max(worstGrad, Math.abs(g[i]! - r[i]!) / scale);
        }
        t.diagnostic(`worst loss |Δ|/max(1,|ref|) ${worstLoss.toExponential(2)}, worst gradient |Δ|/max|ref| ${worstGrad.toExponential(2)} over ${ours.gradients.size} parameters`);
        assert.ok(worstLoss <= 1e-5, `losses differ by ${worstLoss}`);
        assert.ok(worstGrad <= 1e-4, `gradients differ by ${worstGrad}`);
      } finally {
        await replica.release();
      }
    });
  }

  it('a few iterations on the fixture images lower the loss, and the checkpoint is a whole state dict', async (t) => {
    const { container, trainingCase, config, weights } = await setup(['SOLVER.BASE_LR=0.005', 'SOLVER.WARM_UP_ITERS=0', 'SOLVER.MAX_ITER=8', 'SOLVER.IMS_PER_BATCH=1']);
    const model = detectorTrainingModel({ config, container, weights });
    const data: TrainingData<DetectorSample> = {
      size: trainingCase.images.length,
      load: (i) => Promise.resolve({ image: trainingCase.images[i]!, targets: trainingCase.targets[i]! }),
    };
    const out = mkdtempSync(join(tmpdir(), 'rcnn-train-det-'));
    dirs.push(out);
    const result = await train({ model, data, solver: config.SOLVER, out, threads: { intraOp: 2 }, seed: 1, onWarning: () => undefined, releaseGraphs: true });
    // Asked to, the engine freed the model's serialised graphs once its replica was open (as rcnn train does).
    await assert.rejects(model.openReplica({ device: { kind: 'cpu', id: 0, name: 'cpu' }, threads: { intraOp: 1, interOp: 1 } }), /the training graphs were released/);
    const losses = result.records.map((r) => r.totalLoss);
    t.diagnostic(`total loss per iteration: ${losses.map((v) => v.toFixed(4)).join(' ')}`);
    const first = (losses[0]! + losses[1]!) / 2;
    const last = (losses[6]! + losses[7]!) / 2;
    assert.ok(last < 0.8 * first, `loss ${first} -> ${last}`);
    const checkpoint = await readCheckpoint(result.checkpoint!.model, model.parameters.map((p) => p.name));
    for (const key of weights.keys()) {
      if (key.endsWith('num_batches_tracked')) continue;
      assert.ok(checkpoint.tensors.has(key), `checkpoint has ${key}`);
    }
  });
});

describe('rcnn train: data parallel on the detector', () => {
  it('two CPU replicas with one image each make the update of the averaged single-image steps', async (t) => {
    const { container, trainingCase, config, weights } = await setup(['SOLVER.BASE_LR=0.01', 'SOLVER.WARM_UP_ITERS=0', 'SOLVER.MAX_ITER=1', 'SOLVER.IMS_PER_BATCH=2']);
    const model = detectorTrainingModel({ config, container, weights });
    const data: TrainingData<DetectorSample> = {
      size: trainingCase.images.length,
      load: (i) => Promise.resolve({ image: trainingCase.images[i]!, targets: trainingCase.targets[i]! }),
    };
    const out = mkdtempSync(join(tmpdir(), 'rcnn-train-dp-'));
    dirs.push(out);
    const seed = 3;
    const threads = { intraOp: 1, interOp: 1 };
    const result = await train({ model, data, solver: config.SOLVER, out, devices: 'cpu:0,cpu:1', threads, seed, onWarning: () => undefined });
    const parallel = (await readCheckpoint(result.checkpoint!.model, model.parameters.map((p) => p.name))).state.parameters;
    // The documented equivalent: each replica's share as its own step (same seeds), gradients averaged, one SGD update.
    const order = new ShuffledSampler(data.size, seed).batch(0, 2);
    const replica = await model.openReplica({ device: { kind: 'cpu', id: 0, name: 'cpu' }, threads });
    const steps: StepResult[] = [];
    try {
      for (let r = 0; r < 2; r++) {
        const sample = await data.load(order[r]!, () => 0);
        steps.push(await replica.step([sample], copyParameters(model.initial), { iteration: 0, replica: r, replicas: 2, seed: mixSeed(seed, 0, r, 0x57e9) }));
      }
    } finally {
      await replica.release();
    }
    const params = new Map([...model.initial].map(([k, v]) => [k, v.slice()]));
    const mean = new Map([...steps[0]!.gradients].map(([k, g]) => [k, g.map((v, i) => (v + steps[1]!.gradients.get(k)![i]!) / 2)]));
    new SgdMomentum(config.SOLVER).step(params, mean, 0);
    let worst = 0;
    for (const [name, p] of params) {
      const start = model.initial.get(name)!;
      const moved = p.reduce((a, v, i) => Math.max(a, Math.abs(v - start[i]!)), 0);
      assert.ok(moved > 0, `${name} was updated`);
      const q = parallel.get(name)!;
      for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i]! - q[i]!) / Math.max(moved, 1e-6));
    }
    t.diagnostic(`worst |two replicas - averaged single steps| / max|update| per tensor: ${worst.toExponential(2)} over ${params.size} parameters`);
    assert.ok(worst < 1e-4, `worst ${worst}`);
  });
});

describe('rcnn train: resume on the detector', () => {
  it('an interrupted and resumed run has the losses of an uninterrupted one', async () => {
    const { container, trainingCase, config, weights } = await setup(['SOLVER.BASE_LR=0.005', 'SOLVER.WARM_UP_ITERS=0', 'SOLVER.MAX_ITER=4', 'SOLVER.IMS_PER_BATCH=1']);
    const data: TrainingData<DetectorSample> = {
      size: trainingCase.images.length,
      load: (i) => Promise.resolve({ image: trainingCase.images[i]!, targets: trainingCase.targets[i]! }),
    };
    const base = { data, solver: config.SOLVER, threads: { intraOp: 1, interOp: 1 }, seed: 5, onWarning: () => undefined };
    const tmp = (): string => {
      const d = mkdtempSync(join(tmpdir(), 'rcnn-train-resume-'));
      dirs.push(d);
      return d;
    };
    const whole = await train({ ...base, model: detectorTrainingModel({ config, container, weights }), out: tmp() });
    const out = tmp();
    const stop = new AbortController();
    const first = await train({ ...base, model: detectorTrainingModel({ config, container, weights }), out, signal: stop.signal, onIteration: (r) => r.iteration === 1 && stop.abort() });
    const second = await train({ ...base, model: detectorTrainingModel({ config, container, weights }), out, resume: true });
    assert.equal(second.startIteration, 2);
    assert.deepEqual([...first.records, ...second.records].map((r) => r.losses), whole.records.map((r) => r.losses));
  });
});

describe('rcnn train: dataset and initial weights', () => {
  /** A loader over the fixture case, shaped like @rcnn/coco's. */
  async function fixtureLoader(numClasses: number): Promise<CocoLoader> {
    const trainingCase = await loadTrainingCase(CASE);
    const dataset: CocoDataset = {
      length: trainingCase.images.length,
      categories: { numClasses, toJSON: () => ({ categoryIds: [7, 9].slice(0, numClasses - 1), names: ['a', 'b'].slice(0, numClasses - 1) }) },
      aspectRatio: (i) => trainingCase.images[i]!.width / trainingCase.images[i]!.height,
      summary: () => `${trainingCase.images.length} images`,
    };
    return {
      // @rcnn/coco's register: it provides the DATALOADER section rcnn train reads.
      register: registerCoco,
      loadCocoDataset: () => Promise.resolve(dataset),
      loadTrainingImage: (_d, i) => {
        const image = trainingCase.images[i]!;
        // Labels of the fixture (1..3) folded into the smaller class count.
        const labels = trainingCase.targets[i]!.labels.map((l) => 1 + ((l - 1) % (numClasses - 1)));
        return Promise.resolve({ data: image.data as Uint8Array, width: image.width, height: image.height, path: `image_${i}.png`, targets: { ...trainingCase.targets[i]!, labels } });
      },
    };
  }

  it('re-initialises and reports the class-dependent layers of weights trained for another class count', async () => {
    const loader = await fixtureLoader(3);
    const options = { dataset: 'train.json', images: 'images', onWarning: () => undefined };
    const source = async (set: string[]) => {
      const container = createContainer();
      await loadPlugins(container, []);
      return { config: join(CASE, 'case.json'), weights: join(CASE, 'weights.safetensors'), container, set };
    };
    await assert.rejects(detectorTraining({ ...options, source: await source([]) }, loader), /has 2 categories, so the model needs MODEL.NUM_CLASSES 3 .*config says 4/);
    const setup = await detectorTraining({ ...options, source: await source(['MODEL.NUM_CLASSES=3']) }, loader);
    const reinitialised = setup.notes.filter((n) => n.includes('re-initialised'));
    assert.deepEqual(
      reinitialised.map((n) => n.split(':')[0]).sort(),
      [
        'roi_heads.box_predictor.bbox_pred.bias',
        'roi_heads.box_predictor.bbox_pred.weight',
        'roi_heads.box_predictor.cls_score.bias',
        'roi_heads.box_predictor.cls_score.weight',
        'roi_heads.mask_predictor.mask_fcn_logits.bias',
        'roi_heads.mask_predictor.mask_fcn_logits.weight',
      ],
    );
    assert.ok(reinitialised.some((n) => /cls_score\.weight: \[4, \d+\] in the weights, the model needs \[3, \d+\]/.test(n)), reinitialised.join('\n'));
    assert.equal(setup.metadata['rcnn.categories'], JSON.stringify({ categoryIds: [7, 9], names: ['a', 'b'] }));
    const sample = await setup.data.load(0, () => 0);
    assert.equal(sample.image.maxValue, 255);
    assert.ok(sample.targets.labels.every((l) => l >= 1 && l <= 2));
  });

  /** The fixture's image twice in a COCO dataset: image 1 has one annotation, image 2 none. */
  function cocoWithEmptyImage(): string {
    const d = mkdtempSync(join(tmpdir(), 'rcnn-train-coco-'));
    dirs.push(d);
    const path = join(d, 'train.json');
    const polygon = [20, 20, 80, 20, 80, 70, 20, 70];
    writeFileSync(
      path,
      JSON.stringify({
        images: [
          { id: 1, file_name: 'image_0.png', width: 210, height: 144 },
          { id: 2, file_name: 'image_0.png', width: 210, height: 144 },
        ],
        annotations: [{ id: 10, image_id: 1, category_id: 5, bbox: [20, 20, 60, 50], area: 3000, iscrowd: 0, segmentation: [polygon] }],
        categories: [{ id: 5, name: 'cat' }],
      }),
    );
    return path;
  }

  const cocoSource = async (set: string[]) => {
    const container = createContainer();
    await loadPlugins(container, []);
    return { config: join(CASE, 'case.json'), weights: join(CASE, 'weights.safetensors'), container, set: ['MODEL.NUM_CLASSES=2', ...set] };
  };

  it('DATALOADER.FILTER_EMPTY_ANNOTATIONS decides whether an image without annotations is trained on', async () => {
    const dataset = cocoWithEmptyImage();
    const options = { dataset, images: CASE, onWarning: () => undefined };
    const filtered = await detectorTraining({ ...options, source: await cocoSource([]) });
    assert.equal(filtered.data.size, 1);
    assert.match(filtered.notes[0]!, /1 images, 1 annotations, 1 categories; skipped: 1 no-annotations/);
    const kept = await detectorTraining({ ...options, source: await cocoSource(['DATALOADER.FILTER_EMPTY_ANNOTATIONS=false']) });
    assert.equal(kept.data.size, 2);
    assert.match(kept.notes[0]!, /2 images, 1 annotations, 1 categories$/);
    const empty = await kept.data.load(1, () => 0);
    assert.equal(empty.targets.labels.length, 0, 'the kept image trains with no objects');
    assert.equal(kept.data.aspectRatio?.(1), 210 / 144, 'the data knows each image\'s aspect ratio from the JSON');
  });

  it('passes DATALOADER.MIN_KEYPOINTS_PER_IMAGE to the loader and ASPECT_RATIO_GROUPING / PREFETCH to the engine', async () => {
    const loader = await fixtureLoader(2);
    const seen: unknown[] = [];
    const recording: CocoLoader = { ...loader, loadCocoDataset: (o) => (seen.push(o), loader.loadCocoDataset(o)) };
    const set = ['DATALOADER.MIN_KEYPOINTS_PER_IMAGE=3', 'DATALOADER.ASPECT_RATIO_GROUPING=false', 'DATALOADER.PREFETCH=0'];
    const setup = await detectorTraining({ dataset: 'train.json', images: 'images', onWarning: () => undefined, source: await cocoSource(set) }, recording);
    assert.deepEqual(seen, [{ annotations: 'train.json', imagesDir: 'images', masks: true, keypoints: false, legacyPlusOne: false, filterEmptyAnnotations: true, minKeypointsPerImage: 3 }]);
    assert.deepEqual(setup.loading, { aspectRatioGrouping: false, prefetch: 0 });
    const defaults = await detectorTraining({ dataset: 'train.json', images: 'images', onWarning: () => undefined, source: await cocoSource([]) }, recording);
    assert.deepEqual(defaults.loading, { aspectRatioGrouping: true, prefetch: 4 });
  });

  it('loadCocoTrainingSet (rcnn train-step on a COCO json) needs a config with the DATALOADER section', async () => {
    const container = createContainer();
    await loadPlugins(container, []);
    const { caseJson } = await loadTrainingCase(CASE);
    const withoutSection = resolveConfig(caseJson, { sections: configSections(container), set: ['MODEL.NUM_CLASSES=2'] }).config;
    await assert.rejects(loadCocoTrainingSet(withoutSection, cocoWithEmptyImage(), CASE), /DATALOADER/);
    registerCoco(container);
    const config = resolveConfig(caseJson, { sections: configSections(container), set: ['MODEL.NUM_CLASSES=2', 'DATALOADER.FILTER_EMPTY_ANNOTATIONS=false'] }).config;
    assert.equal((await loadCocoTrainingSet(config, cocoWithEmptyImage(), CASE)).length, 2);
  });
});
