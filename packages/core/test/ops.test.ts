import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  GraphBuilder,
  type HostTensor,
  batchedNmsKeep,
  clipBoxes,
  decodeBoxes,
  imageBounds,
  keepLargeBoxes,
  multiScaleRoiAlign,
  ops,
} from '../src/index.js';
import { multiScaleRoiAlignGrouped } from '../src/detection/multi-scale-roi-align.js';
import { f32, i64, run } from './helpers.js';

describe('box ops', () => {
  it('decodes deltas like torchvision BoxCoder (weights, clamp) and clips per image', async () => {
    const g = new GraphBuilder();
    const deltas = g.input('d', 'float32', ['N', 4]);
    const ref = g.input('r', 'float32', ['N', 4]);
    const sizes = g.input('s', 'int64', [1, 2]);
    const decoded = decodeBoxes(g, deltas, ref, { weights: [10, 10, 5, 5], clip: Math.log(1000 / 16) });
    g.output(decoded, 'boxes', 'float32');
    g.output(clipBoxes(g, decoded, imageBounds(g, sizes)), 'clipped', 'float32');
    g.output(keepLargeBoxes(g, ref, 1), 'keep', 'bool');
    const out = await run(g, {
      // ref box 0 (0,0,10,20): w 10, h 20, centre (5,10); deltas dx=1 (÷10 → 0.1), dw = 5·ln2 (÷5 → ln2 → ×2)
      d: f32([2, 4], [1, 0, 5 * Math.LN2, 0, 0, 0, 100, 100]),
      r: f32([2, 4], [0, 0, 10, 20, 0, 0, 0.5, 4]),
      s: i64([1, 2], [15, 12]),
    });
    const b = Array.from(out.boxes!.data as Float32Array);
    // centre x 5 + 0.1·10 = 6, width 20 -> [-4, 0, 16, 20]
    assert.deepEqual(b.slice(0, 4).map((v) => Math.round(v * 1e4) / 1e4), [-4, 0, 16, 20]);
    // dw, dh clamped to log(1000/16): width 0.5·62.5 = 31.25, height 4·62.5 = 250
    assert.ok(Math.abs(b[6]! - b[4]! - 31.25) < 1e-4 && Math.abs(b[7]! - b[5]! - 250) < 1e-3);
    // clipped to w = 12, h = 15
    assert.deepEqual(Array.from(out.clipped!.data as Float32Array).slice(0, 4).map((v) => Math.round(v * 1e4) / 1e4), [0, 0, 12, 15]);
    assert.deepEqual(Array.from(out.keep!.data as Uint8Array), [1, 0]);
  });

  it('batched NMS keeps per image and group, identically through both torchvision paths', async () => {
    const g = new GraphBuilder();
    const boxes = g.input('boxes', 'float32', ['N', 'G', 'P', 4]);
    const scores = g.input('scores', 'float32', ['N', 'G', 'P']);
    const valid = g.input('valid', 'bool', ['N', 'G', 'P']);
    for (const trick of [0, 1000]) {
      g.output(batchedNmsKeep(g, { boxes, scores, valid, iouThreshold: 0.5, coordinateTrickMaxBoxes: trick, firstGroupId: 1 }), `kept${trick}`, 'float32');
    }
    const out = await run(g, {
      // image 0, group 0: boxes 0 and 1 overlap (IoU 0.68); group 1 repeats box 0 (another class: kept)
      // image 1, group 0: three identical boxes, the third invalid; group 1: identical tiny boxes
      boxes: f32([2, 2, 3, 4], [0, 0, 10, 10, 1, 1, 11, 11, 50, 50, 60, 60, 0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 1, 1, 0, 0, 10, 10, 0, 0, 10, 10, 0, 0, 10, 10, 5, 5, 6, 6, 5, 5, 6, 6, 5, 5, 6, 6]),
      scores: f32([2, 2, 3], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.1, 0.2, 0.3, 0.3, 0.2, 0.1]),
      valid: { dtype: 'bool', dims: [2, 2, 3], data: Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1]) },
    });
    const expected = [0.9, -Infinity, 0.7, 0.6, -Infinity, 0.4, -Infinity, 0.2, -Infinity, 0.3, -Infinity, -Infinity];
    for (const name of ['kept0', 'kept1000']) {
      assert.deepEqual(out[name]!.dims, [2, 6]);
      assert.deepEqual(Array.from(out[name]!.data as Float32Array).map((v) => (Number.isFinite(v) ? Math.round(v * 10) / 10 : v)), expected, name);
    }
  });

  it('batched NMS runs only the paths the images take, including a batch that mixes both', async () => {
    const g = new GraphBuilder();
    const boxes = g.input('boxes', 'float32', ['N', 'G', 'P', 4]);
    const scores = g.input('scores', 'float32', ['N', 'G', 'P']);
    const valid = g.input('valid', 'bool', ['N', 'G', 'P']);
    // trick 3: image 0 (5 valid candidates) goes per group, image 1 (2) through the offset trick.
    for (const trick of [0, 3, 1000]) {
      g.output(batchedNmsKeep(g, { boxes, scores, valid, iouThreshold: 0.5, coordinateTrickMaxBoxes: trick, firstGroupId: 1 }), `kept${trick}`, 'float32');
    }
    const box = (x: number): number[] => [x, 0, x + 10, 10];
    const out = await run(g, {
      boxes: f32([2, 2, 3, 4], [...box(0), ...box(2), ...box(40), ...box(0), ...box(1), ...box(80), ...box(0), ...box(3), ...box(60), ...box(5), ...box(90), ...box(0)]),
      scores: f32([2, 2, 3], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]),
      valid: { dtype: 'bool', dims: [2, 2, 3], data: Uint8Array.from([1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 1, 0]) },
    });
    // Image 0: group 0 keeps 0 (0.9) and 2 (0.7) (box 1 overlaps box 0 by IoU 0.67); group 1 keeps 0.6, suppresses 0.5 (IoU 0.82).
    // Image 1: two valid candidates in different groups, both kept.
    const expected = [0.9, -Infinity, 0.7, 0.6, -Infinity, -Infinity, 0.9, -Infinity, -Infinity, -Infinity, 0.5, -Infinity];
    for (const name of ['kept0', 'kept3', 'kept1000']) {
      assert.deepEqual(Array.from(out[name]!.data as Float32Array).map((v) => (Number.isFinite(v) ? Math.round(v * 10) / 10 : v)), expected, name);
    }
  });

  it('batched NMS accepts groups without candidates (P = 0)', async () => {
    const g = new GraphBuilder();
    const boxes = g.input('boxes', 'float32', ['N', 'G', 'P', 4]);
    const scores = g.input('scores', 'float32', ['N', 'G', 'P']);
    const valid = g.input('valid', 'bool', ['N', 'G', 'P']);
    g.output(batchedNmsKeep(g, { boxes, scores, valid, iouThreshold: 0.5, coordinateTrickMaxBoxes: 1000, firstGroupId: 0 }), 'kept', 'float32');
    const out = await run(g, { boxes: f32([2, 3, 0, 4], []), scores: f32([2, 3, 0], []), valid: { dtype: 'bool', dims: [2, 3, 0], data: new Uint8Array(0) } });
    assert.deepEqual(out.kept!.dims, [2, 0]);
  });

  it('maps RoIs to FPN levels like MultiScaleRoIAlign and restores their order', async () => {
    const g = new GraphBuilder();
    const f2 = g.input('f2', 'float32', [1, 1, 8, 8]);
    const f3 = g.input('f3', 'float32', [1, 1, 4, 4]);
    const rois = g.input('rois', 'float32', ['R', 4]);
    const bi = g.input('bi', 'int64', ['R']);
    const features = [
      { name: '0', blob: f2, channels: 1, spatialScale: 0.5, level: 2 },
      { name: '1', blob: f3, channels: 1, spatialScale: 0.25, level: 3 },
    ];
    g.output(multiScaleRoiAlign(g, features, { boxes: rois, batchIndex: bi }, { outputSize: 1, samplingRatio: 1, aligned: false, canonicalScale: 4, canonicalLevel: 3, eps: 1e-6 }), 'y', 'float32');
    const out = await run(g, {
      f2: f32([1, 1, 8, 8], new Array(64).fill(2)),
      f3: f32([1, 1, 4, 4], new Array(16).fill(3)),
      // sqrt(area) 8 -> level 4 clamped to 3; 1 -> 1 clamped to 2; 2 -> 2; 16 -> 5 clamped to 3; 0 (degenerate) -> 2
      rois: f32([5, 4], [0, 0, 8, 8, 0, 0, 1, 1, 0, 0, 2, 2, 0, 0, 16, 16, 3, 3, 3, 3]),
      bi: i64([5], [0, 0, 0, 0, 0]),
    });
    assert.deepEqual(Array.from(out.y!.data as Float32Array), [3, 2, 2, 3, 2]);
  });

  it('pools RoIs of several images in raster order and returns them in input order (a level may get none)', async () => {
    const sizes = [16, 8, 4];
    const g = new GraphBuilder();
    const maps = sizes.map((s, i) => g.input(`f${i}`, 'float32', [2, 2, s, s]));
    const rois = g.input('rois', 'float32', ['R', 4]);
    const bi = g.input('bi', 'int64', ['R']);
    const features = maps.map((blob, i) => ({ name: String(i), blob, channels: 2, spatialScale: 1 / 2 ** (i + 1), level: i + 2 }));
    const o = { outputSize: 2, samplingRatio: 2, aligned: false, canonicalScale: 8, canonicalLevel: 3, eps: 1e-6 };
    g.output(multiScaleRoiAlign(g, features, { boxes: rois, batchIndex: bi }, o), 'y', 'float32');
    // Reference: plain RoiAlign of every RoI on every level; each RoI then picks its level below.
    maps.forEach((m, i) => g.output(ops.roiAlign(g, m, rois, bi, { outputSize: 2, samplingRatio: 2, spatialScale: features[i]!.spatialScale, aligned: false }), `ref${i}`, 'float32'));
    // Boxes (x1, y1, x2, y2) in image pixels, bottom rows first and images interleaved, so that
    // raster order differs from input order; sqrt(area) 4..10 maps them to levels 2 and 3 only.
    const boxes: [number, number, number, number][] = [
      [2, 20, 8, 26], [0, 0, 8, 8], [10, 18, 16, 24], [1, 2, 5, 6], [12, 3, 20, 11], [4, 12, 9, 17], [20, 24, 30, 31], [6, 1, 10, 5],
    ];
    const images = [1, 0, 0, 1, 1, 0, 1, 0];
    const feeds: Record<string, HostTensor> = {
      rois: f32([boxes.length, 4], boxes.flat()),
      bi: i64([boxes.length], images),
    };
    sizes.forEach((s, i) => {
      feeds[`f${i}`] = f32([2, 2, s, s], Array.from({ length: 2 * 2 * s * s }, (_, k) => Math.sin(0.7 * k + i) * 10 + k / 7));
    });
    const out = await run(g, feeds);
    const y = out.y!.data as Float32Array;
    assert.deepEqual(out.y!.dims, [boxes.length, 2, 2, 2]);
    const used = new Set<number>();
    boxes.forEach(([x1, y1, x2, y2], r) => {
      const lvl = Math.min(4, Math.max(2, Math.floor(o.canonicalLevel + Math.log2(Math.sqrt((x2 - x1) * (y2 - y1)) / o.canonicalScale) + o.eps)));
      used.add(lvl);
      const ref = out[`ref${lvl - 2}`]!.data as Float32Array;
      assert.deepEqual(Array.from(y.subarray(8 * r, 8 * r + 8)), Array.from(ref.subarray(8 * r, 8 * r + 8)), `RoI ${r}`);
    });
    assert.deepEqual([...used].sort(), [2, 3], 'level 4 gets no RoI');
  });

  it('the grouped form gives level-grouped rows whose restore (after any row-wise op) is the RoI order', async () => {
    const g = new GraphBuilder();
    const maps = [g.input('f0', 'float32', [1, 1, 16, 16]), g.input('f1', 'float32', [1, 1, 8, 8])];
    const rois = g.input('rois', 'float32', ['R', 4]);
    const bi = g.input('bi', 'int64', ['R']);
    const features = maps.map((blob, i) => ({ name: String(i), blob, channels: 1, spatialScale: 1 / 2 ** (i + 1), level: i + 2 }));
    const o = { outputSize: 1, samplingRatio: 2, aligned: false, canonicalScale: 8, canonicalLevel: 3, eps: 1e-6 };
    const grouped = multiScaleRoiAlignGrouped(g, features, { boxes: rois, batchIndex: bi }, o);
    g.output(grouped.pooled, 'grouped', 'float32');
    g.output(grouped.restore(ops.mul(g, grouped.pooled, g.constFloat32(3))), 'restored_x3', 'float32');
    g.output(multiScaleRoiAlign(g, features, { boxes: rois, batchIndex: bi }, o), 'plain', 'float32');
    // Level 3 (large), level 2 (small), level 3, level 2: grouped = [2nd, 4th] then [1st, 3rd].
    const feeds = {
      rois: f32([4, 4], [0, 0, 20, 20, 1, 1, 4, 4, 8, 8, 28, 28, 2, 9, 6, 13]),
      bi: i64([4], [0, 0, 0, 0]),
      f0: f32([1, 1, 16, 16], Array.from({ length: 256 }, (_, k) => k)),
      f1: f32([1, 1, 8, 8], Array.from({ length: 64 }, (_, k) => 1000 + k)),
    };
    const out = await run(g, feeds);
    const plain = Array.from(out.plain!.data as Float32Array);
    const grp = Array.from(out.grouped!.data as Float32Array);
    assert.ok(plain[0]! > 1000 && plain[2]! > 1000 && plain[1]! < 1000 && plain[3]! < 1000, plain.join(', '));
    assert.deepEqual(grp, [plain[1], plain[3], plain[0], plain[2]]);
    assert.deepEqual(Array.from(out.restored_x3!.data as Float32Array), plain.map((v) => Math.fround(v * 3)));
  });
});
