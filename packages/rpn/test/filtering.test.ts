/**
 * Proposal filtering against an independent host reference (test/reference.ts): batches whose
 * images differ in size, a tiny image, uniform features, an image with no surviving proposal,
 * the per-level NMS path (> TEST.NMS_COORDINATE_TRICK_MAX_BOXES candidates) and the single-level RPN.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ConfigOverrides, type HostTensor, WeightStore, loadConfig } from '@rcnn/core';
import { compareDense, compareProposals, createTestContext, runModel } from '@rcnn/testing';
import { genericRpnOutputs } from '../src/index.js';
import { featureInput, imageRows, int64Tensor, ints, randomTensor } from './helpers.js';
import { referenceAnchors, referenceProposals } from './reference.js';

const CHANNELS = 4;

/** RPN head weights with spread-out logits and deltas (so score ties are unlikely). */
function headWeights(anchors: number, seed: number): WeightStore {
  const c = CHANNELS;
  const t = (dims: number[], s: number, std: number): HostTensor => randomTensor(dims, seed * 100 + s, std);
  return WeightStore.fromTensors(
    new Map<string, HostTensor>([
      ['rpn.head.conv.0.0.weight', t([c, c, 3, 3], 1, 0.4)],
      ['rpn.head.conv.0.0.bias', t([c], 2, 0.1)],
      ['rpn.head.cls_logits.weight', t([anchors, c, 1, 1], 3, 1.5)],
      ['rpn.head.cls_logits.bias', t([anchors], 4, 0.5)],
      ['rpn.head.bbox_pred.weight', t([4 * anchors, c, 1, 1], 5, 0.3)],
      ['rpn.head.bbox_pred.bias', t([4 * anchors], 6, 0.1)],
    ]),
    'test head weights',
  );
}

interface Level {
  readonly name: string;
  readonly level: number;
  readonly h: number;
  readonly w: number;
}

interface Scenario {
  readonly name: string;
  readonly padded: readonly [number, number];
  readonly imageSizes: readonly (readonly [number, number])[];
  readonly levels: readonly Level[];
  readonly config: ConfigOverrides;
  /** Constant feature value (uniform image) instead of random features. */
  readonly uniform?: number;
  /** Expected proposal counts where the scenario pins them down (e.g. zero). */
  readonly expectCounts?: (counts: readonly number[]) => void;
}

const FPN_LEVELS = (h: number, w: number): Level[] => [
  { name: '0', level: 2, h, w },
  { name: '1', level: 3, h: Math.ceil(h / 2), w: Math.ceil(w / 2) },
  { name: '2', level: 4, h: Math.ceil(h / 4), w: Math.ceil(w / 4) },
  { name: '3', level: 5, h: Math.ceil(h / 8), w: Math.ceil(w / 8) },
  { name: 'pool', level: 6, h: Math.ceil(h / 16), w: Math.ceil(w / 16) },
];
const FPN_SIZES = { FPN_ON: true, RPN_ANCHOR_SIZES: [[32], [64], [128], [256], [512]] };

