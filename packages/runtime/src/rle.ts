/**
 * COCO run-length encoding of binary masks (the `segmentation` of COCO results): runs counted in
 * column-major order starting with a run of zeros, written in COCO's compact string form.
 */

/** An uncompressed COCO RLE. */
export interface Rle {
  /** [height, width]. */
  readonly size: readonly [number, number];
  /** Run lengths, column-major, alternating 0-runs and 1-runs, starting with 0s. */
  readonly counts: readonly number[];
}

/** Run lengths of a row-major [h, w] binary mask (any non-zero is 1), read column by column. */
export function encodeRle(mask: ArrayLike<number>, height: number, width: number, offset = 0): Rle {
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[offset + y * width + x] ? 1 : 0;
      if (v !== current) {
        counts.push(run);
        run = 0;
        current = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [height, width], counts };
}

/** The row-major [h, w] 0/1 mask of an RLE. */
export function decodeRle(rle: Rle): Uint8Array {
  const [h, w] = rle.size;
  const out = new Uint8Array(h * w);
  let pos = 0;
  rle.counts.forEach((c, i) => {
    if (i % 2 === 1) {
      for (let p = pos; p < pos + c; p++) out[(p % h) * w + Math.floor(p / h)] = 1;
    }
    pos += c;
  });
  return out;
}

/**
 * COCO's compact string form of the counts: each count (after the second, minus the count two
 * places back) as little-endian 5-bit groups with a continuation bit, offset by 48 into ASCII.
 */
export function rleToString(counts: readonly number[]): string {
  let s = '';
  for (let i = 0; i < counts.length; i++) {
    let x = i > 2 ? counts[i] - counts[i - 2] : counts[i];
    for (;;) {
      let c = x & 0x1f;
      x >>= 5;
      const more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
      if (!more) break;
    }
  }
  return s;
}

/** Parses COCO's compact string form back to counts. */
export function rleFromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    for (;;) {
      const c = s.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      const more = c & 0x20;
      p++;
      k++;
      if (!more) {
        if (c & 0x10) x |= -1 << (5 * k);
        break;
      }
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}
