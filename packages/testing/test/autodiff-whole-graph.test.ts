/**
 * Whole-graph backward of the built-in stages on the training fixtures' models and weights
 * (fixtures/train): the conv body (ResNet with frozen norms) + FPN, the RPN head, the box head and
 * predictor on fixed RoIs. The checked function is a fixed random weighting of the stages' outputs
 * (FPN levels, RPN objectness and deltas of every level, box features, class logits and box
 * regression), and its gradient with respect to parameters of every stage is compared with central
 * finite differences of the same onnxruntime graph.
 *
 * Then, on every training fixture, the parameter set that gets a gradient must be the fixture's
 * `trainable_parameters` (torchvision's requires_grad), and a frozen stage must get no backward
 * nodes at all.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import {
  type Blob,
  type BuildContext,
  type DependencyContainer,
  GraphBuilder,
  type RcnnConfig,
  SLOTS,
  WeightStore,
  addParameterGradients,
  buildGradients,
  buildModel,
  buildTrainingModel,
  caseConfigLayer,
  configSections,
  exposeTrainableParameters,
  featureInputName,
  gaussian,
  gradientOutputName,
  loadConfig,
  resolveImplementation,
  seededRandom,
  trainableConfigLayer,
  trainableParameters,
} from '@rcnn/core';
import { findRepoRoot } from '../src/index.js';
import { builtInContainer } from './builtins.js';

/** The loss changes the finite-difference steps aim at. */
const LOSS_STEPS = [0.5, 1, 2] as const;

const TRAIN_CASES = ['maskrcnn_tiny_train', 'maskrcnn_tiny_train_frozen', 'keypointrcnn_tiny_train', 'fasterrcnn_tiny_train_batch2'] as const;

interface TrainCase {
  readonly dir: string;
  readonly doc: {
    train: {
      trainable: {
        trainable_parameters: string[];
        frozen_parameters: string[];
      };
    };
  };
}

function trainCase(name: string): TrainCase {
  const dir = join(findRepoRoot(), 'fixtures', 'train', name);
  return {
    dir,
    doc: JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as TrainCase['doc'],
  };
}

function caseTrainConfig(container: DependencyContainer, c: TrainCase): RcnnConfig {
  return loadConfig({
    sections: configSections(container),
    layers: [caseConfigLayer(c.doc, c.dir), trainableConfigLayer(c.doc, c.dir)],
  });
}

const randn = (n: number, seed: number): Float32Array => {
  const g = gaussian(seededRandom(seed));
  return Float32Array.from({ length: n }, () => g());
};

/** Image and RoIs of the check (one 160 x 224 image, RoIs of every size, some crossing the border). */
const H = 160;
const W = 224;
const ROIS = [
  [10, 12, 60, 70],
  [0, 0, 224, 160],
  [100, 40, 130, 58],
  [-20, 100, 50, 170],
  [150, 20, 230, 90],
  [5, 5, 14, 16],
  [60, 60, 180, 150],
  [200, 140, 223, 159],
];