const SCENARIOS: Scenario[] = [
  {
    name: 'batch of two sizes, everything that survives NMS',
    padded: [64, 96],
    imageSizes: [
      [64, 96],
      [37, 50],
    ],
    levels: FPN_LEVELS(16, 24),
    config: { FPN: FPN_SIZES, TEST: { RPN_PRE_NMS_TOP_N: 50, RPN_POST_NMS_TOP_N: 1000 } },
    expectCounts: (c) => assert.notEqual(c[0], c[1], 'differently sized images should keep different numbers of proposals'),
  },
  {
    name: 'batch of two sizes, post-NMS top-n, anchor sizes from RPN_ANCHOR_START_SIZE',
    padded: [64, 96],
    imageSizes: [
      [50, 96],
      [64, 41],
    ],
    levels: FPN_LEVELS(16, 24),
    config: { FPN: { FPN_ON: true, RPN_ANCHOR_START_SIZE: 24 }, TEST: { RPN_PRE_NMS_TOP_N: 40, RPN_POST_NMS_TOP_N: 25, RPN_NMS_THRESH: 0.5 } },
  },
  {
    name: 'tiny image next to a full-size one',
    padded: [64, 96],
    imageSizes: [
      [3, 2],
      [64, 96],
    ],
    levels: FPN_LEVELS(16, 24),
    config: { FPN: FPN_SIZES, TEST: { RPN_PRE_NMS_TOP_N: 100, RPN_POST_NMS_TOP_N: 1000 } },
    expectCounts: (c) => assert.ok(c[0]! >= 1 && c[0]! <= 10 && c[1]! > 50, `counts ${c.join(', ')}`),
  },
  {
    name: 'uniform features',
    padded: [64, 96],
    imageSizes: [
      [20, 30],
      [64, 96],
    ],
    levels: FPN_LEVELS(16, 24),
    uniform: 0.5,
    config: { FPN: FPN_SIZES, TEST: { RPN_PRE_NMS_TOP_N: 60, RPN_POST_NMS_TOP_N: 1000 } },
  },
  {
    name: 'no proposal survives in one image (min size larger than the image)',
    padded: [64, 96],
    imageSizes: [
      [4, 4],
      [64, 96],
    ],
    levels: FPN_LEVELS(16, 24),
    uniform: 0.25,
    config: { FPN: FPN_SIZES, TEST: { RPN_PRE_NMS_TOP_N: 60, RPN_POST_NMS_TOP_N: 1000, RPN_MIN_SIZE: 5 } },
    expectCounts: (c) => {
      assert.equal(c[0], 0);
      assert.ok(c[1]! > 0);
    },
  },
  {
    name: 'score threshold removes everything',
    padded: [64, 96],
    imageSizes: [[64, 96]],
    levels: FPN_LEVELS(16, 24),
    config: { FPN: FPN_SIZES, TEST: { RPN_PRE_NMS_TOP_N: 60, RPN_SCORE_THRESH: 1 } },
    expectCounts: (c) => assert.deepEqual(c, [0]),
  },
  {
    name: 'more than NMS_COORDINATE_TRICK_MAX_BOXES candidates (NMS per level)',
    padded: [128, 192],
    imageSizes: [
      [128, 192],
      [100, 150],
    ],
    levels: FPN_LEVELS(32, 48),
    config: { FPN: FPN_SIZES, TEST: { RPN_PRE_NMS_TOP_N: 1000, RPN_POST_NMS_TOP_N: 400 } },
  },
  {
    name: 'single level (C4), 15 anchors per location',
    padded: [96, 128],
    imageSizes: [
      [96, 120],
      [70, 128],
    ],
    levels: [{ name: '0', level: 4, h: 6, w: 8 }],
    config: { FPN: { FPN_ON: false }, TEST: { RPN_PRE_NMS_TOP_N: 500, RPN_POST_NMS_TOP_N: 1000 } },
  },
];

