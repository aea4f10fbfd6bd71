/**
 * The training targets in the graph (TRAIN.PROPOSALS_IN_GRAPH) against their host counterparts on
 * random batches: IoU bit for bit, the Matcher's codes and low-quality matches, the sampler's sizes
 * and replay, the box encoding, and the RoI sample's rows, labels and order.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BalancedSample,
  GraphBuilder,
  type HostTensor,
  boxIouFloat32,
  boxIouGraph,
  encodeBox,
  encodeBoxesGraph,
  groundTruthFeeds,
  loadConfig,
  matchBoxes,
  matchBoxesGraph,
  replayKeys,
  sampleBalancedGraph,
  sampleRois,
  sampleRoisGraph,
  seededRandom,
} from '../src/index.js';
import { run } from './helpers.js';

/** n random boxes in a w x h image, some of them near-duplicates of others (IoU ties and near-threshold values). */
function randomBoxes(n: number, rand: () => number, w = 200, h = 160): Float32Array {
  const out = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    if (i > 0 && rand() < 0.3) {
      const j = Math.floor(rand() * i);
      for (let c = 0; c < 4; c++) out[4 * i + c] = out[4 * j + c]! + (rand() < 0.5 ? 0 : Math.round(rand() * 6) - 3);
      if (out[4 * i + 2]! <= out[4 * i]!) out[4 * i + 2] = out[4 * i]! + 1;
      if (out[4 * i + 3]! <= out[4 * i + 1]!) out[4 * i + 3] = out[4 * i + 1]! + 1;
      continue;
    }
    const x1 = rand() * w * 0.8;
    const y1 = rand() * h * 0.8;
    out.set([x1, y1, x1 + 1 + rand() * (w - x1), y1 + 1 + rand() * (h - y1)], 4 * i);
  }
  return out;
}

