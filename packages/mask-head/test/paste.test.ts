/**
 * Mask pasting edge cases: truncation of the expanded box, boxes at and past the image border,
 * boxes smaller than a pixel, degenerate boxes, and the InstanceMasks views.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compressRle, encodeRle } from '@rcnn/core';
import { InstanceMasks, expandBox, pasteGeometry } from '../src/index.js';

const f32 = Math.fround;
const M = 28;
const PAD = 1;
const H = 200;
const W = 260;
const OPTIONS = { resolution: M, padding: PAD, threshold: 0.5, imageHeight: H, imageWidth: W };

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomProbs(d: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: d * M * M }, () => r());
}

/**
 * torchvision's paste written out literally, as an independent check: pad, expand the box,
 * resize the whole padded mask to (h, w) with PyTorch's bilinear arithmetic, then
 * `im[y0:y1, x0:x1] = mask[y0 - by1 : y1 - by1, x0 - bx1 : x1 - bx1]`.
 */
function literalPaste(probs: Float32Array, offset: number, box: readonly number[]): Float32Array {
  const side = M + 2 * PAD;
  const padded = new Float32Array(side * side);
  for (let r = 0; r < M; r++) for (let c = 0; c < M; c++) padded[(r + PAD) * side + c + PAD] = probs[offset + r * M + c]!;
  const scale = f32(side / M);
  const half = (a: number, b: number): number => f32(f32(f32(f32(b) - f32(a)) * 0.5) * scale);
  const centre = (a: number, b: number): number => f32(f32(f32(a) + f32(b)) * 0.5);
  const bx1 = Math.trunc(f32(centre(box[0]!, box[2]!) - half(box[0]!, box[2]!)));
  const bx2 = Math.trunc(f32(centre(box[0]!, box[2]!) + half(box[0]!, box[2]!)));
  const by1 = Math.trunc(f32(centre(box[1]!, box[3]!) - half(box[1]!, box[3]!)));
  const by2 = Math.trunc(f32(centre(box[1]!, box[3]!) + half(box[1]!, box[3]!)));
  const w = Math.max(bx2 - bx1 + 1, 1);
  const h = Math.max(by2 - by1 + 1, 1);
  const coord = (o: number, out: number): [number, number, number, number] => {
    if (out === side) return [o, o, 1, 0];
    const s = f32(side / out);
    const src = Math.max(f32(f32(s * f32(o + 0.5)) - 0.5), 0);
    const i0 = Math.floor(src);
    const l1 = f32(src - i0);
    return [i0, i0 < side - 1 ? i0 + 1 : i0, f32(1 - l1), l1];
  };
  const resized = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const [r0, r1, h0, h1] = coord(y, h);
    for (let x = 0; x < w; x++) {
      const [c0, c1, w0, w1] = coord(x, w);
      const a = f32(f32(h0 * w0) * padded[r0 * side + c0]!);
      const b = f32(f32(h0 * w1) * padded[r0 * side + c1]!);
      const c = f32(f32(h1 * w0) * padded[r1 * side + c0]!);
      const d = f32(f32(h1 * w1) * padded[r1 * side + c1]!);
      resized[y * w + x] = f32(f32(f32(a + b) + c) + d);
    }
  }
  const im = new Float32Array(H * W);
  const x0 = Math.max(bx1, 0);
  const x1 = Math.min(bx2 + 1, W);
  const y0 = Math.max(by1, 0);
  const y1 = Math.min(by2 + 1, H);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) im[y * W + x] = resized[(y - by1) * w + (x - bx1)]!;
  return im;
}

describe('expandBox', () => {
  it('truncates toward zero, not floor (torchvision casts to int64)', () => {
    // x: half-width 5.25 * 30/28 = 5.625 about 4.75 -> [-0.875, 10.375] -> [0, 10]; floor would give -1.
    // y: half-height 5 * 30/28 = 5.357 about 5 -> [-0.357, 10.357] -> [0, 10].
    assert.deepEqual(expandBox(Float32Array.of(-0.5, 0, 10, 10), 0, M, PAD), [0, 0, 10, 10]);
    // x: 11.25 about -9.5 -> [-20.75, 1.75] -> [-20, 1]; y: 12.32 about -9.5 -> [-21.82, 2.82] -> [-21, 2].
    assert.deepEqual(expandBox(Float32Array.of(-20, -21, 1, 2), 0, M, PAD), [-20, -21, 1, 2]);
  });

  it('expands about the centre by (M + 2p) / M', () => {
    // half 13.75 * 30/28 = 14.732 about 23.75 -> [9.018, 38.482] -> [9, 38]: a 30 px mask, no resize.
    assert.deepEqual(expandBox(Float32Array.of(10, 10, 37.5, 37.5), 0, M, PAD), [9, 9, 38, 38]);
  });
});