/** Stages of the fixture's model on fixed RoIs; returns the blobs of the checked outputs. */
function buildStages(g: GraphBuilder, config: RcnnConfig, container: DependencyContainer, weights: WeightStore): Blob[] {
  const images = g.input('images', 'float32', [1, 3, H, W]);
  const imageSizes = g.input('image_sizes', 'int64', [1, 2]);
  const originalSizes = g.input('original_sizes', 'int64', [1, 2]);
  const boxes = g.input('rois', 'float32', [ROIS.length, 4]);
  const taps = new Map<string, Blob>();
  const ctx: BuildContext = {
    graph: g,
    config,
    weights,
    container,
    batch: { images, imageSizes, originalSizes },
    tap: (name, blob) => void taps.set(name, blob),
  };
  const features = g.withScope('conv_body', () => resolveImplementation(container, SLOTS.convBody, config.MODEL.CONV_BODY).value.build(ctx, images));
  const proposals = g.withScope('rpn', () => resolveImplementation(container, SLOTS.rpnHead, config.RPN.HEAD).value.build(ctx, features));
  const roiFeatures = features.filter((f) => f.level >= config.FPN.ROI_MIN_LEVEL && f.level <= config.FPN.ROI_MAX_LEVEL);
  const batchIndex = g.constInt64(ROIS.map(() => 0));
  const head = g.withScope('box_head', () =>
    resolveImplementation(container, SLOTS.roiBoxHead, config.FAST_RCNN.ROI_BOX_HEAD).value.build(ctx, roiFeatures, { boxes, batchIndex }),
  );
  g.withScope('box_outputs', () => resolveImplementation(container, SLOTS.roiBoxOutputs, config.FAST_RCNN.OUTPUTS).value.build(ctx, head, proposals));
  // The mask / keypoint heads on the same RoIs as fixed "detections" (labels cycle over the classes).
  const detections = {
    boxes,
    batchIndex,
    scores: g.constFloat32(ROIS.map(() => 1)),
    labels: g.constInt64(ROIS.map((_, i) => 1 + (i % (config.MODEL.NUM_CLASSES - 1)))),
  };
  const extra: Blob[] = [];
  if (config.MODEL.MASK_ON) {
    const { maskProbs } = g.withScope('mask_head', () =>
      resolveImplementation(container, SLOTS.roiMaskHead, config.MRCNN.ROI_MASK_HEAD).value.build(ctx, roiFeatures, detections),
    );
    extra.push(maskProbs, taps.get('roi.mask_logits')!);
  }
  if (config.MODEL.KEYPOINTS_ON) {
    const { heatmaps } = g.withScope('keypoint_head', () =>
      resolveImplementation(container, SLOTS.roiKeypointHead, config.KRCNN.ROI_KEYPOINTS_HEAD).value.build(ctx, roiFeatures, detections),
    );
    extra.push(heatmaps);
  }
  const names = [
    ...features.map((f) => `backbone.${f.name}`),
    ...[...taps.keys()].filter((k) => k.startsWith('rpn.objectness.') || k.startsWith('rpn.deltas.')),
    'roi.box_features',
    'roi.class_logits',
    'roi.box_regression',
  ];
  return [
    ...names.map((n) => {
      const blob = n.startsWith('backbone.') ? features.find((f) => `backbone.${f.name}` === n)!.blob : taps.get(n);
      assert.ok(blob, `stage output ${n} exists`);
      return blob;
    }),
    ...extra,
  ];
}

