/**
 * From the flattened graph outputs of a batch to per-image host arrays: detections split by
 * `det.batch_index` into core's {@link ImageDetections}, proposals of RPN-only models cut to each
 * image's count.
 */
import {
  DETECTION_OUTPUTS,
  type HostTensor,
  type ImageDetections,
  InputError,
  PROPOSAL_OUTPUTS,
  type PreparedBatch,
  type RawOutputs,
  elementCount,
} from '@rcnn/core/web';
import { InferenceError } from './errors.js';

/** Proposals of one image (RPN-only models). */
export interface ImageProposals {
  /** [P*4] (x1,y1,x2,y2) in original-image pixels, sorted by score. */
  readonly boxes: Float32Array;
  /** [P*4] in resized-image pixels. */
  readonly boxesResized: Float32Array;
  /** [P] sigmoid(objectness). */
  readonly scores: Float32Array;
  readonly count: number;
}

/** Rows `[start, end)` of image `i` in flattened `[D,…]` outputs. */
export type RowRange = readonly [number, number];

/** The output `name`, or an error saying the model does not produce it. */
export function requireOutput(outputs: RawOutputs, name: string): HostTensor {
  const t = outputs.get(name);
  if (!t) throw new InferenceError(`the model produced no "${name}" output (outputs: ${[...outputs.keys()].join(', ')})`);
  return t;
}

/**
 * Rows of each of `n` images from a non-decreasing batch index. A decreasing or out-of-range
 * index is a broken box stage, reported as such rather than silently mis-assigned.
 */
export function rowsPerImage(batchIndex: HostTensor, n: number): RowRange[] {
  const idx = batchIndex.data as BigInt64Array;
  const rows: [number, number][] = Array.from({ length: n }, () => [0, 0]);
  let prev = 0;
  let start = 0;
  for (let r = 0; r <= idx.length; r++) {
    const b = r < idx.length ? Number(idx[r]) : n;
    if (b < prev || b > n || (r < idx.length && b === n)) {
      throw new InferenceError(`${DETECTION_OUTPUTS.batchIndex} is not a non-decreasing image index in [0, ${n}) at row ${r} (value ${b})`);
    }
    while (prev < b) {
      rows[prev] = [start, r];
      prev++;
      start = r;
    }
  }
  return rows;
}

/** Rows `[start, end)` along axis 0 of a tensor, as a new tensor (zero rows give a zero-sized tensor). */
export function sliceRows(t: HostTensor, start: number, end: number): HostTensor {
  const row = t.dims.length === 0 ? 1 : elementCount(t.dims.slice(1));
  return { dtype: t.dtype, dims: [end - start, ...t.dims.slice(1)], data: t.data.slice(start * row, end * row) } as HostTensor;
}

/** Int64 [N,2] (h, w) of image `i`. */
export function sizeOf(t: HostTensor<'int64'>, i: number): [number, number] {
  return [Number(t.data[2 * i]), Number(t.data[2 * i + 1])];
}

/** The detections of every image of a batch (boxes, scores, labels), plus each image's rows. */
export function splitDetections(outputs: RawOutputs, batch: PreparedBatch): { images: ImageDetections[]; rows: RowRange[] } {
  const n = batch.images.dims[0]!;
  const boxes = requireOutput(outputs, DETECTION_OUTPUTS.boxes).data as Float32Array;
  const boxesResized = requireOutput(outputs, DETECTION_OUTPUTS.boxesResized).data as Float32Array;
  const scores = requireOutput(outputs, DETECTION_OUTPUTS.scores).data as Float32Array;
  const labels = requireOutput(outputs, DETECTION_OUTPUTS.labels).data as BigInt64Array;
  const rows = rowsPerImage(requireOutput(outputs, DETECTION_OUTPUTS.batchIndex), n);
  const images = rows.map(([s, e], i): ImageDetections => ({
    imageIndex: i,
    originalSize: sizeOf(batch.originalSizes, i),
    resizedSize: sizeOf(batch.imageSizes, i),
    boxes: boxes.slice(4 * s, 4 * e),
    boxesResized: boxesResized.slice(4 * s, 4 * e),
    scores: scores.slice(s, e),
    labels: Int32Array.from(labels.subarray(s, e), Number),
    extras: new Map(),
  }));
  return { images, rows };
}

/** The proposals of every image of an RPN-only model's batch. */
export function splitProposals(outputs: RawOutputs, n: number): ImageProposals[] {
  const boxes = requireOutput(outputs, PROPOSAL_OUTPUTS.boxes);
  const resized = requireOutput(outputs, PROPOSAL_OUTPUTS.boxesResized).data as Float32Array;
  const scores = requireOutput(outputs, PROPOSAL_OUTPUTS.scores).data as Float32Array;
  const counts = requireOutput(outputs, PROPOSAL_OUTPUTS.counts).data as BigInt64Array;
  const k = boxes.dims[1] ?? 0;
  const data = boxes.data as Float32Array;
  return Array.from({ length: n }, (_, i) => {
    const count = Number(counts[i]);
    if (count > k) throw new InferenceError(`${PROPOSAL_OUTPUTS.counts}[${i}] = ${count} exceeds the ${k} proposal slots`);
    return {
      boxes: data.slice(i * k * 4, (i * k + count) * 4),
      boxesResized: resized.slice(i * k * 4, (i * k + count) * 4),
      scores: scores.slice(i * k, i * k + count),
      count,
    };
  });
}

/** Checks that a prepared batch has the layout the graph inputs need. */
export function checkPreparedBatch(batch: PreparedBatch, count: number, transform: string): void {
  const [n, c] = batch.images.dims;
  const ok =
    batch.images.dims.length === 4 &&
    n === count &&
    c === 3 &&
    batch.imageSizes.dims.join(',') === `${count},2` &&
    batch.originalSizes.dims.join(',') === `${count},2`;
  if (!ok) {
    throw new InputError(
      `image transform "${transform}" returned images [${batch.images.dims.join(', ')}], image_sizes [${batch.imageSizes.dims.join(', ')}], original_sizes [${batch.originalSizes.dims.join(', ')}] for ${count} image(s); expected [${count},3,H,W], [${count},2], [${count},2]`,
    );
  }
}
