/**
 * Times the keypoint decoder (bicubic resize + argmax of every keypoint heatmap) against the
 * brute-force resize-then-argmax on 100 detections x 17 keypoints with realistic heatmaps and
 * boxes of 50-400 px. Run: `node build/bench/decode-bench.js` (after `tsc -b`).
 */
import { decodeHeatmaps } from '../src/index.js';
import { heatmapsToKeypointsReference } from '../test/reference-bicubic.js';
import { randomBoxes, realisticHeatmaps, rng } from '../test/synthetic.js';

const D = 100;
const K = 17;
const S = 56;
const rand = rng(42);
const heatmaps = realisticHeatmaps(D * K, S, rand);
const boxes = randomBoxes(D, 50, 400, rand);
const dims = [D, K, S, S];

const time = (fn: () => void, repeats: number): number => {
  const t: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
};

decodeHeatmaps(heatmaps, dims, 0, boxes, D, { minBoxSize: 1 }); // warm-up
const fast = time(() => decodeHeatmaps(heatmaps, dims, 0, boxes, D, { minBoxSize: 1 }), 7);
const brute = time(() => heatmapsToKeypointsReference(heatmaps, dims, 0, boxes, D), 1);
const a = decodeHeatmaps(heatmaps, dims, 0, boxes, D, { minBoxSize: 1 });
const b = heatmapsToKeypointsReference(heatmaps, dims, 0, boxes, D);
const same = a.keypoints.every((v, i) => Object.is(v, b.keypoints[i])) && a.scores.every((v, i) => Object.is(v, b.scores[i]));
console.log(`${D} detections x ${K} keypoints, boxes 50-400 px: decoder ${fast.toFixed(1)} ms (median of 7), brute force ${brute.toFixed(0)} ms; identical: ${same}`);
