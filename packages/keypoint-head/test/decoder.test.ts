/**
 * The pruned bicubic argmax against the brute-force resize-then-argmax (test/reference-bicubic.ts):
 * positions and values must be bit-identical on realistic, noisy, plateau, tie and degenerate maps
 * and on box sizes from below one pixel to several hundred.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '@rcnn/core';
import { ArgmaxWorkspace, bicubicArgmax, cubicAxis, decodeHeatmaps, denseBicubicArgmax, resizeKeypoints } from '../src/index.js';
import { bicubicArgmaxReference, heatmapsToKeypointsReference, resizeBicubicReference } from './reference-bicubic.js';
import { gauss, randomBoxes, realisticHeatmaps, rng } from './synthetic.js';

const workspace = new ArgmaxWorkspace();

/** Asserts that the fast argmax equals the reference on map `m` (inH x inW at offset) resized to outH x outW. */
function same(map: Float32Array, offset: number, inH: number, inW: number, outH: number, outW: number, what: string): { x: number; y: number; value: number } {
  const fast = bicubicArgmax(map, offset, cubicAxis(inH, outH), cubicAxis(inW, outW), workspace);
  const ref = bicubicArgmaxReference(map, offset, inH, inW, outH, outW);
  assert.ok(
    fast.x === ref.x && fast.y === ref.y && Object.is(fast.value, ref.value),
    `${what} (${inH}x${inW} -> ${outH}x${outW}): got (${fast.x}, ${fast.y}) = ${fast.value}, reference (${ref.x}, ${ref.y}) = ${ref.value}`,
  );
  return ref;
}

describe('cubicAxis', () => {
  it('samples like PyTorch: identity at equal sizes, weights summing to ~1, cells partitioning the outputs', () => {
    const id = cubicAxis(7, 7);
    for (let o = 0; o < 7; o++) assert.deepEqual(Array.from(id.weights.subarray(4 * o, 4 * o + 4)), [0, 1, 0, 0]);
    for (const [inS, outS] of [[56, 1], [56, 13], [56, 56], [56, 57], [56, 400], [1, 5], [3, 2]] as const) {
      const a = cubicAxis(inS, outS);
      let covered = 0;
      for (let c = 0; c < a.cellCount; c++) {
        assert.equal(a.cellStart[c], covered, 'cells are contiguous');
        covered = a.cellEnd[c]!;
        for (let o = a.cellStart[c]!; o < a.cellEnd[c]!; o++) {
          assert.equal(a.taps[4 * o], a.cellTapLo[c]);
          assert.equal(a.taps[4 * o + 3], a.cellTapHi[c]);
        }
      }
      assert.equal(covered, outS);
      for (let o = 0; o < outS; o++) {
        const sum = a.weights[4 * o]! + a.weights[4 * o + 1]! + a.weights[4 * o + 2]! + a.weights[4 * o + 3]!;
        assert.ok(Math.abs(sum - 1) < 1e-6, `weights of ${o} sum to ${sum}`);
        for (let j = 0; j < 4; j++) assert.ok(a.taps[4 * o + j]! >= 0 && a.taps[4 * o + j]! < inS);
      }
    }
  });

  it('rejects sizes that are not positive integers', () => {
    assert.throws(() => cubicAxis(56, 0), RangeError);
    assert.throws(() => cubicAxis(0, 5), RangeError);
    assert.throws(() => cubicAxis(56, 2.5), RangeError);
  });

  it('the reference resize reproduces a known bicubic value (independent of both implementations)', () => {
    // 1-D check in the row direction: 4x1 map [0, 1, 0, 0] resized to 8 rows; row 2 samples
    // source 0.75 = floor 0, t 0.75: weights (cc2(1.75), cc1(0.75), cc1(0.25), cc2(1.25)) with
    // A = -0.75, so the value is cc1(0.25) = 1.25/64 - 2.25/16 + 1.
    const out = resizeBicubicReference(Float32Array.of(0, 1, 0, 0), 0, 4, 1, 8, 1);
    assert.ok(Math.abs(out[2]! - (1.25 / 64 - 2.25 / 16 + 1)) < 1e-6, `got ${out[2]}`);
  });
});

