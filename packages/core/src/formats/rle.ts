/**
 * COCO run-length encoding of binary masks, as pycocotools stores them (`segmentation` of a COCO
 * result): runs are counted in column-major (Fortran) order over an H x W image, alternate
 * background/foreground and always start with a (possibly empty) run of zeros. The compressed
 * `counts` string is pycocotools' `rleToString` format: each count (from the fourth on, minus the
 * count two places before it) is written as a signed little-endian base-32 number, 5 bits per
 * character in ASCII 48..111, bit 0x20 = "more characters follow".
 *
 * Masks in rcnn-node are row-major H x W byte arrays (like every tensor here); only the runs are
 * column-major. It lives in core because it is a result format: mask post-processors produce it
 * (`MaskSet.rle`) and the runtime writes and reads it, without depending on each other.
 */
import { InputError } from '../errors.js';

/** An RLE with uncompressed counts (pycocotools `{'size': [h, w], 'counts': [..]}`). */
export interface UncompressedRle {
  /** [height, width] of the image. */
  readonly size: readonly [number, number];
  /** Run lengths in column-major order, starting with zeros; they sum to height * width. */
  readonly counts: readonly number[];
}

/** An RLE with pycocotools' compressed `counts` string, the form COCO result JSON uses. */
export interface CocoRle {
  /** [height, width] of the image. */
  readonly size: readonly [number, number];
  /** pycocotools `rleToString` counts. */
  readonly counts: string;
}

function checkSize(h: number, w: number, what: string): void {
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0) {
    throw new InputError(`${what}: mask size ${h} x ${w} is not a pair of non-negative integers`);
  }
}

/**
 * Collects run lengths while pixels are visited in column-major order. Lets callers that know
 * where a mask is empty (e.g. outside a detection's box) push long zero runs without visiting
 * those pixels.
 */
export class RleBuilder {
  private readonly runs: number[] = [];
  private current = 0;
  private length = 0;

  /** Appends `n` pixels of `value` (0 or 1). */
  push(value: 0 | 1, n = 1): void {
    if (n <= 0) return;
    if (value !== this.current) {
      this.runs.push(this.length);
      this.current = value;
      this.length = 0;
    }
    this.length += n;
  }

  /** The counts, starting with zeros and ending with the last (possibly empty-image zero) run. */
  finish(): number[] {
    return [...this.runs, this.length];
  }
}

/**
 * Encodes a binary mask (row-major H x W, non-zero = foreground) as COCO RLE with uncompressed,
 * column-major counts (pycocotools `encode` before compression).
 */
export function encodeRle(binary: ArrayLike<number>, h: number, w: number): UncompressedRle {
  checkSize(h, w, 'encodeRle');
  if (binary.length !== h * w) throw new InputError(`encodeRle: mask has ${binary.length} pixels, expected ${h} x ${w} = ${h * w}`);
  const rle = new RleBuilder();
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) rle.push(binary[y * w + x] !== 0 ? 1 : 0);
  }
  return { size: [h, w], counts: rle.finish() };
}

/** Decodes an RLE (compressed or not) to a row-major H x W mask of 0/1 bytes. */
export function decodeRle(rle: UncompressedRle | CocoRle): Uint8Array {
  const [h, w] = rle.size;
  checkSize(h, w, 'decodeRle');
  const counts = typeof rle.counts === 'string' ? rleCountsFromString(rle.counts) : rle.counts;
  let total = 0;
  for (const c of counts) {
    if (!Number.isInteger(c) || c < 0) throw new InputError(`decodeRle: run length ${c} is not a non-negative integer`);
    total += c;
  }
  if (total !== h * w) throw new InputError(`decodeRle: run lengths sum to ${total}, but the mask is ${h} x ${w} = ${h * w} pixels`);
  const out = new Uint8Array(h * w);
  let p = 0; // column-major position
  counts.forEach((c, i) => {
    if (i % 2 === 1) {
      // Walk the run down columns: (x, y) from the column-major position.
      let x = Math.floor(p / h);
      let y = p - x * h;
      for (let k = 0; k < c; k++) {
        out[y * w + x] = 1;
        if (++y === h) {
          y = 0;
          x++;
        }
      }
    }
    p += c;
  });
  return out;
}

/** Number of foreground pixels of an RLE (pycocotools `area`). */
export function rleArea(rle: UncompressedRle | CocoRle): number {
  const counts = typeof rle.counts === 'string' ? rleCountsFromString(rle.counts) : rle.counts;
  let area = 0;
  for (let i = 1; i < counts.length; i += 2) area += counts[i]!;
  return area;
}

// One character carries 5 bits of the value plus a continuation flag.
const BITS = 5;
const RADIX = 1 << BITS; // 32
const LOW_MASK = RADIX - 1; // 0x1f
const SIGN_BIT = 0x10;
const MORE_BIT = 0x20;
const ZERO_CHAR = 48;

/**
 * pycocotools `rleToString`: compresses run lengths to the `counts` string of a COCO RLE.
 * Values are handled as exact integers (no 32-bit overflow) and written with an arithmetic
 * (floor) shift, as the C code does on a signed long.
 */
export function rleCountsToString(counts: readonly number[]): string {
  const chars: number[] = [];
  for (let i = 0; i < counts.length; i++) {
    // pycocotools delta-codes only from the fourth count on (its `i > 2`); kept for compatibility.
    let x = i > 2 ? counts[i]! - counts[i - 2]! : counts[i]!;
    if (!Number.isSafeInteger(x)) throw new InputError(`rleCountsToString: count ${counts[i]} at ${i} is not an integer`);
    for (;;) {
      const c = ((x % RADIX) + RADIX) % RADIX; // low 5 bits of the two's-complement value
      x = Math.floor(x / RADIX);
      const more = c & SIGN_BIT ? x !== -1 : x !== 0;
      chars.push((more ? c | MORE_BIT : c) + ZERO_CHAR);
      if (!more) break;
    }
  }
  // In slices: spreading a long array into one call would overflow the stack.
  let out = '';
  for (let k = 0; k < chars.length; k += 8192) out += String.fromCharCode(...chars.slice(k, k + 8192));
  return out;
}

/** pycocotools `rleFrString`: the run lengths of a compressed `counts` string. */
export function rleCountsFromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let scale = 1;
    for (;;) {
      if (p >= s.length) throw new InputError(`RLE counts string ends inside a value (at character ${p})`);
      const c = s.charCodeAt(p) - ZERO_CHAR;
      if (c < 0 || c > (MORE_BIT | LOW_MASK)) {
        throw new InputError(`RLE counts string has an invalid character ${JSON.stringify(s[p])} at ${p} (allowed: ASCII 48..111)`);
      }
      x += (c & LOW_MASK) * scale;
      scale *= RADIX;
      p++;
      if (!(c & MORE_BIT)) {
        if (c & SIGN_BIT) x -= scale; // sign-extend the last 5-bit group
        break;
      }
    }
    if (counts.length > 2) x += counts[counts.length - 2]!;
    counts.push(x);
  }
  return counts;
}

/** Compresses an uncompressed RLE to the COCO result form. */
export function compressRle(rle: UncompressedRle): CocoRle {
  return { size: [rle.size[0], rle.size[1]], counts: rleCountsToString(rle.counts) };
}

/** Expands a COCO RLE's counts string to run lengths. */
export function decompressRle(rle: CocoRle): UncompressedRle {
  return { size: [rle.size[0], rle.size[1]], counts: rleCountsFromString(rle.counts) };
}
