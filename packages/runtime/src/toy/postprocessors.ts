/** Host post-processors of the toy heads: nearest-neighbour mask pasting and argmax keypoints. */
import { DETECTION_OUTPUTS, type HostPostprocessor, type HostTensor, type ImageDetections, type RawOutputs, type RcnnConfig, hostTensor } from '@rcnn/core';
import { EXTRAS } from '../extras.js';

function output(outputs: RawOutputs, name: string): HostTensor<'float32'> {
  const t = outputs.get(name);
  if (!t || t.dtype !== 'float32') throw new Error(`toy post-processor: no float32 output ${name}`);
  return t as HostTensor<'float32'>;
}

/** `Toy.paste_masks`: each [M,M] probability map stretched over its box (nearest), binarised with MRCNN.THRESH_BINARIZE. */
export const toyPasteMasks: HostPostprocessor = {
  apply(outputs: RawOutputs, images: readonly ImageDetections[], rows: readonly (readonly [number, number])[], config: RcnnConfig) {
    const probs = output(outputs, DETECTION_OUTPUTS.maskProbs);
    const m = probs.dims[3];
    images.forEach((det, i) => {
      const [start, end] = rows[i];
      const [h, w] = det.originalSize;
      const masks = new Uint8Array((end - start) * h * w);
      for (let d = 0; d < end - start; d++) {
        const [x1, y1, x2, y2] = det.boxes.subarray(4 * d, 4 * d + 4);
        const bw = Math.max(x2 - x1, 1e-3);
        const bh = Math.max(y2 - y1, 1e-3);
        const src = (start + d) * m * m;
        for (let y = Math.max(0, Math.floor(y1)); y < Math.min(h, Math.ceil(y2)); y++) {
          const v = Math.min(m - 1, Math.max(0, Math.floor(((y + 0.5 - y1) / bh) * m)));
          for (let x = Math.max(0, Math.floor(x1)); x < Math.min(w, Math.ceil(x2)); x++) {
            const u = Math.min(m - 1, Math.max(0, Math.floor(((x + 0.5 - x1) / bw) * m)));
            masks[d * h * w + y * w + x] = probs.data[src + v * m + u] > config.MRCNN.THRESH_BINARIZE ? 1 : 0;
          }
        }
      }
      det.extras.set(EXTRAS.masks, hostTensor('uint8', [end - start, 1, h, w], masks));
    });
  },
};

/** `Toy.heatmaps_to_keypoints`: argmax of each heatmap, mapped into the box (original and resized pixels). */
export const toyHeatmapsToKeypoints: HostPostprocessor = {
  apply(outputs: RawOutputs, images: readonly ImageDetections[], rows: readonly (readonly [number, number])[]) {
    const heat = output(outputs, DETECTION_OUTPUTS.keypointHeatmaps);
    const [, k, s] = heat.dims;
    images.forEach((det, i) => {
      const [start, end] = rows[i];
      const n = end - start;
      const kp = new Float32Array(n * k * 3);
      const kpResized = new Float32Array(n * k * 3);
      const scores = new Float32Array(n * k);
      for (let d = 0; d < n; d++) {
        for (let j = 0; j < k; j++) {
          const base = ((start + d) * k + j) * s * s;
          let best = 0;
          for (let p = 1; p < s * s; p++) if (heat.data[base + p] > heat.data[base + best]) best = p;
          const fx = ((best % s) + 0.5) / s;
          const fy = (Math.floor(best / s) + 0.5) / s;
          const o = (d * k + j) * 3;
          for (const [boxes, target] of [[det.boxes, kp], [det.boxesResized, kpResized]] as const) {
            target[o] = boxes[4 * d] + fx * (boxes[4 * d + 2] - boxes[4 * d]);
            target[o + 1] = boxes[4 * d + 1] + fy * (boxes[4 * d + 3] - boxes[4 * d + 1]);
            target[o + 2] = 1;
          }
          scores[d * k + j] = heat.data[base + best];
        }
      }
      det.extras.set(EXTRAS.keypoints, hostTensor('float32', [n, k, 3], kp));
      det.extras.set(EXTRAS.keypointsResized, hostTensor('float32', [n, k, 3], kpResized));
      det.extras.set(EXTRAS.keypointScores, hostTensor('float32', [n, k], scores));
    });
  },
};
