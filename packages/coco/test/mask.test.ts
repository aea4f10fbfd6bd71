import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError, compressRle, decodeRle, encodeRle, rleArea, seededRandom } from '@rcnn/core';
import { boxIou, intersectionAndUnion, maskIou, mergeRles, rleFromBox, rleFromPolygon, rleToBox, segmentationToRle } from '../src/index.js';

/** A random row-major mask with a few filled rectangles. */
function randomMask(rand: () => number, h: number, w: number): Uint8Array {
  const m = new Uint8Array(h * w);
  const n = Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) {
    const x0 = Math.floor(rand() * w);
    const y0 = Math.floor(rand() * h);
    const x1 = Math.min(w, x0 + 1 + Math.floor(rand() * w));
    const y1 = Math.min(h, y0 + 1 + Math.floor(rand() * h));
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * w + x] = 1;
  }
  return m;
}

test('a box [0, 0, 10, 10] rasterises to the 10 x 10 pixels 0..9 (pycocotools frBbox)', () => {
  const rle = rleFromBox([0, 0, 10, 10], 20, 30);
  assert.deepEqual(rle.size, [20, 30]);
  assert.equal(rleArea(rle), 100);
  assert.deepEqual(rleToBox(rle), [0, 0, 10, 10]);
  const pixels = decodeRle(rle);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 30; x++) assert.equal(pixels[y * 30 + x], x < 10 && y < 10 ? 1 : 0, `pixel ${x},${y}`);
});

test('polygon orientation and starting point do not change the pixels; a box polygon equals the box', () => {
  const a = rleFromPolygon([2, 3, 2, 11, 9, 11, 9, 3], 16, 16);
  const b = rleFromPolygon([9, 11, 9, 3, 2, 3, 2, 11], 16, 16);
  const c = rleFromPolygon([2, 3, 9, 3, 9, 11, 2, 11], 16, 16);
  assert.deepEqual(a.counts, b.counts);
  assert.deepEqual(a.counts, c.counts);
  assert.deepEqual(a.counts, rleFromBox([2, 3, 7, 8], 16, 16).counts);
  assert.equal(rleArea(a), 7 * 8);
});

test('a triangle covers about its shoelace area, inside its box', () => {
  const xy = [10.3, 5.2, 60.7, 20.9, 25.1, 47.6];
  const rle = rleFromPolygon(xy, 64, 80);
  const shoelace = Math.abs((xy[0]! * (xy[3]! - xy[5]!) + xy[2]! * (xy[5]! - xy[1]!) + xy[4]! * (xy[1]! - xy[3]!)) / 2);
  assert.ok(Math.abs(rleArea(rle) - shoelace) / shoelace < 0.05, `${rleArea(rle)} vs ${shoelace}`);
  const [x, y, w, h] = rleToBox(rle);
  assert.ok(x >= 10 && y >= 5 && x + w <= 62 && y + h <= 49, `box ${[x, y, w, h]}`);
});

test('polygons outside the image are clipped; an all-outside polygon is empty', () => {
  const clipped = rleFromPolygon([-5, -5, -5, 5, 5, 5, 5, -5], 10, 10);
  assert.equal(rleArea(clipped), 25);
  assert.deepEqual(rleToBox(clipped), [0, 0, 5, 5]);
  const outside = rleFromPolygon([20, 20, 20, 30, 30, 30, 30, 20], 10, 10);
  assert.equal(rleArea(outside), 0);
  assert.deepEqual(outside.counts, [100]);
  assert.deepEqual(rleToBox(outside), [0, 0, 0, 0]);
});

test('degenerate polygons (repeated points, a line) do not crash and have no area', () => {
  assert.equal(rleArea(rleFromPolygon([3, 3, 3, 3, 3, 3], 8, 8)), 0);
  assert.equal(rleArea(rleFromPolygon([1, 1, 6, 1, 1, 1], 8, 8)), 0);
});

