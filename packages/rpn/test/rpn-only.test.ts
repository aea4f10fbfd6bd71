/**
 * An RPN-only model (MODEL.RPN_ONLY) assembled by core's buildModel from a tiny random conv body
 * registered by this test and the registered RPN: per-image proposals in original coordinates.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type BuildContext,
  type ConvBody,
  type DependencyContainer,
  type FeatureMap,
  type HostTensor,
  PROPOSAL_OUTPUTS,
  SLOTS,
  WeightStore,
  buildModel,
  createContainer,
  loadConfig,
  ops,
  registerImplementation,
} from '@rcnn/core';
import { compareDense, compareProposals, createTestSession, runModel } from '@rcnn/testing';
import { register } from '../src/index.js';
import { int64Tensor, ints, imageRows, randomTensor } from './helpers.js';
import { referenceAnchors, referenceProposals } from './reference.js';

const BODY = 'test.tiny_fpn_conv_body';
const C = 8;

/**
 * A small but real random body with FPN-like outputs: a 4x4/4 stem conv (P2), three 3x3/2 convs
 * (P3..P5) and P6 = max_pool(P5, 1, 2), as torchvision's LastLevelMaxPool.
 */
const tinyBody: ConvBody = {
  isFpn: true,
  weightPrefixes: ['backbone.'],
  build(ctx: BuildContext, images) {
    const g = ctx.graph;
    const w = (key: string, dims: number[]) => g.initializer(key, { dtype: 'float32', dims, data: ctx.weights.take(key, dims) });
    let x = ops.relu(g, ops.conv(g, images, w('backbone.stem.weight', [C, 3, 4, 4]), w('backbone.stem.bias', [C]), { kernel: 4, stride: 4 }));
    const maps: FeatureMap[] = [{ name: '0', blob: x, channels: C, spatialScale: 1 / 4, level: 2 }];
    for (let i = 1; i <= 3; i++) {
      x = ops.relu(g, ops.conv(g, x, w(`backbone.down${i}.weight`, [C, C, 3, 3]), w(`backbone.down${i}.bias`, [C]), { kernel: 3, stride: 2, pad: 1 }));
      maps.push({ name: String(i), blob: x, channels: C, spatialScale: 2 ** -(i + 2), level: i + 2 });
    }
    maps.push({ name: 'pool', blob: ops.maxPool(g, x, { kernel: 1, stride: 2 }), channels: C, spatialScale: 1 / 64, level: 6 });
    return maps;
  },
};

function weights(): WeightStore {
  const t = new Map<string, HostTensor>();
  let seed = 11;
  const add = (key: string, dims: number[], std: number): void => void t.set(key, randomTensor(dims, seed++, std));
  add('backbone.stem.weight', [C, 3, 4, 4], 0.3);
  add('backbone.stem.bias', [C], 0.1);
  for (let i = 1; i <= 3; i++) {
    add(`backbone.down${i}.weight`, [C, C, 3, 3], 0.3);
    add(`backbone.down${i}.bias`, [C], 0.1);
  }
  add('rpn.head.conv.0.0.weight', [C, C, 3, 3], 0.3);
  add('rpn.head.conv.0.0.bias', [C], 0.1);
  add('rpn.head.cls_logits.weight', [3, C, 1, 1], 1);
  add('rpn.head.cls_logits.bias', [3], 0.3);
  add('rpn.head.bbox_pred.weight', [12, C, 1, 1], 0.2);
  add('rpn.head.bbox_pred.bias', [12], 0.1);
  return WeightStore.fromTensors(t, 'rpn-only test weights');
}

function container(): DependencyContainer {
  const c = createContainer();
  registerImplementation(c, SLOTS.convBody, { name: BODY, provider: 'test', description: 'tiny random conv body', value: tinyBody });
  register(c);
  return c;
}

