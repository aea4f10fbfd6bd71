/**
 * Registration (names, aliases, unknown names), the head inside core's buildModel, and the typed
 * errors for configs, weights and decoder inputs that do not fit.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BoxHeadOutput,
  type BuildContext,
  ConfigError,
  type ConvBody,
  type Detections,
  EXTRA_KEYS,
  type FeatureMaps,
  type HostTensor,
  InputError,
  RegistryError,
  type RoiBoxHead,
  type RoiBoxOutputs,
  type RpnHead,
  SLOTS,
  WeightStore,
  WeightsError,
  buildModel,
  createContainer,
  getExtra,
  loadConfig,
  registerImplementation,
  resolveImplementation,
} from '@rcnn/core';
import { compareDense, createTestContext, runModel } from '@rcnn/testing';
import { heatmapsToKeypoints, keypointRcnnHeads, register } from '../src/index.js';
import { ROI_LEVELS, f32, i64, imageDetections, keypointCase } from './helpers.js';

describe('register', () => {
  it('registers the head (name and alias) and the decoder; an unknown name lists the known ones', () => {
    const container = createContainer();
    register(container);
    register(container); // idempotent
    for (const name of ['keypoint_rcnn_heads.add_roi_pose_head_v1convX', 'KeypointRCNNHeads']) {
      const impl = resolveImplementation(container, SLOTS.roiKeypointHead, name);
      assert.equal(impl.provider, '@rcnn/keypoint-head');
      assert.equal(impl.value.hostPostprocessor, 'heatmaps_to_keypoints');
      assert.deepEqual(impl.value.weightPrefixes, ['roi_heads.keypoint_head.', 'roi_heads.keypoint_predictor.']);
    }
    assert.equal(resolveImplementation(container, SLOTS.hostPostprocessor, 'heatmaps_to_keypoints').value, heatmapsToKeypoints);
    assert.throws(
      () => resolveImplementation(container, SLOTS.roiKeypointHead, 'keypoint_rcnn_heads.nope'),
      (e: unknown) => e instanceof RegistryError && e.message.includes('keypoint_rcnn_heads.add_roi_pose_head_v1convX') && e.message.includes('KeypointRCNNHeads'),
    );
    assert.throws(() => resolveImplementation(createContainer(), SLOTS.roiKeypointHead, 'KeypointRCNNHeads'), RegistryError);
  });
});

/** Stand-ins for the other stages: reference features and detections as graph inputs. */
function standIns(channels: number): { body: ConvBody; rpn: RpnHead; boxHead: RoiBoxHead; boxOutputs: RoiBoxOutputs } {
  return {
    body: {
      isFpn: true,
      weightPrefixes: ['backbone.'],
      build(ctx: BuildContext): FeatureMaps {
        return [...ROI_LEVELS, 'pool'].map((name, i) => ({
          name,
          blob: ctx.graph.input(`ref.backbone.${name}`, 'float32', ['N', channels, `H${i}`, `W${i}`]),
          channels,
          spatialScale: 2 ** -(2 + i),
          level: 2 + i,
        }));
      },
    },
    rpn: {
      weightPrefixes: ['rpn.'],
      build(ctx) {
        const g = ctx.graph;
        return {
          boxes: g.input('ref.proposals', 'float32', ['N', 'K', 4]),
          scores: g.input('ref.proposal_scores', 'float32', ['N', 'K']),
          valid: g.input('ref.proposal_valid', 'bool', ['N', 'K']),
          counts: g.input('ref.proposal_counts', 'int64', ['N']),
        };
      },
    },
    boxHead: { weightPrefixes: [], build: (_ctx, _f, rois): BoxHeadOutput => ({ features: rois.boxes, dim: 4 }) },
    boxOutputs: {
      weightPrefixes: [],
      build(ctx): Detections {
        const g = ctx.graph;
        return {
          boxes: g.input('ref.det.boxes', 'float32', ['D', 4]),
          scores: g.input('ref.det.scores', 'float32', ['D']),
          labels: g.input('ref.det.labels', 'int64', ['D']),
          batchIndex: g.input('ref.det.batch_index', 'int64', ['D']),
        };
      },
    },
  };
}