describe('bicubicArgmax is bit-identical to resize + argmax', () => {
  it('on realistic heatmaps and boxes from 0.2 to 420 px', () => {
    const rand = rng(1);
    const maps = realisticHeatmaps(150, 56, rand);
    for (let m = 0; m < 150; m++) {
      const side = (): number => Math.max(1, Math.ceil(m < 50 ? rand() * 60 : m < 120 ? 40 + rand() * 260 : 300 + rand() * 120));
      same(maps, m * 3136, 56, 56, side(), side(), `realistic map ${m}`);
    }
  });

  it('on white noise (many competing maxima)', () => {
    const rand = rng(2);
    for (let m = 0; m < 80; m++) {
      const map = Float32Array.from({ length: 56 * 56 }, () => gauss(rand));
      same(map, 0, 56, 56, 1 + Math.floor(rand() * 200), 1 + Math.floor(rand() * 200), `noise map ${m}`);
    }
  });

  it('on quantised maps and plateaus, where the first maximum must win', () => {
    const rand = rng(3);
    for (let m = 0; m < 60; m++) {
      const levels = 2 + (m % 3);
      const map = Float32Array.from({ length: 56 * 56 }, () => Math.floor(rand() * levels));
      same(map, 0, 56, 56, 20 + Math.floor(rand() * 150), 20 + Math.floor(rand() * 150), `quantised map ${m}`);
    }
    // Flat maps: every output is the same value, so the answer is pixel (0, 0).
    for (const value of [0, -3, 7.25]) {
      const flat = new Float32Array(56 * 56).fill(value);
      const r = same(flat, 0, 56, 56, 90, 130, `flat ${value}`);
      if (value === 0) assert.deepEqual([r.x, r.y], [0, 0]);
    }
  });

  it('on exact ties: the same peak stamped twice gives equal maxima and the first one wins', () => {
    // With output sizes that are multiples of the input size the weights repeat every `period`
    // outputs, so a blob shifted by a whole number of periods yields exactly the same values.
    let ties = 0;
    for (const [out, shift] of [
      [112, 20],
      [56, 17],
      [168, 9],
      [28, 22],
    ] as const) {
      const map = new Float32Array(56 * 56).fill(-4);
      const blob = [
        [1, 3, 2],
        [4, 9, 5],
        [2, 6, 3],
      ];
      for (const [oy, ox] of [
        [30, 10 + shift],
        [30, 10],
        [10, 10 + 2 * shift],
      ] as const) {
        blob.forEach((row, dy) => row.forEach((v, dx) => (map[(oy + dy) * 56 + ox + dx] = v)));
      }
      const ref = same(map, 0, 56, 56, out, out, `stamped blobs, out ${out}`);
      const resized = resizeBicubicReference(map, 0, 56, 56, out, out);
      const count = resized.filter((v) => v === ref.value).length;
      if (count >= 2) ties++;
    }
    assert.ok(ties >= 3, `only ${ties} of the cases produced an exact tie`);
  });

  it('on small and non-square inputs (1x1 .. 7x5) and outputs of 1 .. 12 px', () => {
    const rand = rng(4);
    for (const [h, w] of [
      [1, 1],
      [1, 4],
      [3, 1],
      [2, 2],
      [5, 7],
      [7, 5],
    ] as const) {
      for (let t = 0; t < 6; t++) {
        const map = Float32Array.from({ length: h * w }, () => Math.round(gauss(rand) * 4) / 2);
        same(map, 0, h, w, 1 + Math.floor(rand() * 12), 1 + Math.floor(rand() * 12), `small map ${t}`);
      }
    }
  });

  it('on maps with NaN or infinities (torch: the first NaN wins)', () => {
    const rand = rng(5);
    const base = (): Float32Array => Float32Array.from({ length: 56 * 56 }, () => gauss(rand));
    const withNaN = base();
    withNaN[40 * 56 + 3] = NaN;
    const r = same(withNaN, 0, 56, 56, 80, 70, 'NaN map');
    assert.ok(Number.isNaN(r.value));
    const withInf = base();
    withInf[10 * 56 + 30] = Infinity;
    same(withInf, 0, 56, 56, 100, 60, '+Inf map');
    const withNegInf = base();
    withNegInf[5] = -Infinity;
    same(withNegInf, 0, 56, 56, 40, 40, '-Inf map');
  });
});

describe('denseBicubicArgmax (the separable full resize the pruned search falls back to)', () => {
  it('is bit-identical to resize + argmax on realistic, noisy and quantised maps, first maximum included', () => {
    const rand = rng(11);
    const maps = realisticHeatmaps(40, 56, rand);
    const check = (map: Float32Array, offset: number, outH: number, outW: number, what: string): void => {
      const dense = denseBicubicArgmax(map, offset, cubicAxis(56, outH), cubicAxis(56, outW), workspace);
      const ref = bicubicArgmaxReference(map, offset, 56, 56, outH, outW);
      assert.ok(dense.x === ref.x && dense.y === ref.y && Object.is(dense.value, ref.value), `${what} -> ${outH}x${outW}: (${dense.x}, ${dense.y}) = ${dense.value}, reference (${ref.x}, ${ref.y}) = ${ref.value}`);
    };
    for (let m = 0; m < 40; m++) check(maps, m * 3136, 1 + Math.floor(rand() * 150), 1 + Math.floor(rand() * 150), `realistic ${m}`);
    for (let m = 0; m < 20; m++) check(Float32Array.from({ length: 3136 }, () => gauss(rand)), 0, 1 + Math.floor(rand() * 120), 1 + Math.floor(rand() * 120), `noise ${m}`);
    for (let m = 0; m < 20; m++) check(Float32Array.from({ length: 3136 }, () => Math.floor(rand() * 3)), 0, 20 + Math.floor(rand() * 100), 20 + Math.floor(rand() * 100), `quantised ${m}`);
  });
});