test('RPN-only model from buildModel: per-image proposals in original image coordinates', async () => {
  const config = loadConfig({
    layers: [
      {
        MODEL: { RPN_ONLY: true, CONV_BODY: BODY },
        FPN: { RPN_ANCHOR_SIZES: [[16], [32], [64], [128], [256]] },
        TEST: { RPN_PRE_NMS_TOP_N: 200, RPN_POST_NMS_TOP_N: 60 },
      },
    ],
  });
  const model = buildModel(config, container(), weights(), { intermediates: true, strictWeights: true });
  assert.equal(model.kind, 'proposals');
  assert.equal(model.resolved['rpn-head'], 'rpn_heads.add_generic_rpn_outputs');
  const sizes: [number, number][] = [
    [96, 128],
    [70, 93],
  ];
  const originals: [number, number][] = [
    [300, 400],
    [35, 47],
  ];
  const feeds: Record<string, HostTensor> = {
    images: randomTensor([2, 3, 96, 128], 5),
    image_sizes: int64Tensor([2, 2], sizes.flat()),
    original_sizes: int64Tensor([2, 2], originals.flat()),
  };
  const out = await runModel(model.toBytes(), feeds);
  const counts = ints(out.get(PROPOSAL_OUTPUTS.counts)!);
  const resized = out.get(PROPOSAL_OUTPUTS.boxesResized)!;
  const original = out.get(PROPOSAL_OUTPUTS.boxes)!;
  const scores = out.get(PROPOSAL_OUTPUTS.scores)!;
  assert.deepEqual(original.dims, resized.dims);
  const k = resized.dims[1]!;

  const names = ['0', '1', '2', '3', 'pool'];
  const objectness = names.map((n) => out.get(`rpn.objectness.${n}`)!);
  const anchors = objectness.map((o, i) => referenceAnchors([16 * 2 ** i], [0.5, 1, 2], o.dims[2]!, o.dims[3]!, Math.floor(96 / o.dims[2]!), Math.floor(128 / o.dims[3]!)));
  for (let i = 0; i < 2; i++) {
    const ref = referenceProposals(objectness, names.map((n) => out.get(`rpn.deltas.${n}`)!), anchors, i, sizes[i]![0], sizes[i]![1], {
      preNmsTopN: 200,
      postNmsTopN: 60,
      nmsThresh: config.TEST.RPN_NMS_THRESH,
      minSize: config.TEST.RPN_MIN_SIZE,
      scoreThresh: config.TEST.RPN_SCORE_THRESH,
      bboxXformClip: config.MODEL.BBOX_XFORM_CLIP,
    });
    assert.equal(counts[i], ref.count, `image ${i} count`);
    assert.ok(ref.count > 0);
    const v = compareProposals(
      `image ${i}`,
      imageRows(resized, i, counts[i]!),
      imageRows(scores, i, counts[i]!),
      { dtype: 'float32', dims: [ref.count, 4], data: ref.boxes },
      { dtype: 'float32', dims: [ref.count], data: ref.scores },
    );
    assert.ok(v.pass, v.detail);
    // Original coordinates: resized x (f32(original) / f32(resized)) per axis.
    const rh = Math.fround(originals[i]![0] / sizes[i]![0]);
    const rw = Math.fround(originals[i]![1] / sizes[i]![1]);
    const r = resized.data as Float32Array;
    const o = original.data as Float32Array;
    for (let j = 0; j < counts[i]!; j++) {
      const at = 4 * (i * k + j);
      const expected = [r[at]! * rw, r[at + 1]! * rh, r[at + 2]! * rw, r[at + 3]! * rh].map(Math.fround);
      assert.deepEqual(Array.from(o.subarray(at, at + 4)), expected, `image ${i} proposal ${j}`);
      assert.ok(o[at + 2]! <= originals[i]![1] + 1e-3 && o[at + 3]! <= originals[i]![0] + 1e-3, 'inside the original image');
    }
  }
});

test('one built RPN serves every input size: anchors follow the padded and feature shapes', async () => {
  const config = loadConfig({ layers: [{ MODEL: { RPN_ONLY: true, CONV_BODY: BODY }, TEST: { RPN_PRE_NMS_TOP_N: 50, RPN_POST_NMS_TOP_N: 20 } }] });
  const model = buildModel(config, container(), weights(), { intermediates: true });
  const session = await createTestSession(model.toBytes());
  // 224 x 160: the P6 map is 4 x 3, so its strides are 224 // 4 = 56 and 160 // 3 = 53 (not 64).
  for (const [h, w] of [
    [64, 64],
    [224, 160],
  ] as const) {
    const out = await runModel(session, {
      images: randomTensor([1, 3, h, w], h),
      image_sizes: int64Tensor([1, 2], [h, w]),
      original_sizes: int64Tensor([1, 2], [h, w]),
    });
    const parts = ['0', '1', '2', '3', 'pool'].map((n, i) => {
      const o = out.get(`rpn.objectness.${n}`)!;
      return referenceAnchors([32 * 2 ** i], [0.5, 1, 2], o.dims[2]!, o.dims[3]!, Math.floor(h / o.dims[2]!), Math.floor(w / o.dims[3]!));
    });
    const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((off, p) => (all.set(p, off), off + p.length), 0);
    const v = compareDense(`anchors ${h}x${w}`, out.get('rpn.anchors')!, { dtype: 'float32', dims: [all.length / 4, 4], data: all }, 0);
    assert.ok(v.pass, v.detail);
    assert.equal(ints(out.get(PROPOSAL_OUTPUTS.counts)!)[0], 20);
  }
  await session.release();
});