describe('inside buildModel', () => {
  it('outputs det.keypoint_heatmaps, exposes roi.keypoint_logits and lists heatmaps_to_keypoints', async () => {
    const { pc, config } = keypointCase();
    const container = createContainer();
    register(container);
    const s = standIns(32);
    registerImplementation(container, SLOTS.convBody, { name: config.MODEL.CONV_BODY, provider: 'test', description: 'reference features', value: s.body });
    registerImplementation(container, SLOTS.rpnHead, { name: config.RPN.HEAD, provider: 'test', description: 'stub', value: s.rpn });
    registerImplementation(container, SLOTS.roiBoxHead, { name: config.FAST_RCNN.ROI_BOX_HEAD, provider: 'test', description: 'stub', value: s.boxHead });
    registerImplementation(container, SLOTS.roiBoxOutputs, { name: config.FAST_RCNN.OUTPUTS, provider: 'test', description: 'reference detections', value: s.boxOutputs });
    const model = buildModel(config, container, pc.weights(), { intermediates: true });
    assert.deepEqual(model.hostPostprocessors, ['heatmaps_to_keypoints']);
    assert.equal(model.resolved[SLOTS.roiKeypointHead.id], 'keypoint_rcnn_heads.add_roi_pose_head_v1convX');
    assert.deepEqual(model.taps.find((t) => t.name === 'roi.keypoint_logits'), { name: 'roi.keypoint_logits', dtype: 'float32', layout: 'whole', dims: ['D', 17, 'S', 'S'] });

    const boxes = pc.reference('det.boxes_resized.0') as HostTensor<'float32'>;
    const d = boxes.dims[0]!;
    const sizes = pc.reference('transform.image_sizes') as HostTensor<'int64'>;
    const feeds: Record<string, HostTensor> = {
      images: f32([1, 3, 32, 32], new Float32Array(3 * 32 * 32)),
      image_sizes: sizes,
      original_sizes: i64([1, 2], [240, 180]),
      'ref.proposals': f32([1, 1, 4], [0, 0, 10, 10]),
      'ref.proposal_scores': f32([1, 1], [1]),
      'ref.proposal_valid': { dtype: 'bool', dims: [1, 1], data: Uint8Array.of(1) },
      'ref.proposal_counts': i64([1], [1]),
      'ref.det.boxes': boxes,
      'ref.det.scores': pc.reference('det.scores.0'),
      'ref.det.labels': pc.reference('det.labels.0'),
      'ref.det.batch_index': i64([d], new Array<number>(d).fill(0)),
    };
    [...ROI_LEVELS, 'pool'].forEach((name) => (feeds[`ref.backbone.${name}`] = pc.reference(`backbone.${name}`)));
    const outputs = await runModel(model.toBytes(), feeds);
    const heatmaps = outputs.get('det.keypoint_heatmaps')!;
    const v = compareDense('det.keypoint_heatmaps', heatmaps, pc.reference('roi.keypoint_logits'));
    assert.ok(v.pass, v.detail);

    // The runtime's step: resolve the listed post-processor and apply it.
    const image = imageDetections(0, boxes.data, [Number(sizes.data[0]), Number(sizes.data[1])], [240, 180]);
    resolveImplementation(container, SLOTS.hostPostprocessor, model.hostPostprocessors[0]!).value.apply(outputs, [image], [[0, d]], config);
    assert.equal(getExtra(image, EXTRA_KEYS.keypoints)?.keypoints.length, d * 17 * 3);
  });
});

