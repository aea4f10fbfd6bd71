/**
 * Training data as the engine sees it: a numbered set of samples and a batch sampler that is a
 * pure function of (seed, iteration). Being a function of the iteration, not a stateful iterator,
 * is what makes `--resume` exact: a resumed run asks for iteration 1000's batch and gets the one
 * the uninterrupted run got, augmentation draws included.
 */
import { seededRandom } from '@rcnn/core';
import { TrainingError } from './errors.js';

/** Samples the engine loads by index. */
export interface TrainingData<S> {
  /** Number of samples. */
  readonly size: number;
  /**
   * Loads (decodes, augments) sample `index`. `random` is seeded from the run's seed, the
   * iteration and the sample's slot in the batch: draw augmentation choices (flip, scale) from it.
   */
  load(index: number, random: () => number): Promise<S>;
}

/** Chooses the sample indices of each iteration's batch. */
export interface BatchSampler {
  /** The `batchSize` sample indices of 0-based `iteration`; must depend only on the sampler's seed and `iteration`. */
  batch(iteration: number, batchSize: number): readonly number[];
}

/** A 32-bit seed mixed from several integers (splitmix-style), stable across platforms. */
export function mixSeed(...parts: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function seededPermutation(n: number, seed: number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  const rand = seededRandom(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

/**
 * Detectron2's TrainingSampler without state: the samples are visited epoch after epoch, each
 * epoch in its own seeded order; iteration i takes positions [i*B, (i+1)*B) of that endless
 * sequence (a batch may straddle two epochs).
 */
export class ShuffledSampler implements BatchSampler {
  readonly size: number;
  readonly seed: number;
  private cachedEpoch = -1;
  private cachedOrder: number[] = [];

  constructor(size: number, seed: number) {
    if (!Number.isInteger(size) || size < 1) throw new TrainingError(`the training set has ${size} samples; it needs at least one`, { hint: 'check the dataset: every image may have been skipped' });
    this.size = size;
    this.seed = seed;
  }

  batch(iteration: number, batchSize: number): number[] {
    const out: number[] = [];
    for (let k = 0; k < batchSize; k++) {
      const position = iteration * batchSize + k;
      const epoch = Math.floor(position / this.size);
      out.push(this.order(epoch)[position % this.size]!);
    }
    return out;
  }

  private order(epoch: number): number[] {
    if (epoch !== this.cachedEpoch) {
      this.cachedOrder = seededPermutation(this.size, mixSeed(this.seed, epoch, 0x5a));
      this.cachedEpoch = epoch;
    }
    return this.cachedOrder;
  }
}

/** Sizes of each replica's contiguous share of a batch of `batchSize` (equal shares; the batch must divide). */
export function replicaShares(batchSize: number, replicas: number): number[] {
  if (replicas < 1) throw new TrainingError('a training run needs at least one replica');
  if (batchSize % replicas !== 0) {
    throw new TrainingError(`SOLVER.IMS_PER_BATCH (${batchSize}) is not a multiple of the ${replicas} replicas`, {
      hint: `set SOLVER.IMS_PER_BATCH to a multiple of ${replicas} (each replica takes the same number of images, as Detectron2 requires)`,
    });
  }
  return Array.from({ length: replicas }, () => batchSize / replicas);
}
