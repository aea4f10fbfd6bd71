import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BuildContext,
  ConfigError,
  type FeatureMaps,
  RegistryError,
  SLOTS,
  WeightStore,
  buildFeaturesNet,
  buildModel,
  createContainer,
  createReplicaContainer,
  loadConfig,
  ops,
  registerImplementation,
  type DependencyContainer,
} from '../src/index.js';
import { f32, i64, run } from './helpers.js';

/**
 * Small fake stages: a two-level "FPN" body (avg-pooled images), an RPN returning one fixed box
 * per image, a box head of global averages, box outputs keeping every proposal as a detection of
 * class 1, and a mask head returning constant probabilities. They exercise the seed function's
 * wiring, not numerics.
 */
function registerFakes(c: DependencyContainer, seen: string[]): void {
  const body = (isFpn: boolean) => ({
    isFpn,
    weightPrefixes: ['backbone.'],
    build(ctx: BuildContext, images: Parameters<typeof ops.relu>[1]): FeatureMaps {
      seen.push('conv_body');
      const g = ctx.graph;
      const w = g.initializer('w', { dtype: 'float32', dims: [2, 3, 1, 1], data: ctx.weights.take('backbone.w', [2, 3, 1, 1]) });
      const p2 = ops.conv(g, images, w, null, { kernel: 1, stride: 4 });
      const p3 = ops.maxPool(g, p2, { kernel: 1, stride: 2 });
      const p4 = ops.maxPool(g, p3, { kernel: 1, stride: 2 });
      return [
        { name: '0', blob: p2, channels: 2, spatialScale: 1 / 4, level: 2 },
        { name: '1', blob: p3, channels: 2, spatialScale: 1 / 8, level: 3 },
        { name: 'pool', blob: p4, channels: 2, spatialScale: 1 / 16, level: 4 },
      ];
    },
  });
  registerImplementation(c, SLOTS.convBody, { name: 'fake_fpn', provider: 'test', description: 'fake', value: body(true) });
  registerImplementation(c, SLOTS.convBody, { name: 'fake_c4', provider: 'test', description: 'fake', value: body(false) });
  registerImplementation(c, SLOTS.rpnHead, {
    name: 'fake_rpn',
    provider: 'test',
    description: 'fake',
    value: {
      weightPrefixes: [],
      build(ctx, features) {
        seen.push(`rpn:${features.map((f) => f.level).join(',')}`);
        const g = ctx.graph;
        const n = ops.dim(g, ctx.batch.images, 0);
        const box = g.constFloat32([2, 2, 10, 12], [1, 1, 4]);
        const boxes = ops.expand(g, box, ops.concat(g, [n, g.constInt64([1, 4])], 0));
        const scores = ops.expand(g, g.constFloat32([0.9], [1, 1]), ops.concat(g, [n, g.constInt64([1])], 0));
        const valid = ops.expand(g, g.constant({ dtype: 'bool', dims: [1, 1], data: Uint8Array.of(1) }), ops.concat(g, [n, g.constInt64([1])], 0));
        const counts = ops.expand(g, g.constInt64([1]), n);
        ctx.tap('rpn.fake', scores, 'float32', 'per-image-proposals', ['N', 'P']);
        return { boxes, scores, valid, counts };
      },
    },
  });
  registerImplementation(c, SLOTS.roiBoxHead, {
    name: 'fake_box_head',
    provider: 'test',
    description: 'fake',
    value: {
      weightPrefixes: [],
      build(ctx, features, rois) {
        seen.push(`box_head:${features.map((f) => f.level).join(',')}`);
        const g = ctx.graph;
        const pooled = ops.roiAlign(g, features[0]!.blob, rois.boxes, rois.batchIndex, { outputSize: 1, samplingRatio: 1, spatialScale: 0.25, aligned: false });
        return { features: ops.flatten(g, pooled), dim: 2 };
      },
    },
  });
  registerImplementation(c, SLOTS.roiBoxOutputs, {
    name: 'fake_outputs',
    provider: 'test',
    description: 'fake',
    value: {
      weightPrefixes: [],
      build(ctx, _head, proposals) {
        seen.push('box_outputs');
        const g = ctx.graph;
        const boxes = ops.reshape(g, proposals.boxes, [-1, 4]);
        const rows = ops.shape(g, boxes, 0, 1);
        const batchIndex = ops.range(g, g.constInt64(0), ops.squeeze(g, rows, [0]), g.constInt64(1));
        return { boxes, scores: ops.reshape(g, proposals.scores, [-1]), labels: ops.expand(g, g.constInt64([1]), rows), batchIndex };
      },
    },
  });
  registerImplementation(c, SLOTS.roiMaskHead, {
    name: 'fake_mask',
    provider: 'test',
    description: 'fake',
    value: {
      weightPrefixes: [],
      hostPostprocessor: 'fake_paste',
      build(ctx, _features, det) {
        seen.push('mask_head');
        const g = ctx.graph;
        const d = ops.shape(g, det.scores, 0, 1);
        return { maskProbs: ops.expand(g, g.constFloat32([0.5], [1, 1, 1, 1]), ops.concat(g, [d, g.constInt64([1, 2, 2])], 0)) };
      },
    },
  });
}

