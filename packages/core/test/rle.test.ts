/** COCO RLE (core's formats/rle.ts): hand-computed examples, pycocotools' string format, round trips and bad input. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compressRle, decodeRle, decompressRle, encodeRle, rleArea, rleCountsFromString, rleCountsToString } from '../src/index.js';

describe('encodeRle / decodeRle', () => {
  it('counts runs column-major, starting with zeros (hand example)', () => {
    // 3 rows x 2 columns:   0 1
    //                       1 1
    //                       0 0
    // Column-major: 0 1 0 | 1 1 0 -> runs 1 zero, 1 one, 1 zero, 2 ones, 1 zero.
    const mask = Uint8Array.of(0, 1, 1, 1, 0, 0);
    const rle = encodeRle(mask, 3, 2);
    assert.deepEqual(rle, { size: [3, 2], counts: [1, 1, 1, 2, 1] });
    assert.deepEqual(decodeRle(rle), mask);
    assert.equal(rleArea(rle), 3);
  });

  it('a mask starting with foreground has an empty first run', () => {
    assert.deepEqual(encodeRle(Uint8Array.of(1, 0, 0, 1), 2, 2).counts, [0, 1, 2, 1]);
    assert.deepEqual(encodeRle(new Uint8Array(20).fill(1), 4, 5).counts, [0, 20]);
    assert.deepEqual(encodeRle(new Uint8Array(20), 4, 5).counts, [20]);
    assert.deepEqual(encodeRle(new Uint8Array(0), 0, 0).counts, [0]);
  });

  it('rejects a size that does not match the data and counts that do not add up', () => {
    assert.throws(() => encodeRle(new Uint8Array(5), 2, 3), { name: 'InputError', message: /5 pixels, expected 2 x 3/ });
    assert.throws(() => decodeRle({ size: [2, 3], counts: [1, 2] }), { name: 'InputError', message: /sum to 3.*2 x 3 = 6/ });
    assert.throws(() => decodeRle({ size: [2, 3], counts: [7, -1] }), { name: 'InputError', message: /-1/ });
  });
});

describe('compressed counts (pycocotools rleToString / rleFrString)', () => {
  it('hand example: small counts, one character each', () => {
    // 1, 1, 1 as is; from the fourth count on the difference to two before: 2 - 1 = 1, 1 - 1 = 0.
    assert.equal(rleCountsToString([1, 1, 1, 2, 1]), '11110');
    assert.deepEqual(rleCountsFromString('11110'), [1, 1, 1, 2, 1]);
  });

  it('hand example: multi-character and negative values', () => {
    // 100 = 4 + 3*32 -> (4|0x20)+48 'T', 3+48 '3'; 5 -> '5'; 200 = 8 + 6*32 -> 'X', '6';
    // 3 - 5 = -2 -> low bits 30 with the sign bit set, nothing left -> 30+48 'N'.
    assert.equal(rleCountsToString([100, 5, 200, 3]), 'T35X6N');
    assert.deepEqual(rleCountsFromString('T35X6N'), [100, 5, 200, 3]);
    // 16 needs two characters: its low 5 bits look negative (0x10), so a 0 group follows:
    // (16 | 0x20) + 48 = '`', then '0'.
    assert.equal(rleCountsToString([16]), '`0');
    assert.deepEqual(rleCountsFromString('`0'), [16]);
  });

  it('3 x 3 example: the middle column\'s top two pixels', () => {
    const rle = encodeRle([0, 1, 0, 0, 1, 0, 0, 0, 0], 3, 3);
    assert.deepEqual(rle.counts, [3, 2, 4]);
    assert.equal(compressRle(rle).counts, '324');
    assert.deepEqual(encodeRle([1, 1, 1, 1], 2, 2).counts, [0, 4]);
    // Long runs need several 5-bit groups, and differences can be negative.
    const big = [100000, 3, 5, 70000, 2];
    assert.deepEqual(rleCountsFromString(rleCountsToString(big)), big);
  });

  it('round-trips large counts and large negative differences', () => {
    const counts = [0, 5_000_000, 1, 3, 2_000_000_000, 7, 1, 123_456_789, 0, 31, 32, 33];
    assert.deepEqual(rleCountsFromString(rleCountsToString(counts)), counts);
  });

  it('round-trips random masks through encode, compress, decompress and decode', () => {
    let s = 12345;
    const next = (): number => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s / 2 ** 32;
    };
    for (let k = 0; k < 50; k++) {
      const h = 1 + Math.floor(next() * 60);
      const w = 1 + Math.floor(next() * 60);
      const density = next();
      // Blobs and noise: runs of many lengths.
      const mask = Uint8Array.from({ length: h * w }, (_, i) => (next() < density || (i % w) * (i / w) < 40 ? 1 : 0));
      const rle = encodeRle(mask, h, w);
      const coco = compressRle(rle);
      assert.match(coco.counts, /^[0-o]*$/);
      assert.deepEqual(decompressRle(coco), rle);
      assert.deepEqual(decodeRle(coco), mask);
      assert.equal(rleArea(coco), mask.reduce((a, v) => a + v, 0));
    }
  });

  it('rejects malformed strings', () => {
    assert.throws(() => rleCountsFromString('1 2'), { name: 'InputError', message: /invalid character " " at 1/ });
    assert.throws(() => rleCountsFromString('1T'), { name: 'InputError', message: /ends inside a value/ });
  });
});