describe('whole-graph backward on the training fixtures (finite differences)', () => {
  let container: DependencyContainer;
  before(async () => {
    container = await builtInContainer();
  });

  /** Checks the gradient of every parameter of `checked` (directional finite differences). */
  async function checkCase(caseName: string, checked: readonly string[]): Promise<void> {
    const c = trainCase(caseName);
    const config = caseTrainConfig(container, c);
    const feeds: Record<string, ort.Tensor> = {
      images: new ort.Tensor('float32', randn(3 * H * W, 5), [1, 3, H, W]),
      image_sizes: new ort.Tensor('int64', BigInt64Array.of(BigInt(H), BigInt(W)), [1, 2]),
      original_sizes: new ort.Tensor('int64', BigInt64Array.of(BigInt(H), BigInt(W)), [1, 2]),
      rois: new ort.Tensor('float32', Float32Array.from(ROIS.flat()), [ROIS.length, 4]),
    };

    // Forward alone for the output shapes; the weighting R of each output is then fixed.
    const probe = new GraphBuilder({ name: 'probe' });
    const probeOutputs = buildStages(probe, config, container, WeightStore.fromSafetensors(join(c.dir, 'weights.safetensors')));
    probeOutputs.forEach((b, i) => probe.output(b, `out${i}`, 'float32'));
    const probeSession = await ort.InferenceSession.create(probe.toModelProto());
    const shapes = Object.values(await probeSession.run(feeds)).map((t) => [...t.dims]);
    await probeSession.release();

    const weights = WeightStore.fromSafetensors(join(c.dir, 'weights.safetensors'));
    weights.setTrainable(trainableParameters(config, weights.keys()));
    const g = new GraphBuilder({ name: 'whole' });
    const outputs = buildStages(g, config, container, weights);
    let loss: Blob | undefined;
    outputs.forEach((b, i) => {
      const r = g.initializer(`r${i}`, {
        dtype: 'float32',
        dims: shapes[i]!,
        data: randn(
          shapes[i]!.reduce((a, x) => a * x, 1),
          100 + i,
        ),
      });
      const term = g.op('ReduceSum', [g.op('Mul', [b, r])], { keepdims: 0 });
      loss = loss ? g.op('Add', [loss, term]) : term;
    });
    const parameters = exposeTrainableParameters(g, weights);
    addParameterGradients(g, { loss: loss!, parameters });
    g.output(loss!, 'loss', 'float32');
    const session = await ort.InferenceSession.create(g.toModelProto());
    const paramFeeds: Record<string, ort.Tensor> = {};
    for (const p of parameters) paramFeeds[p.key] = new ort.Tensor('float32', weights.take(p.key, p.dims), [...p.dims]);
    const base = await session.run({ ...feeds, ...paramFeeds });

    for (const key of checked)
      assert.ok(
        parameters.some((p) => p.key === key),
        `${key} is a trainable parameter input`,
      );
    const lossAt = async (key: string, data: Float32Array): Promise<number> => {
      const p = parameters.find((q) => q.key === key)!;
      const out = await session.run(
        {
          ...feeds,
          ...paramFeeds,
          [key]: new ort.Tensor('float32', data, [...p.dims]),
        },
        ['loss'],
      );
      return Number(out.loss!.data[0]);
    };
    const report: string[] = [];
    const failures: string[] = [];
    for (const key of checked) {
      const grad = base[gradientOutputName(key)]!.data as Float32Array;
      const value = paramFeeds[key]!.data as Float32Array;
      const norm = Math.hypot(...grad);
      assert.ok(norm > 0, `${key}: gradient is all zeros`);
      // Directional derivatives: one float32 output rounding is noise on a single element's
      // difference quotient, but a direction moves the loss by |grad| at once. Directions: the
      // gradient's own, a seeded Gaussian one, and the gradient's signs on a random half.
      const rand = seededRandom(key.length * 31);
      const gaussianDirection = randn(grad.length, key.length * 17);
      const halfSigns = Float32Array.from(grad, (v) => (rand() < 0.5 ? 0 : Math.sign(v)));
      let worst = 0;
      for (const direction of [grad, gaussianDirection, halfSigns]) {
        const length = Math.hypot(...direction);
        // Steps that move the loss by about LOSS_STEPS (first order): far above float32 noise
        // (the loss is ~1e3..1e4), small enough that few ReLUs flip; the median of the three
        // quotients discards one spoilt by a ReLU flipping or a max-pool switching.
        const quotients: number[] = [];
        for (const lossStep of LOSS_STEPS) {
          const step = lossStep / (norm * length);
          const plus = Float32Array.from(value, (v, i) => v + step * direction[i]!);
          const minus = Float32Array.from(value, (v, i) => v - step * direction[i]!);
          quotients.push(((await lossAt(key, plus)) - (await lossAt(key, minus))) / (2 * step * length));
        }
        const numeric = quotients.sort((a, b) => a - b)[1]!;
        let analytic = 0;
        for (let i = 0; i < grad.length; i++) analytic += (grad[i]! * direction[i]!) / length;
        worst = Math.max(worst, Math.abs(numeric - analytic) / norm);
      }
      report.push(`${key}: ${worst.toExponential(2)}`);
      failures.push(...(worst <= 2e-2 ? [] : [`${key}: worst |analytic - numeric| / max|grad| = ${worst.toExponential(3)}`]));
    }
    await session.release();
    console.log(`${caseName}: whole-graph finite differences (worst relative error per parameter): ${report.join(', ')}`);
    assert.deepEqual(failures, []);
  }

  it('maskrcnn_tiny_train: conv body, FPN, RPN head, box head and predictor, mask head and predictor', async () => {
    await checkCase('maskrcnn_tiny_train', [
      'backbone.body.layer2.0.conv1.weight',
      'backbone.body.layer3.0.downsample.0.weight',
      'backbone.body.layer4.0.conv2.weight',
      'backbone.fpn.inner_blocks.0.0.weight',
      'backbone.fpn.layer_blocks.3.0.bias',
      'rpn.head.conv.0.0.weight',
      'rpn.head.bbox_pred.bias',
      'roi_heads.box_head.fc6.weight',
      'roi_heads.box_predictor.cls_score.weight',
      'roi_heads.mask_head.0.0.weight',
      'roi_heads.mask_predictor.conv5_mask.weight',
      'roi_heads.mask_predictor.conv5_mask.bias',
      'roi_heads.mask_predictor.mask_fcn_logits.weight',
    ]);
  });

  it('keypointrcnn_tiny_train: the keypoint head and predictor (ConvTranspose, bilinear upsampling)', async () => {
    await checkCase('keypointrcnn_tiny_train', [
      'backbone.body.layer3.1.conv2.weight',
      'backbone.fpn.layer_blocks.0.0.weight',
      'roi_heads.keypoint_head.0.weight',
      'roi_heads.keypoint_head.14.bias',
      'roi_heads.keypoint_predictor.kps_score_lowres.weight',
      'roi_heads.keypoint_predictor.kps_score_lowres.bias',
    ]);
  });
});

