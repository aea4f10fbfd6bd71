/** Deterministic synthetic heatmaps and boxes for the decoder's tests and benchmark. */
import { seededRandom } from '@rcnn/core';

/** Core's seeded PRNG (mulberry32). */
export const rng = seededRandom;

/** A standard normal draw. */
export function gauss(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
}

/**
 * Heatmaps that look like a keypoint head's logits: a few Gaussian blobs (one dominant) of height
 * 5..12 over a noisy background around -5, [count, size, size] flattened.
 */
export function realisticHeatmaps(count: number, size: number, rand: () => number): Float32Array {
  const out = new Float32Array(count * size * size);
  for (let m = 0; m < count; m++) {
    const blobs = 1 + Math.floor(rand() * 3);
    const centres = Array.from({ length: blobs }, (_, b) => ({
      y: rand() * size,
      x: rand() * size,
      s: 1 + rand() * 3,
      h: b === 0 ? 8 + rand() * 4 : 3 + rand() * 5,
    }));
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let v = -5 + 0.5 * gauss(rand);
        for (const c of centres) v += c.h * Math.exp(-((y - c.y) ** 2 + (x - c.x) ** 2) / (2 * c.s * c.s));
        out[m * size * size + y * size + x] = v;
      }
    }
  }
  return out;
}

/** `n` boxes (x1, y1, x2, y2) with sides uniform in [minSide, maxSide]. */
export function randomBoxes(n: number, minSide: number, maxSide: number, rand: () => number): Float32Array {
  const boxes = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const w = minSide + rand() * (maxSide - minSide);
    const h = minSide + rand() * (maxSide - minSide);
    const x = rand() * 500;
    const y = rand() * 500;
    boxes.set([x, y, x + w, y + h], 4 * i);
  }
  return boxes;
}