for (const [si, sc] of SCENARIOS.entries()) {
  test(`proposal filtering vs host reference: ${sc.name}`, async (t) => {
    const config = loadConfig({ layers: [sc.config] });
    const specs = config.FPN.FPN_ON
      ? sc.levels.map((l, i) => ({
          sizes: config.FPN.RPN_ANCHOR_SIZES.length > 0 ? config.FPN.RPN_ANCHOR_SIZES[i]! : [config.FPN.RPN_ANCHOR_START_SIZE * 2 ** i],
          ratios: config.FPN.RPN_ASPECT_RATIOS,
        }))
      : [{ sizes: config.RPN.SIZES, ratios: config.RPN.ASPECT_RATIOS }];
    const a = specs[0]!.sizes.length * specs[0]!.ratios.length;
    const ctx = createTestContext(config, { weights: headWeights(a, si + 1) });
    const n = sc.imageSizes.length;
    const [hp, wp] = sc.padded;
    const feeds: Record<string, HostTensor> = {
      images: randomTensor([n, 3, hp, wp], 7),
      image_sizes: int64Tensor([n, 2], sc.imageSizes.flat()),
      original_sizes: int64Tensor([n, 2], sc.imageSizes.flat()),
    };
    const features = sc.levels.map((l, i) => {
      const dims = [n, CHANNELS, l.h, l.w];
      feeds[`backbone.${l.name}`] =
        sc.uniform === undefined ? randomTensor(dims, 1000 * si + i) : { dtype: 'float32', dims, data: new Float32Array(dims.reduce((x, y) => x * y)).fill(sc.uniform) };
      return featureInput(ctx.graph, l.name, CHANNELS, l.level);
    });
    const proposals = genericRpnOutputs.build(ctx, features);
    ctx.outputTaps();
    ctx.graph.output(proposals.boxes, 'out.boxes', 'float32');
    ctx.graph.output(proposals.scores, 'out.scores', 'float32');
    ctx.graph.output(proposals.valid, 'out.valid', 'bool');
    ctx.graph.output(proposals.counts, 'out.counts', 'int64');
    const out = await runModel(ctx.graph.toModelProto(), feeds);

    // Anchors: independent formula, strides = padded // feature size per axis.
    const anchors = sc.levels.map((l, i) => referenceAnchors(specs[i]!.sizes, specs[i]!.ratios, l.h, l.w, Math.floor(hp / l.h), Math.floor(wp / l.w)));
    const allAnchors = new Float32Array(anchors.reduce((s, x) => s + x.length, 0));
    anchors.reduce((off, x) => (allAnchors.set(x, off), off + x.length), 0);
    const anchorVerdict = compareDense('rpn.anchors', out.get('rpn.anchors')!, { dtype: 'float32', dims: [allAnchors.length / 4, 4], data: allAnchors }, 0);
    assert.ok(anchorVerdict.pass, anchorVerdict.detail);

    const counts = ints(out.get('out.counts')!);
    const boxes = out.get('out.boxes')!;
    const scores = out.get('out.scores')!;
    const k = scores.dims[1]!;
    assert.ok(k >= 1, 'K >= 1');
    const valid = out.get('out.valid')!.data as Uint8Array;
    const refCounts: number[] = [];
    for (let i = 0; i < n; i++) {
      const ref = referenceProposals(
        sc.levels.map((l) => out.get(`rpn.objectness.${l.name}`)!),
        sc.levels.map((l) => out.get(`rpn.deltas.${l.name}`)!),
        anchors,
        i,
        sc.imageSizes[i]![0],
        sc.imageSizes[i]![1],
        {
          preNmsTopN: config.TEST.RPN_PRE_NMS_TOP_N,
          postNmsTopN: config.TEST.RPN_POST_NMS_TOP_N,
          nmsThresh: config.TEST.RPN_NMS_THRESH,
          minSize: config.TEST.RPN_MIN_SIZE,
          scoreThresh: config.TEST.RPN_SCORE_THRESH,
          bboxXformClip: config.MODEL.BBOX_XFORM_CLIP,
        },
      );
      refCounts.push(ref.count);
      assert.equal(counts[i], ref.count, `image ${i}: ${counts[i]} proposals, reference ${ref.count}`);
      const v = compareProposals(
        `image ${i}`,
        imageRows(boxes, i, counts[i]!),
        imageRows(scores, i, counts[i]!),
        { dtype: 'float32', dims: [ref.count, 4], data: ref.boxes },
        { dtype: 'float32', dims: [ref.count], data: ref.scores },
      );
      t.diagnostic(`${v.name} (${sc.imageSizes[i]!.join('x')}): ${v.detail}`);
      assert.ok(v.pass, v.detail);
      const b = boxes.data as Float32Array;
      const s = scores.data as Float32Array;
      for (let j = 0; j < k; j++) {
        const slot = i * k + j;
        assert.equal(valid[slot] !== 0, j < counts[i]!, `image ${i} slot ${j}: valid flag`);
        if (j < counts[i]!) {
          if (j > 0) assert.ok(s[slot]! <= s[slot - 1]!, `image ${i}: scores sorted at slot ${j}`);
        } else {
          assert.equal(s[slot], -Infinity, `image ${i} slot ${j}: padding score`);
          assert.deepEqual(Array.from(b.subarray(4 * slot, 4 * slot + 4)), [0, 0, 0, 0], `image ${i} slot ${j}: padding box`);
        }
      }
    }
    sc.expectCounts?.(counts);
    // K = min(post-NMS top-n, candidate slots): here at least the largest count.
    assert.ok(k >= Math.max(...refCounts) && k <= config.TEST.RPN_POST_NMS_TOP_N);
  });
}