test('merge (union, intersection), IoU and boxes of RLEs equal the pixel computation on random masks', () => {
  const rand = seededRandom(7);
  for (let trial = 0; trial < 60; trial++) {
    const h = 1 + Math.floor(rand() * 13);
    const w = 1 + Math.floor(rand() * 13);
    const a = randomMask(rand, h, w);
    const b = randomMask(rand, h, w);
    const ra = encodeRle(a, h, w);
    const rb = encodeRle(b, h, w);
    const or = a.map((v, i) => v | b[i]!);
    const and = a.map((v, i) => v & b[i]!);
    assert.deepEqual(decodeRle(mergeRles([ra, rb])), or);
    assert.deepEqual(decodeRle(mergeRles([ra, rb], true)), and);
    // Canonical runs: merging equals encoding the merged pixels.
    assert.deepEqual(mergeRles([ra, rb]).counts, encodeRle(or, h, w).counts);
    const inter = and.reduce((s, v) => s + v, 0);
    const union = or.reduce((s, v) => s + v, 0);
    assert.deepEqual(intersectionAndUnion(ra.counts, rb.counts), [inter, union]);
    const iou = maskIou([ra], [rb], [false])[0]![0];
    assert.equal(iou, inter === 0 ? 0 : inter / union);
    const crowdIou = maskIou([ra], [rb], [true])[0]![0];
    assert.equal(crowdIou, inter === 0 ? 0 : inter / a.reduce((s, v) => s + v, 0));
    // Bounding box of the pixels.
    let x0 = w;
    let y0 = h;
    let x1 = -1;
    let y1 = -1;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        if (!a[y * w + x]) continue;
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
    }
    assert.deepEqual(rleToBox(ra), x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 - x0 + 1, y1 - y0 + 1]);
  }
});

test('mask IoU of masks of different sizes is -1 (never a match), as pycocotools', () => {
  const a = rleFromBox([0, 0, 4, 4], 8, 8);
  const b = rleFromBox([0, 0, 4, 4], 8, 9);
  assert.deepEqual(maskIou([a], [b], [false]), [[-1]]);
  assert.throws(() => mergeRles([a, b]), InputError);
});

test('box IoU: plain, crowd (union = the detection) and touching boxes (0)', () => {
  const iou = boxIou(
    [
      [0, 0, 10, 10],
      [10, 0, 5, 5],
    ],
    [
      [5, 0, 10, 10],
      [0, 0, 20, 20],
    ],
    [false, true],
  );
  assert.equal(iou[0]![0], 50 / 150);
  assert.equal(iou[0]![1], 1);
  assert.equal(iou[1]![0], 25 / 100);
  assert.equal(iou[1]![1], 1);
  assert.deepEqual(boxIou([[0, 0, 5, 5]], [[5, 0, 5, 5]], [false]), [[0]]);
});

test('segmentations: polygons are united, RLEs keep their size, compressed counts are expanded', () => {
  const two = segmentationToRle(
    [
      [0, 0, 0, 4, 4, 4, 4, 0],
      [2, 2, 2, 6, 6, 6, 6, 2],
    ],
    10,
    10,
  );
  assert.equal(rleArea(two), 16 + 16 - 4);
  const mask = randomMask(seededRandom(3), 6, 5);
  const un = encodeRle(mask, 6, 5);
  assert.deepEqual(segmentationToRle({ size: [6, 5], counts: [...un.counts] }, 100, 100), un);
  assert.deepEqual(segmentationToRle(compressRle(un), 100, 100).counts, un.counts);
  assert.equal(rleArea(segmentationToRle([], 4, 4)), 0);
  // pycocotools reads a first polygon of 4 numbers as a box [x, y, w, h].
  assert.equal(rleArea(segmentationToRle([[1, 1, 3, 2]], 8, 8)), 6);
  assert.throws(() => segmentationToRle([[1, 2]], 8, 8), /at least 3 points/);
  assert.throws(() => segmentationToRle([['a', 2, 3, 4, 5, 6]], 8, 8), InputError);
  assert.throws(() => segmentationToRle({ size: [2, 2], counts: 7 }, 8, 8), InputError);
  assert.throws(() => segmentationToRle('nope', 8, 8), InputError);
  assert.throws(() => segmentationToRle({ size: [2, 2], counts: [1, 2] }, 8, 8), /sum to 3, but the mask is 2 x 2/);
  assert.throws(() => segmentationToRle({ size: [2, 2], counts: [1, -1, 4] }, 8, 8), /not a non-negative integer/);
});