describe('decodeHeatmaps', () => {
  it('equals the brute-force heatmaps_to_keypoints, tiny and inverted boxes included', () => {
    const rand = rng(6);
    const d = 9;
    const k = 4;
    const heatmaps = realisticHeatmaps(d * k, 56, rand);
    const boxes = randomBoxes(d, 1, 250, rand);
    // A box narrower than a pixel, one of zero size, one with x2 < x1: all clamp to 1 px.
    boxes.set([10.3, 20.1, 10.6, 20.15], 0);
    boxes.set([5, 5, 5, 5], 4);
    boxes.set([30, 40, 28.5, 90], 8);
    const dims = [d, k, 56, 56];
    const fast = decodeHeatmaps(heatmaps, dims, 0, boxes, d, { minBoxSize: 1 });
    const ref = heatmapsToKeypointsReference(heatmaps, dims, 0, boxes, d);
    assert.deepEqual(fast.keypoints, ref.keypoints);
    assert.deepEqual(fast.scores, ref.scores);
    // Tiny boxes decode to their single pixel: x = 0.5 * (1 / 1) + x1.
    assert.equal(fast.keypoints[0], Math.fround(10.3 + 0.5));
    // Decoding a later block of rows reads the right heatmaps.
    const tail = decodeHeatmaps(heatmaps, dims, 6, boxes.subarray(24), 3, { minBoxSize: 1 });
    assert.deepEqual(tail.scores, fast.scores.subarray(6 * k));
  });

  it('refuses heatmaps or boxes shorter than the rows asked for', () => {
    const heatmaps = new Float32Array(2 * 3 * 8 * 8);
    assert.throws(() => decodeHeatmaps(heatmaps, [2, 3, 8, 8], 1, new Float32Array(8), 2, { minBoxSize: 1 }), InputError);
    assert.throws(() => decodeHeatmaps(heatmaps, [2, 3, 8, 8], 0, new Float32Array(4), 2, { minBoxSize: 1 }), InputError);
  });

  it('honours KRCNN.HEATMAP_MIN_BOX_SIZE', () => {
    const rand = rng(7);
    const heatmaps = realisticHeatmaps(2, 56, rand);
    const boxes = Float32Array.of(0, 0, 2, 3);
    const small = decodeHeatmaps(heatmaps, [1, 2, 56, 56], 0, boxes, 1, { minBoxSize: 1 });
    const large = decodeHeatmaps(heatmaps, [1, 2, 56, 56], 0, boxes, 1, { minBoxSize: 40 });
    const ref = heatmapsToKeypointsReference(heatmaps, [1, 2, 56, 56], 0, boxes, 1, 40);
    assert.deepEqual(large.keypoints, ref.keypoints);
    assert.notDeepEqual(small.keypoints, large.keypoints);
  });

  it('is much faster than brute force (17 keypoints x 6 boxes of 150-300 px)', () => {
    const rand = rng(8);
    const d = 6;
    const heatmaps = realisticHeatmaps(d * 17, 56, rand);
    const boxes = randomBoxes(d, 150, 300, rand);
    const dims = [d, 17, 56, 56];
    decodeHeatmaps(heatmaps, dims, 0, boxes, d, { minBoxSize: 1 });
    let t0 = performance.now();
    for (let r = 0; r < 5; r++) decodeHeatmaps(heatmaps, dims, 0, boxes, d, { minBoxSize: 1 });
    const fast = (performance.now() - t0) / 5;
    t0 = performance.now();
    heatmapsToKeypointsReference(heatmaps, dims, 0, boxes, d);
    const brute = performance.now() - t0;
    console.log(`  decode ${fast.toFixed(2)} ms vs brute force ${brute.toFixed(1)} ms`);
    assert.ok(fast * 10 < brute, `decoder ${fast.toFixed(2)} ms is not 10x faster than brute force ${brute.toFixed(1)} ms`);
  });
});

describe('resizeKeypoints', () => {
  it('scales x by f32(orig w)/f32(resized w), y by the heights, keeps visibility', () => {
    const out = resizeKeypoints(Float32Array.of(10, 20, 1, 0.5, 7, 1), [298, 224], [240, 180]);
    assert.deepEqual(Array.from(out), [
      Math.fround(10 * Math.fround(180 / 224)),
      Math.fround(20 * Math.fround(240 / 298)),
      1,
      Math.fround(0.5 * Math.fround(180 / 224)),
      Math.fround(7 * Math.fround(240 / 298)),
      1,
    ]);
  });
});