const feeds = (n: number) => ({
  images: f32([n, 3, 32, 32], Array.from({ length: n * 3 * 32 * 32 }, (_, i) => (i % 7) / 7)),
  image_sizes: i64([n, 2], Array.from({ length: n }, () => [32, 32]).flat()),
  original_sizes: i64([n, 2], Array.from({ length: n }, () => [64, 16]).flat()),
});

describe('buildModel', () => {
  it('follows the seed order through the registry and rescales boxes to the original size', async () => {
    const c = createContainer();
    const seen: string[] = [];
    registerFakes(c, seen);
    const config = loadConfig({
      set: ['MODEL.CONV_BODY=fake_fpn', 'RPN.HEAD=fake_rpn', 'FAST_RCNN.ROI_BOX_HEAD=fake_box_head', 'FAST_RCNN.OUTPUTS=fake_outputs', 'MRCNN.ROI_MASK_HEAD=fake_mask', 'MODEL.MASK_ON=true', 'FPN.RPN_MIN_LEVEL=2', 'FPN.RPN_MAX_LEVEL=4', 'FPN.ROI_MIN_LEVEL=2', 'FPN.ROI_MAX_LEVEL=3', 'TRAIN.FREEZE_CONV_BODY=true'],
    });
    const model = buildModel(config, c, WeightStore.random(0));
    assert.deepEqual(seen, ['conv_body', 'rpn:2,3,4', 'box_head:2,3', 'box_outputs', 'mask_head'], 'RPN sees P2..P4, RoI heads the narrowed P2..P3');
    assert.equal(model.frozenConvBody, true);
    assert.deepEqual(model.hostPostprocessors, ['fake_paste']);
    assert.deepEqual(model.resolved, { 'conv-body': 'fake_fpn', 'rpn-head': 'fake_rpn', 'roi-box-head': 'fake_box_head', 'roi-box-outputs': 'fake_outputs', 'roi-mask-head': 'fake_mask' });
    assert.deepEqual(model.outputs.map((o) => o.name), ['det.boxes', 'det.boxes_resized', 'det.scores', 'det.labels', 'det.batch_index', 'det.mask_probs']);
    assert.equal(model.taps.length, 0, 'intermediates are not outputs unless asked for');
    const g = model.graph;
    const out = await run(g, feeds(2));
    // original/resized = (64/32, 16/32) per (h, w): x * 0.5, y * 2
    assert.deepEqual(Array.from(out['det.boxes']!.data as Float32Array), [1, 4, 5, 24, 1, 4, 5, 24]);
    assert.deepEqual(Array.from(out['det.batch_index']!.data as BigInt64Array, Number), [0, 1]);
    assert.deepEqual(out['det.mask_probs']!.dims, [2, 1, 2, 2]);
  });

  it('exposes taps as outputs only with intermediates, under public names', async () => {
    const c = createContainer();
    registerFakes(c, []);
    const config = loadConfig({ set: ['MODEL.CONV_BODY=fake_fpn', 'RPN.HEAD=fake_rpn', 'FAST_RCNN.ROI_BOX_HEAD=fake_box_head', 'FAST_RCNN.OUTPUTS=fake_outputs', 'FPN.RPN_MAX_LEVEL=4', 'FPN.ROI_MAX_LEVEL=3'] });
    const model = buildModel(config, c, WeightStore.random(0), { intermediates: true });
    const names = model.taps.map((t) => t.name);
    for (const n of ['backbone.0', 'backbone.1', 'backbone.pool', 'rpn.proposals', 'rpn.proposal_scores', 'rpn.proposal_counts', 'rpn.fake']) assert.ok(names.includes(n), n);
    const out = await run(model.graph, feeds(1));
    assert.deepEqual(out['backbone.0']!.dims, [1, 2, 8, 8]);
  });

  it('builds RPN-only models that output proposals in original coordinates', async () => {
    const c = createContainer();
    const seen: string[] = [];
    registerFakes(c, seen);
    const config = loadConfig({ set: ['MODEL.CONV_BODY=fake_fpn', 'RPN.HEAD=fake_rpn', 'MODEL.RPN_ONLY=true', 'FPN.RPN_MAX_LEVEL=4'] });
    const model = buildModel(config, c, WeightStore.random(0));
    assert.equal(model.kind, 'proposals');
    assert.deepEqual(seen, ['conv_body', 'rpn:2,3,4']);
    const out = await run(model.graph, feeds(1));
    assert.deepEqual(Array.from(out['rpn.proposals_original']!.data as Float32Array), [1, 4, 5, 24]);
    assert.deepEqual(Array.from(out['rpn.proposal_counts']!.data as BigInt64Array, Number), [1]);
  });

  it('scopes a replica graph and builds the features-only net', async () => {
    const root = createContainer();
    registerFakes(root, []);
    const config = loadConfig({ set: ['MODEL.CONV_BODY=fake_fpn', 'RPN.HEAD=fake_rpn', 'FAST_RCNN.ROI_BOX_HEAD=fake_box_head', 'FAST_RCNN.OUTPUTS=fake_outputs', 'FPN.RPN_MAX_LEVEL=4', 'FPN.ROI_MAX_LEVEL=3'] });
    const replica = createReplicaContainer(root, 'cuda:1', 1);
    const model = buildModel(config, replica, WeightStore.random(0));
    const internal = model.graph.allNames().filter((n) => !n.startsWith('det.'));
    assert.ok(internal.length > 10 && internal.every((n) => n.startsWith('gpu_1/')), internal.find((n) => !n.startsWith('gpu_1/')));
    const features = buildFeaturesNet(config, replica, WeightStore.random(0));
    assert.deepEqual(features.levels.map((l) => l.output), ['features.0', 'features.1', 'features.pool']);
    const out = await run(features.graph, { images: feeds(1).images });
    assert.deepEqual(out['features.1']!.dims, [1, 2, 4, 4]);
  });

  it('checks FPN.FPN_ON against the body and fails on unknown stages with the registry listing', () => {
    const c = createContainer();
    registerFakes(c, []);
    assert.throws(
      () => buildModel(loadConfig({ set: ['MODEL.CONV_BODY=fake_c4'] }), c, WeightStore.random(0)),
      (e: unknown) => e instanceof ConfigError && e.key === 'FPN.FPN_ON' && e.hint === 'set FPN.FPN_ON=false',
    );
    assert.throws(() => buildModel(loadConfig({ set: ['MODEL.CONV_BODY=fake_fpn'] }), c, WeightStore.random(0)), (e: unknown) => e instanceof RegistryError && /no RPN head named "rpn_heads.add_generic_rpn_outputs"/.test(e.message) && /fake_rpn \[test\]/.test(e.message));
  });
});