const f32 = (dims: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', dims, data });
const bool = (dims: number[], data: Uint8Array): HostTensor => ({ dtype: 'bool', dims, data });

describe('box IoU and the Matcher in the graph', () => {
  for (const plusOne of [false, true]) {
    it(`equal the host's float32 IoU bit for bit and its match codes, low-quality matches included${plusOne ? ' (LEGACY_PLUS_ONE)' : ''}`, async () => {
      const rand = seededRandom(11);
      const counts = [4, 0, 2]; // an image without GT: every box background
      const g = Math.max(...counts);
      const m = 60;
      const gtData = new Float32Array(counts.length * g * 4);
      const valid = new Uint8Array(counts.length * g);
      const boxes = new Float32Array(counts.length * m * 4);
      const perImage = counts.map((c, i) => {
        const gt = randomBoxes(c, rand);
        gtData.set(gt, i * g * 4);
        valid.fill(1, i * g, i * g + c);
        // Boxes around the GT so every code occurs.
        const b = randomBoxes(m, rand);
        for (let j = 0; j < c; j++) b.set(gt.subarray(4 * j, 4 * j + 4), 4 * (3 * j));
        boxes.set(b, i * m * 4);
        return { gt, boxes: b };
      });
      for (const allowLowQualityMatches of [false, true]) {
        const graph = new GraphBuilder({ name: 'match' });
        const gt = graph.input('gt', 'float32', [counts.length, g, 4]);
        const b = graph.input('boxes', 'float32', [counts.length, m, 4]);
        const v = graph.input('valid', 'bool', [counts.length, g]);
        const iou = boxIouGraph(graph, gt, b, plusOne);
        const o = { high: 0.7, low: 0.3, allowLowQualityMatches };
        graph.output(iou, 'iou', 'float32', [counts.length, g, m]);
        graph.output(matchBoxesGraph(graph, iou, v, o), 'matched', 'int64', [counts.length, m]);
        const out = await run(graph, { gt: f32([counts.length, g, 4], gtData), boxes: f32([counts.length, m, 4], boxes), valid: bool([counts.length, g], valid) });
        const iouOut = out.iou!.data as Float32Array;
        const matchedOut = out.matched!.data as BigInt64Array;
        perImage.forEach((p, i) => {
          const c = counts[i]!;
          const host = boxIouFloat32(p.gt, p.boxes, plusOne);
          for (let r = 0; r < c; r++) for (let j = 0; j < m; j++) assert.equal(iouOut[(i * g + r) * m + j], host[r * m + j], `IoU image ${i} gt ${r} box ${j}`);
          const codes = matchBoxes(host, c, m, o);
          assert.deepEqual(Array.from(matchedOut.subarray(i * m, (i + 1) * m), Number), Array.from(codes), `codes of image ${i} (low-quality ${allowLowQualityMatches})`);
        });
      }
    });
  }
});

describe('balanced sampler in the graph', () => {
  it("takes torchvision's sizes per image and exactly a replayed sample", async () => {
    const rand = seededRandom(5);
    const n = 2;
    const m = 300;
    // Image 0: few positives (all taken); image 1: many of both (capped).
    const kinds = new BigInt64Array(n * m);
    for (let j = 0; j < m; j++) {
      kinds[j] = BigInt(j < 20 ? 1 : j < 200 ? 0 : -1);
      kinds[m + j] = BigInt(rand() < 0.5 ? 1 : rand() < 0.8 ? 0 : -1);
    }
    const build = (): GraphBuilder => {
      const g = new GraphBuilder({ name: 'sampler' });
      const s = sampleBalancedGraph(g, g.input('kinds', 'int64', [n, m]), g.input('keys', 'float32', [n, m]), { batchSizePerImage: 64, positiveFraction: 0.25 });
      g.output(s.positive, 'positive', 'bool', [n, m]);
      g.output(s.negative, 'negative', 'bool', [n, m]);
      return g;
    };
    const keys = Float32Array.from({ length: n * m }, () => rand());
    const out = await run(build(), { kinds: { dtype: 'int64', dims: [n, m], data: kinds }, keys: f32([n, m], keys) });
    const picked = (name: string, i: number): number[] => {
      const d = out[name]!.data as Uint8Array;
      const r: number[] = [];
      for (let j = 0; j < m; j++) if (d[i * m + j]) r.push(j);
      return r;
    };
    const kind = (i: number, j: number): number => Number(kinds[i * m + j]);
    for (let i = 0; i < n; i++) {
      const pos = picked('positive', i);
      const neg = picked('negative', i);
      const allPos = Array.from({ length: m }, (_, j) => j).filter((j) => kind(i, j) === 1).length;
      const allNeg = Array.from({ length: m }, (_, j) => j).filter((j) => kind(i, j) === 0).length;
      assert.equal(pos.length, Math.min(allPos, 16), `positives of image ${i}`);
      assert.equal(neg.length, Math.min(allNeg, 64 - pos.length), `negatives of image ${i}`);
      assert.ok(pos.every((j) => kind(i, j) === 1) && neg.every((j) => kind(i, j) === 0));
      // The highest keys of each kind were taken.
      const lowestTaken = Math.min(...pos.map((j) => keys[i * m + j]!));
      assert.ok(Array.from({ length: m }, (_, j) => j).every((j) => kind(i, j) !== 1 || pos.includes(j) || keys[i * m + j]! <= lowestTaken));
    }
    // Replay: image 1's recorded sample comes back exactly.
    const recorded: BalancedSample = { positive: Int32Array.from(picked('positive', 1)), negative: Int32Array.from(picked('negative', 1)) };
    const replay = new Float32Array(n * m);
    replay.set(replayKeys(m, recorded), m);
    const again = await run(build(), { kinds: { dtype: 'int64', dims: [n, m], data: kinds }, keys: f32([n, m], replay) });
    const d = again.positive!.data as Uint8Array;
    assert.deepEqual(
      Array.from({ length: m }, (_, j) => j).filter((j) => d[m + j]),
      Array.from(recorded.positive),
    );
  });
});

describe('box encoding in the graph', () => {
  for (const plusOne of [false, true]) {
    it(`matches the host's encodeBox${plusOne ? ' (LEGACY_PLUS_ONE)' : ''}`, async () => {
      const rand = seededRandom(3);
      const r = 50;
      const gt = randomBoxes(r, rand);
      const boxes = randomBoxes(r, rand);
      const weights = [10, 10, 5, 5];
      const g = new GraphBuilder({ name: 'encode' });
      g.output(encodeBoxesGraph(g, g.input('gt', 'float32', [r, 4]), g.input('boxes', 'float32', [r, 4]), weights, plusOne), 'deltas', 'float32', [r, 4]);
      const out = (await run(g, { gt: f32([r, 4], gt), boxes: f32([r, 4], boxes) })).deltas!.data as Float32Array;
      const host = new Float32Array(4 * r);
      for (let i = 0; i < r; i++) encodeBox(gt, 4 * i, boxes, 4 * i, weights, host, 4 * i, plusOne);
      for (let i = 0; i < 4 * r; i++) {
        // dx, dy: the same float32 operations; dw, dh: onnxruntime's float32 Log may differ from the correctly rounded one by an ulp.
        const tolerance = i % 4 < 2 ? 0 : 2 * 2 ** -23 * Math.max(1, Math.abs(host[i]!));
        assert.ok(Math.abs(out[i]! - host[i]!) <= tolerance, `delta ${i}: ${out[i]} vs ${host[i]}`);
      }
    });
  }
});

describe('RoI sample in the graph', () => {
  it("replays the host sample: the same RoIs, image indices and labels in the host's order", async () => {
    const config = loadConfig({ layers: [{ TRAIN: { BATCH_SIZE_PER_IM: 32 }, MODEL: { NUM_CLASSES: 5 } }] });
    const rand = seededRandom(9);
    const counts = [30, 12]; // proposals per image
    const k = 40; // proposal slots
    const gtCounts = [3, 1];
    const gMax = 3;
    const size: [number, number] = [160, 200];
    const targets = gtCounts.map((c) => ({ boxes: randomBoxes(c, rand), labels: Int32Array.from({ length: c }, () => 1 + Math.floor(rand() * 4)), size }));
    const proposals = counts.map((c, i) => {
      const p = randomBoxes(c, rand);
      // Proposals near the GT: foreground rows.
      for (let j = 0; j < Math.min(c, 2 * gtCounts[i]!); j++) p.set(targets[i]!.boxes.subarray(4 * (j % gtCounts[i]!), 4 * (j % gtCounts[i]!) + 4), 4 * j);
      return p;
    });
    const host = sampleRois(proposals, targets, config, { rand: seededRandom(1) });
    const postNms = config.TRAIN.RPN_POST_NMS_TOP_N;
    const feeds = groundTruthFeeds(config, targets, {
      padded: size,
      rpnKeyWidth: 1,
      rand,
      replay: {
        rpn: counts.map(() => ({ positive: new Int32Array(0), negative: new Int32Array(0) })),
        roi: host.samples.map((s, i) => ({
          positive: s.sampled.filter((r) => s.labels[r]! > 0),
          negative: s.sampled.filter((r) => s.labels[r] === 0),
          proposals: counts[i]!,
        })),
      },
    });
    assert.deepEqual(feeds['train.roi.sample_keys']!.dims, [2, postNms + gMax]);
    const slotBoxes = new Float32Array(2 * k * 4);
    const slotValid = new Uint8Array(2 * k);
    counts.forEach((c, i) => {
      slotBoxes.set(proposals[i]!, i * k * 4);
      slotValid.fill(1, i * k, i * k + c);
    });
    const g = new GraphBuilder({ name: 'roi_sample' });
    const gt = {
      boxes: g.input('train.gt.boxes', 'float32', [2, gMax, 4]),
      labels: g.input('train.gt.labels', 'int64', [2, gMax]),
      valid: g.input('train.gt.valid', 'bool', [2, gMax]),
      masks: () => assert.fail('no masks'),
      keypoints: () => assert.fail('no keypoints'),
    };
    const p = { boxes: g.input('boxes', 'float32', [2, k, 4]), valid: g.input('valid', 'bool', [2, k]), scores: g.input('scores', 'float32', [2, k]), counts: g.input('counts', 'int64', [2]) };
    const sample = sampleRoisGraph(g, p, gt, g.input('train.roi.sample_keys', 'float32', [2, postNms + gMax]), config);
    g.output(sample.sampled.boxes, 'rois', 'float32', ['R', 4]);
    g.output(sample.sampled.batchIndex, 'batch_index', 'int64', ['R']);
    g.output(sample.sampled.labels, 'labels', 'int64', ['R']);
    g.output(sample.positives.boxes, 'positive_boxes', 'float32', ['Rp', 4]);
    g.output(sample.positives.gtIndex, 'gt_index', 'int64', ['Rp']);
    const out = await run(g, {
      'train.gt.boxes': feeds['train.gt.boxes']!,
      'train.gt.labels': feeds['train.gt.labels']!,
      'train.gt.valid': feeds['train.gt.valid']!,
      'train.roi.sample_keys': feeds['train.roi.sample_keys']!,
      boxes: f32([2, k, 4], slotBoxes),
      valid: bool([2, k], slotValid),
      scores: f32([2, k], new Float32Array(2 * k)),
      counts: { dtype: 'int64', dims: [2], data: BigInt64Array.from(counts.map(BigInt)) },
    });
    const hostFeeds = host.host.feeds;
    assert.deepEqual(Array.from(out.rois!.data as Float32Array), Array.from(hostFeeds['train.roi.boxes']!.data as Float32Array));
    assert.deepEqual(Array.from(out.batch_index!.data as BigInt64Array), Array.from(hostFeeds['train.roi.batch_index']!.data as BigInt64Array));
    assert.deepEqual(Array.from(out.labels!.data as BigInt64Array), Array.from(hostFeeds['train.roi.labels']!.data as BigInt64Array));
    assert.deepEqual(Array.from(out.positive_boxes!.data as Float32Array), Array.from(hostFeeds['train.roi.positive_boxes']!.data as Float32Array));
    // Each positive's flattened GT slot n·G + g is its image's matched GT.
    const expected: number[] = [];
    host.samples.forEach((s, i) => {
      for (const r of s.positives) expected.push(i * gMax + s.matchedGt[r]!);
    });
    assert.deepEqual(Array.from(out.gt_index!.data as BigInt64Array, Number), expected);
    assert.ok(expected.length > 0 && (out.rois!.dims[0] ?? 0) > expected.length, 'the case has positives and negatives');
  });
});