describe('trainable sets and frozen stages on every training fixture', () => {
  let container: DependencyContainer;
  before(async () => {
    container = await builtInContainer();
  });

  for (const name of TRAIN_CASES) {
    it(`${name}: trainableParameters is torchvision's requires_grad set`, () => {
      const c = trainCase(name);
      const config = caseTrainConfig(container, c);
      const weights = WeightStore.fromSafetensors(join(c.dir, 'weights.safetensors'));
      assert.deepEqual(new Set(trainableParameters(config, weights.keys())), new Set(c.doc.train.trainable.trainable_parameters));
    });
  }

  for (const name of ['maskrcnn_tiny_train_frozen', 'fasterrcnn_tiny_train_batch2'] as const) {
    it(`${name}: the built model's gradients reach exactly the trainable parameters, and frozen stages get no backward`, () => {
      const c = trainCase(name);
      const config = caseTrainConfig(container, c);
      const weights = WeightStore.fromSafetensors(join(c.dir, 'weights.safetensors'));
      const trainable = trainableParameters(config, weights.keys());
      weights.setTrainable(trainable);
      const model = buildModel(config, container, weights, {
        intermediates: true,
      });
      const g = model.graph;
      const parameters = exposeTrainableParameters(g, weights);
      assert.deepEqual(new Set(parameters.map((p) => p.key)), new Set(trainable));
      // A loss over the stage outputs every trainable parameter feeds (the detections' path is
      // not differentiable: proposals and detections are selected by NMS / TopK).
      const taps = g.declaredOutputs
        .map((o) => o.name)
        .filter(
          (n) =>
            n.startsWith('rpn.objectness.') || n.startsWith('rpn.deltas.') || n === 'roi.class_logits' || n === 'roi.box_regression' || n === 'roi.mask_logits',
        );
      let loss: Blob | undefined;
      for (const t of taps) {
        const term = g.op('ReduceSum', [{ name: t }], { keepdims: 0 });
        loss = loss ? g.op('Add', [loss, term]) : term;
      }
      const gradients = buildGradients(g, {
        loss: loss!,
        wrt: parameters.map((p) => p.input),
      });
      assert.deepEqual(gradients.unreached, [], 'every trainable parameter gets a gradient');
      // Frozen stages: no differentiated node reads a frozen stage's blobs only.
      const differentiated = new Set(gradients.differentiatedNodes);
      const frozenScopes = config.TRAIN.FREEZE_CONV_BODY ? ['conv_body/'] : ['conv_body/body/stem', 'conv_body/body/layer1'];
      const intoFrozen = g.graphNodes().filter((n) => differentiated.has(n.name) && frozenScopes.some((s) => n.name.includes(s)));
      assert.deepEqual(
        intoFrozen.map((n) => n.name),
        [],
        'no backward node for a frozen stage',
      );
      // …while the stages that train are differentiated.
      const trainingScopes = config.TRAIN.FREEZE_CONV_BODY ? ['rpn/', 'box_head/'] : ['conv_body/body/layer2', 'conv_body/fpn/', 'rpn/', 'box_head/'];
      for (const scope of trainingScopes)
        assert.ok(
          [...differentiated].some((n) => n.includes(scope)),
          `${scope} is differentiated`,
        );
      if (config.TRAIN.FREEZE_CONV_BODY)
        assert.ok(
          g.graphNodes().some((n) => g.isGradientStopped(n.outputs[0]!)),
          'the conv body outputs pass through stopGradient',
        );
      // The proposals are detached (torchvision): a loss of the proposal boxes reaches no parameter.
      const proposalLoss = g.op('ReduceSum', [{ name: 'rpn.proposals' }], { keepdims: 0 });
      const throughProposals = buildGradients(g, { loss: proposalLoss, wrt: parameters.map((p) => p.input), scope: 'grad_proposals' });
      assert.equal(throughProposals.unreached.length, parameters.length, 'no gradient through the proposals');
    });
  }

  it('TRAIN.RPN_SPARSE_HEAD: the RPN trains on im2col rows of the sampled anchors, with no dense head conv or its gradient', () => {
    const c = trainCase('fasterrcnn_tiny_train_batch2');
    const path = join(c.dir, 'weights.safetensors');
    const rpnConvs = (sparse: boolean) => {
      const layers = [caseConfigLayer(c.doc, c.dir), trainableConfigLayer(c.doc, c.dir), { TRAIN: { RPN_SPARSE_HEAD: sparse } }];
      const config = loadConfig({ sections: configSections(container), layers });
      const nodes = buildTrainingModel(config, container, WeightStore.fromSafetensors(path)).graph.graphNodes();
      return {
        conv: nodes.filter((n) => (n.opType === 'Conv' || n.opType === 'ConvTranspose' || n.opType === 'MatMul') && n.name.includes('rpn')).map((n) => `${n.opType} ${n.name}`),
        sparse: nodes.filter((n) => n.name.includes('sparse_head')).length,
      };
    };
    const dense = rpnConvs(false);
    // Dense: the head's convs on every level, forward and backward; no im2col.
    assert.ok(dense.conv.some((n) => n.startsWith('Conv ') && !n.includes('backward')), dense.conv.join('\n'));
    assert.equal(dense.sparse, 0);
    const sparse = rpnConvs(true);
    assert.ok(sparse.sparse > 0, 'the sparse head is built');
    // Sparse: only MatMuls (the 3x3 conv as [O, C·9] x [C·9, S], the 1x1 predictors) and their gradients.
    assert.deepEqual(sparse.conv.filter((n) => !n.startsWith('MatMul ')), []);
  });

  it('a frozen body fed as features: the training graph takes features.<level> inputs and holds none of the body', async () => {
    const c = trainCase('maskrcnn_tiny_train_frozen');
    const config = caseTrainConfig(container, c);
    assert.equal(config.TRAIN.FREEZE_CONV_BODY, true);
    const path = join(c.dir, 'weights.safetensors');
    const inGraph = buildTrainingModel(config, container, WeightStore.fromSafetensors(path)).toBytes();
    const weights = WeightStore.fromSafetensors(path);
    const fed = buildTrainingModel(config, container, weights, { featureInputs: true }).toBytes();
    const session = await ort.InferenceSession.create(fed);
    try {
      const levels = session.inputNames.filter((n) => n.startsWith(featureInputName('')));
      assert.deepEqual(levels, ['0', '1', '2', '3', 'pool'].map(featureInputName));
    } finally {
      await session.release();
    }
    // The body's weights (backbone.*) are left out with its nodes: the model is smaller by at least them.
    let bodyBytes = 0;
    for (const key of weights.keys()) if (key.startsWith('backbone.') && !key.endsWith('num_batches_tracked')) bodyBytes += 4 * weights.take(key, weights.shapeOf(key)!).length;
    assert.ok(inGraph.length - fed.length >= 0.9 * bodyBytes, `${inGraph.length} -> ${fed.length} bytes, body weights ${bodyBytes} bytes`);
  });
});