describe('pasteMask', () => {
  it('copies the padded mask when the expanded box is exactly M + 2p pixels', () => {
    const probs = randomProbs(1, 1);
    const masks = InstanceMasks.paste(probs, Float32Array.of(10, 10, 37.5, 37.5), OPTIONS);
    const m = masks.masks[0]!;
    assert.deepEqual([m.x, m.y, m.width, m.height, m.maskWidth, m.maskHeight], [9, 9, 30, 30, 30, 30]);
    for (let r = 0; r < 30; r++) {
      for (let c = 0; c < 30; c++) {
        const inside = r >= 1 && r <= M && c >= 1 && c <= M;
        assert.equal(m.probs[r * 30 + c], inside ? probs[(r - 1) * M + c - 1] : 0, `(${r}, ${c})`);
      }
    }
  });

  it('a box smaller than a pixel becomes one pixel averaging the four centre values', () => {
    const probs = new Float32Array(M * M);
    // The 1x1 output samples the padded 30x30 mask at 14.5: padded rows/cols 14, 15 = mask 13, 14.
    probs[13 * M + 13] = 1;
    probs[13 * M + 14] = 0.5;
    probs[14 * M + 13] = 0.25;
    probs[14 * M + 14] = 0;
    const masks = InstanceMasks.paste(probs, Float32Array.of(5.2, 5.2, 5.4, 5.4), OPTIONS);
    const m = masks.masks[0]!;
    assert.deepEqual([...m.box], [5, 5, 5, 5]);
    assert.deepEqual([m.x, m.y, m.width, m.height], [5, 5, 1, 1]);
    assert.equal(m.probs[0], 0.4375); // (1 + 0.5 + 0.25 + 0) / 4
    const full = masks.probability(0);
    assert.equal(full[5 * W + 5], 0.4375);
    assert.equal(full.reduce((s, v) => s + v, 0), 0.4375);
    assert.equal(masks.area(0), 0);
  });

  it('matches the literal torchvision paste for boxes inside, on and past the border', () => {
    const boxes = [
      [30.4, 40.7, 120.2, 160.9], // inside
      [0, 0, 260, 200], // the whole image
      [-35.5, -12.25, 60.75, 45.5], // past the top-left corner
      [200.3, 150.6, 300.8, 260.1], // past the bottom-right corner
      [250.2, 10, 259.9, 199.9], // touching the right and bottom edges
      [-3, 90, 7, 92.5], // thin, crossing the left edge
      [100, 100, 100.4, 180], // less than a pixel wide
      [0, 0, 0, 0], // a point at the origin
      [259.8, 199.8, 260, 200], // a point at the far corner
    ];
    const r = rng(7);
    for (let k = 0; k < 40; k++) {
      // Random boxes of 1..300 px anywhere around the image.
      const x = r() * 320 - 30;
      const y = r() * 260 - 30;
      boxes.push([x, y, x + 1 + r() * 300, y + 1 + r() * 300]);
    }
    const probs = randomProbs(boxes.length, 3);
    const masks = InstanceMasks.paste(probs, Float32Array.from(boxes.flat()), OPTIONS);
    boxes.forEach((box, i) => {
      const expected = literalPaste(probs, i * M * M, box);
      assert.deepEqual(masks.probability(i), expected, `box ${i} [${box.join(', ')}]`);
      const binary = masks.binary(i);
      assert.deepEqual(binary, Uint8Array.from(expected, (v) => (v > 0.5 ? 1 : 0)), `binary ${i}`);
      assert.equal(masks.area(i), binary.reduce((s, v) => s + v, 0));
      // RLE from the crop equals RLE of the full-image mask.
      assert.deepEqual(masks.uncompressedRle(i), encodeRle(binary, H, W));
      assert.deepEqual(masks.rle(i), compressRle(encodeRle(binary, H, W)));
    });
  });

  it('a box entirely outside the image or with x2 < x1 pastes nothing', () => {
    const probs = new Float32Array(3 * M * M).fill(1);
    const masks = InstanceMasks.paste(probs, Float32Array.of(300, 10, 350, 50, 10, -80, 50, -30, 10, 10, 5, 20), OPTIONS);
    for (let i = 0; i < 3; i++) {
      assert.equal(masks.masks[i]!.width * masks.masks[i]!.height, 0, `box ${i}`);
      assert.equal(masks.area(i), 0);
      assert.deepEqual(masks.uncompressedRle(i).counts, [H * W]);
      assert.equal(masks.binary(i).reduce((s, v) => s + v, 0), 0);
    }
  });

  it('pasteGeometry clips the stored region to the image', () => {
    const g = pasteGeometry(Float32Array.of(-35.5, -12.25, 300.75, 245.5), 0, OPTIONS);
    assert.deepEqual([g.x, g.y, g.width, g.height], [0, 0, W, H]);
    assert.ok(g.box[0] < 0 && g.box[1] < 0 && g.box[2] >= W && g.box[3] >= H);
    assert.equal(g.maskWidth, g.box[2] - g.box[0] + 1);
  });

  it('tensor views have the fixtures layout', () => {
    const probs = randomProbs(2, 5);
    const masks = InstanceMasks.paste(probs, Float32Array.of(10, 20, 80, 90, 100, 50, 150, 190), OPTIONS);
    const binary = masks.binaryTensor();
    assert.deepEqual(binary.dims, [2, 1, H, W]);
    assert.deepEqual(binary.data.subarray(H * W), masks.binary(1));
    const full = masks.probabilityTensor();
    assert.deepEqual(full.dims, [2, 1, H, W]);
    assert.deepEqual(full.data.subarray(0, H * W), masks.probability(0));
    assert.deepEqual(masks.maskProbsTensor().dims, [2, 1, M, M]);
    assert.deepEqual(masks.binaryTensor(0.9).data.subarray(0, H * W), masks.binary(0, 0.9));
    assert.throws(() => masks.binary(2), RangeError);
  });
});
