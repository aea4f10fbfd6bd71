/**
 * Feeding a training loop: a seeded, reshuffled image order, batches that group images by
 * aspect ratio (Detectron2's AspectRatioGroupedDataset), and a prefetch queue that decodes
 * images with sharp ahead of the consumer, so the device does not wait on JPEG decoding.
 */
import { InputError, seededRandom } from '@rcnn/core';
import sharp, { type OutputInfo } from 'sharp';
import type { CocoTrainingDataset, TrainingTargets } from './dataset.js';

/**
 * Endless image indices 0..n-1, each epoch a fresh permutation from `seed` (Detectron2's
 * TrainingSampler): the same seed gives the same sequence, so a resumed run can skip ahead.
 */
export function* trainingOrder(n: number, seed: number): Generator<number, never> {
  if (!Number.isInteger(n) || n <= 0) throw new InputError(`trainingOrder: need at least one image, got ${n}`);
  const rand = seededRandom(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (;;) {
    // Fisher-Yates with the seeded generator.
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    yield* order;
  }
}

/**
 * Batches of `batchSize` indices from `order`. With grouping, landscape (w > h) and the other
 * images fill separate buckets and a bucket is emitted when full (Detectron2's
 * AspectRatioGroupedDataset), so the images of a batch pad to similar shapes. When `order` ends,
 * the partial buckets are emitted unless `dropLast`.
 */
export function* aspectRatioBatches(
  order: Iterable<number>,
  aspectRatio: (index: number) => number,
  batchSize: number,
  options: { grouping?: boolean; dropLast?: boolean } = {},
): Generator<number[]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InputError(`batch size must be a positive integer, got ${batchSize}`);
  const grouping = options.grouping ?? true;
  const buckets: number[][] = [[], []];
  for (const index of order) {
    const bucket = buckets[grouping && !(aspectRatio(index) > 1) ? 1 : 0]!;
    bucket.push(index);
    if (bucket.length === batchSize) yield bucket.splice(0, batchSize);
  }
  if (!options.dropLast) for (const b of buckets) if (b.length > 0) yield b.splice(0);
}

/**
 * Runs `load` on the items of `source` and yields the results in source order; while the
 * consumer works on one result, the loads of the next `depth` items run. A failed load rejects when the consumer reaches its item (with the
 * same error), so one bad image fails where it is used, not somewhere ahead. Stopping the
 * iteration stops pulling new items; loads already started finish in the background.
 */
export async function* prefetch<T, R>(source: Iterable<T> | AsyncIterable<T>, load: (item: T) => Promise<R>, depth: number): AsyncGenerator<R> {
  if (!Number.isInteger(depth) || depth < 0) throw new InputError(`prefetch depth must be a non-negative integer, got ${depth}`);
  const iterator = Symbol.asyncIterator in source ? (source as AsyncIterable<T>)[Symbol.asyncIterator]() : (source as Iterable<T>)[Symbol.iterator]();
  const queue: Promise<R>[] = [];
  let done = false;
  // Keeps the item the consumer waits for plus `depth` more loading.
  const fill = async (): Promise<void> => {
    while (!done && queue.length < depth + 1) {
      const next = await iterator.next();
      if (next.done) {
        done = true;
        break;
      }
      const p = load(next.value);
      // Observed now so a rejection ahead of the consumer is not "unhandled"; re-raised in order.
      p.catch(() => undefined);
      queue.push(p);
    }
  };
  try {
    for (;;) {
      await fill();
      const head = queue.shift();
      if (head === undefined) break;
      // While the consumer works on this one, the `depth` loads behind it go on.
      yield await head;
    }
  } finally {
    if (!done) await iterator.return?.();
  }
}

/** A decoded training image with its targets. */
export interface TrainingImage {
  readonly index: number;
  readonly imageId: number;
  readonly path: string;
  /** RGB, row-major, 8 bits (height * width * 3). */
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly targets: TrainingTargets;
}

/**
 * Decodes image `index` of the dataset (EXIF-oriented, alpha dropped, sRGB, 3 channels) and
 * builds its targets. The decoded size must be the dataset's width x height (masks and boxes are
 * in those pixels); otherwise an InputError names the file and both sizes.
 */
export async function loadTrainingImage(dataset: CocoTrainingDataset, index: number): Promise<TrainingImage> {
  const item = dataset.items[index];
  if (!item) throw new InputError(`dataset index ${index} is outside 0..${dataset.length - 1}`);
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(item.path, { failOn: 'warning' }).rotate().removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new InputError(`training image ${item.path} (image ${item.imageId}) cannot be decoded: ${(e as Error).message}`, { source: item.path, cause: e });
  }
  const { data, info } = decoded;
  if (info.width !== item.width || info.height !== item.height) {
    throw new InputError(`training image ${item.path} is ${info.width} x ${info.height}, but the dataset says ${item.width} x ${item.height}`, {
      source: item.path,
      hint: 'the dataset\'s width/height must be the image\'s (annotations are in its pixels)',
    });
  }
  if (info.channels !== 3) throw new InputError(`training image ${item.path} decoded to ${info.channels} channels, expected 3`, { source: item.path });
  return {
    index,
    imageId: item.imageId,
    path: item.path,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
    targets: dataset.targets(index),
  };
}

/**
 * Training batches of decoded images: `order` grouped into batches (aspect-ratio grouping
 * optional) and decoded `prefetch` images ahead of the consumer.
 */
export async function* trainingBatches(
  dataset: CocoTrainingDataset,
  order: Iterable<number>,
  options: { batchSize: number; grouping?: boolean; prefetch?: number; dropLast?: boolean },
): AsyncGenerator<TrainingImage[]> {
  const batches = aspectRatioBatches(order, (i) => dataset.aspectRatio(i), options.batchSize, { grouping: options.grouping ?? true, dropLast: options.dropLast ?? false });
  // Images are prefetched one by one (not per batch) so decoding overlaps within a batch too.
  async function* flat(): AsyncGenerator<{ batch: number; size: number; index: number }> {
    let b = 0;
    for (const batch of batches) {
      for (const index of batch) yield { batch: b, size: batch.length, index };
      b++;
    }
  }
  let current: TrainingImage[] = [];
  for await (const { image, size } of prefetch(flat(), async (x) => ({ image: await loadTrainingImage(dataset, x.index), size: x.size }), options.prefetch ?? 4)) {
    current.push(image);
    if (current.length === size) {
      yield current;
      current = [];
    }
  }
}