describe('errors', () => {
  /** Builds the head with KRCNN overrides on inputs with the given per-level channels; returns what it threw. */
  function buildWith(overrides: Record<string, unknown>, channels: readonly number[] = [32, 32, 32, 32], weights?: WeightStore): unknown {
    const { pc } = keypointCase();
    const config = loadConfig({ layers: [`${pc.dir}/case.json`, { KRCNN: overrides }] });
    const ctx = createTestContext(config, { weights: weights ?? pc.weights() });
    const g = ctx.graph;
    const maps: FeatureMaps = channels.map((c, i) => ({ name: ROI_LEVELS[i]!, blob: g.input(`f${i}`, 'float32', ['N', c, 'h', 'w']), channels: c, spatialScale: 2 ** -(2 + i), level: 2 + i }));
    const det: Detections = {
      boxes: g.input('b', 'float32', ['D', 4]),
      scores: g.input('s', 'float32', ['D']),
      labels: g.input('l', 'int64', ['D']),
      batchIndex: g.input('i', 'int64', ['D']),
    };
    try {
      keypointRcnnHeads.build(ctx, maps, det);
      return undefined;
    } catch (e) {
      return e;
    }
  }

  it('a heatmap size the head cannot make names KRCNN.HEATMAP_SIZE', () => {
    const e = buildWith({ HEATMAP_SIZE: 64 });
    assert.ok(e instanceof ConfigError && e.key === 'KRCNN.HEATMAP_SIZE' && e.message.includes('56'), String(e));
  });

  it('an even conv kernel names KRCNN.CONV_HEAD_KERNEL', () => {
    const e = buildWith({ CONV_HEAD_KERNEL: 4 });
    assert.ok(e instanceof ConfigError && e.key === 'KRCNN.CONV_HEAD_KERNEL', String(e));
  });

  it('levels of different widths are refused', () => {
    const e = buildWith({}, [32, 32, 16, 32]);
    assert.ok(e instanceof ConfigError && e.message.includes("'2': 16"), String(e));
  });

  it('weights of the wrong shape or missing name the tensor', () => {
    const wrongDim = buildWith({ CONV_HEAD_DIM: 64 });
    assert.ok(wrongDim instanceof WeightsError && wrongDim.key === 'roi_heads.keypoint_head.0.weight', String(wrongDim));
    const tooDeep = buildWith({ NUM_STACKED_CONVS: 9 });
    assert.ok(tooDeep instanceof WeightsError && tooDeep.key === 'roi_heads.keypoint_head.16.weight', String(tooDeep));
    const wrongK = buildWith({ NUM_KEYPOINTS: 14 });
    assert.ok(wrongK instanceof WeightsError && wrongK.key === 'roi_heads.keypoint_predictor.kps_score_lowres.weight', String(wrongK));
  });

  it('random weights build a head of the configured shape', async () => {
    const config = loadConfig({ layers: [{ MODEL: { KEYPOINTS_ON: true }, KRCNN: { NUM_STACKED_CONVS: 2, CONV_HEAD_DIM: 8, NUM_KEYPOINTS: 5 } }] });
    const ctx = createTestContext(config, { weights: WeightStore.random(3) });
    const g = ctx.graph;
    const maps: FeatureMaps = [{ name: '0', blob: g.input('f', 'float32', [1, 4, 20, 20]), channels: 4, spatialScale: 0.25, level: 2 }];
    const det: Detections = { boxes: g.input('b', 'float32', ['D', 4]), scores: g.input('s', 'float32', ['D']), labels: g.input('l', 'int64', ['D']), batchIndex: g.input('i', 'int64', ['D']) };
    g.output(keypointRcnnHeads.build(ctx, maps, det).heatmaps, 'out', 'float32');
    const out = await runModel(g.toModelProto(), {
      images: f32([1, 3, 8, 8], new Float32Array(192)),
      image_sizes: i64([1, 2], [80, 80]),
      original_sizes: i64([1, 2], [80, 80]),
      f: f32([1, 4, 20, 20], Float32Array.from({ length: 1600 }, (_, i) => Math.sin(i))),
      b: f32([2, 4], [0, 0, 40, 40, 10, 5, 70, 30]),
      s: f32([2], [1, 1]),
      l: i64([2], [1, 1]),
      i: i64([2], [0, 0]),
    });
    assert.deepEqual(out.get('out')!.dims, [2, 5, 56, 56]);
  });

  it('the decoder refuses missing or malformed heatmaps and mismatched rows with InputError', () => {
    const { config } = keypointCase();
    const image = imageDetections(0, Float32Array.of(0, 0, 10, 10), [100, 100], [100, 100]);
    const hm = (dims: number[]): Map<string, HostTensor> => new Map([['det.keypoint_heatmaps', f32(dims, new Float32Array(dims.reduce((a, b) => a * b, 1)))]]);
    const cases: [string, () => void, RegExp][] = [
      ['missing output', () => heatmapsToKeypoints.apply(new Map(), [image], [[0, 1]], config), /det\.keypoint_heatmaps.*missing/],
      ['3-D heatmaps', () => heatmapsToKeypoints.apply(hm([1, 17, 56]), [image], [[0, 1]], config), /\[D,K,H,W\]/],
      ['wrong K', () => heatmapsToKeypoints.apply(hm([1, 5, 56, 56]), [image], [[0, 1]], config), /KRCNN\.NUM_KEYPOINTS/],
      ['rows past the end', () => heatmapsToKeypoints.apply(hm([1, 17, 56, 56]), [image], [[0, 2]], config), /outside/],
      ['rows vs boxes', () => heatmapsToKeypoints.apply(hm([2, 17, 56, 56]), [image], [[0, 2]], config), /boxes/],
      ['rows per image', () => heatmapsToKeypoints.apply(hm([1, 17, 56, 56]), [image], [], config), /row ranges/],
      [
        'non-finite box',
        () => heatmapsToKeypoints.apply(hm([1, 17, 56, 56]), [imageDetections(0, Float32Array.of(0, 0, NaN, 10), [100, 100], [100, 100])], [[0, 1]], config),
        /non-finite box/,
      ],
    ];
    for (const [what, fn, pattern] of cases) {
      assert.throws(fn, (e: unknown) => e instanceof InputError && pattern.test(e.message), what);
    }
  });
});
