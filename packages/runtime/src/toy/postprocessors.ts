/**
 * Host post-processors of the toy heads: nearest-neighbour mask pasting and argmax keypoints. They
 * store the same typed results as the real heads (core's `MaskSet` and `KeypointSet` under
 * `EXTRA_KEYS`), so everything downstream of a post-processor is exercised by the toy model too.
 */
import {
  type CocoRle,
  DETECTION_OUTPUTS,
  EXTRA_KEYS,
  type HostPostprocessor,
  type HostTensor,
  type ImageDetections,
  type MaskCrop,
  type MaskSet,
  type RawOutputs,
  type RcnnConfig,
  compressRle,
  encodeRle,
  hostTensor,
  keypointSet,
  setExtra,
} from '@rcnn/core';

function output(outputs: RawOutputs, name: string): HostTensor<'float32'> {
  const t = outputs.get(name);
  if (!t || t.dtype !== 'float32') throw new Error(`toy post-processor: no float32 output ${name}`);
  return t as HostTensor<'float32'>;
}

/** The toy's masks: per detection, its M x M probabilities stretched (nearest) over its box's pixels inside the image. */
class ToyMasks implements MaskSet {
  readonly count: number;

  constructor(
    readonly height: number,
    readonly width: number,
    readonly threshold: number,
    private readonly resolution: number,
    private readonly probs: Float32Array,
    private readonly crops: readonly MaskCrop[],
  ) {
    this.count = crops.length;
  }

  maskProbsTensor(): HostTensor<'float32'> {
    return hostTensor('float32', [this.count, 1, this.resolution, this.resolution], this.probs);
  }

  crop(i: number): MaskCrop {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`detection ${i} out of range [0, ${this.count})`);
    return this.crops[i]!;
  }

  private writeBinary(i: number, out: Uint8Array, offset: number): void {
    const { x, y, width, height, probs } = this.crop(i);
    for (let r = 0; r < height; r++) {
      for (let c = 0; c < width; c++) out[offset + (y + r) * this.width + x + c] = probs[r * width + c]! > this.threshold ? 1 : 0;
    }
  }

  binary(i: number): Uint8Array {
    const out = new Uint8Array(this.height * this.width);
    this.writeBinary(i, out, 0);
    return out;
  }

  binaryTensor(): HostTensor<'uint8'> {
    const plane = this.height * this.width;
    const out = new Uint8Array(this.count * plane);
    for (let i = 0; i < this.count; i++) this.writeBinary(i, out, i * plane);
    return hostTensor('uint8', [this.count, 1, this.height, this.width], out);
  }

  rle(i: number): CocoRle {
    return compressRle(encodeRle(this.binary(i), this.height, this.width));
  }

  area(i: number): number {
    return this.crop(i).probs.reduce((n, p) => (p > this.threshold ? n + 1 : n), 0);
  }
}

/** `Toy.paste_masks`: each [M,M] probability map stretched over its box (nearest), binarised with MRCNN.THRESH_BINARIZE. */
export const toyPasteMasks: HostPostprocessor = {
  apply(outputs: RawOutputs, images: readonly ImageDetections[], rows: readonly (readonly [number, number])[], config: RcnnConfig) {
    const probs = output(outputs, DETECTION_OUTPUTS.maskProbs);
    const m = probs.dims[3]!;
    images.forEach((det, i) => {
      const [start, end] = rows[i]!;
      const [h, w] = det.originalSize;
      const crops: MaskCrop[] = [];
      for (let d = 0; d < end - start; d++) {
        const [x1, y1, x2, y2] = [det.boxes[4 * d]!, det.boxes[4 * d + 1]!, det.boxes[4 * d + 2]!, det.boxes[4 * d + 3]!];
        const bw = Math.max(x2 - x1, 1e-3);
        const bh = Math.max(y2 - y1, 1e-3);
        const src = (start + d) * m * m;
        const x = Math.max(0, Math.floor(x1));
        const y = Math.max(0, Math.floor(y1));
        const width = Math.max(0, Math.min(w, Math.ceil(x2)) - x);
        const height = Math.max(0, Math.min(h, Math.ceil(y2)) - y);
        const crop = new Float32Array(width * height);
        for (let r = 0; r < height; r++) {
          const v = Math.min(m - 1, Math.max(0, Math.floor(((y + r + 0.5 - y1) / bh) * m)));
          for (let c = 0; c < width; c++) {
            const u = Math.min(m - 1, Math.max(0, Math.floor(((x + c + 0.5 - x1) / bw) * m)));
            crop[r * width + c] = probs.data[src + v * m + u]!;
          }
        }
        crops.push({ x, y, width, height, probs: crop });
      }
      // A copy: the masks outlive the session's output buffers.
      const own = probs.data.slice(start * m * m, end * m * m);
      setExtra(det, EXTRA_KEYS.masks, new ToyMasks(h, w, config.MRCNN.THRESH_BINARIZE, m, own, crops));
    });
  },
};

/** `Toy.heatmaps_to_keypoints`: argmax of each heatmap, mapped into the box (original and resized pixels). */
export const toyHeatmapsToKeypoints: HostPostprocessor = {
  apply(outputs: RawOutputs, images: readonly ImageDetections[], rows: readonly (readonly [number, number])[]) {
    const heat = output(outputs, DETECTION_OUTPUTS.keypointHeatmaps);
    const [, k, s] = heat.dims as readonly [number, number, number, number]; // the toy model's [D, K, S, S]
    images.forEach((det, i) => {
      const [start, end] = rows[i]!;
      const n = end - start;
      const kp = new Float32Array(n * k * 3);
      const kpResized = new Float32Array(n * k * 3);
      const scores = new Float32Array(n * k);
      for (let d = 0; d < n; d++) {
        for (let j = 0; j < k; j++) {
          const base = ((start + d) * k + j) * s * s;
          let best = 0;
          for (let p = 1; p < s * s; p++) if (heat.data[base + p]! > heat.data[base + best]!) best = p;
          const fx = ((best % s) + 0.5) / s;
          const fy = (Math.floor(best / s) + 0.5) / s;
          const o = (d * k + j) * 3;
          for (const [boxes, target] of [[det.boxes, kp], [det.boxesResized, kpResized]] as const) {
            target[o] = boxes[4 * d]! + fx * (boxes[4 * d + 2]! - boxes[4 * d]!);
            target[o + 1] = boxes[4 * d + 1]! + fy * (boxes[4 * d + 3]! - boxes[4 * d + 1]!);
            target[o + 2] = 1;
          }
          scores[d * k + j] = heat.data[base + best]!;
        }
      }
      setExtra(det, EXTRA_KEYS.keypoints, keypointSet(n, k, { keypoints: kp, keypointsResized: kpResized, scores }));
    });
  },
};
