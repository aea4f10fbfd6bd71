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
  /**
   * Width / height of sample `index`, known without decoding it (a COCO dataset has the sizes in
   * its JSON). Lets DATALOADER.ASPECT_RATIO_GROUPING batch landscape (w > h) and portrait images
   * apart; data without it is never grouped.
   */
  aspectRatio?(index: number): number;
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

/**
 * Aspect-ratio grouping (DATALOADER.ASPECT_RATIO_GROUPING) without state: every group of
 * `groupSize` consecutive batch slots (one replica's share) holds only landscape (w > h) or only
 * portrait (w <= h) samples, so a replica pads little when it stacks its images.
 *
 * Epoch e is built from e alone: a seeded permutation of all samples is split, in its order, into
 * the landscape and the portrait queue; each queue is cut into groups of `groupSize` (a short last
 * group is filled up with the queue's first samples of that epoch, so it stays single-aspect); the
 * groups of both queues are then put in a seeded order. Every epoch has the same number of groups,
 * so iteration i takes groups [i*R, (i+1)*R) of the endless sequence of epochs (R = batchSize /
 * groupSize) and `batch` is a pure function of (seed, iteration), which `--resume` needs.
 *
 * How it differs from Detectron2's AspectRatioGroupedDataset, which streams the shuffled samples
 * into two buckets and emits a bucket when it is full: there a batch holds the next samples of its
 * aspect as they arrive, leftovers carry over into the next epoch and no sample repeats; here the
 * groups are formed per epoch, their order is shuffled as a whole, and a queue whose size is not a
 * multiple of `groupSize` repeats up to groupSize - 1 of its samples in that epoch. Each epoch
 * still visits every sample.
 */
export class AspectRatioGroupedSampler implements BatchSampler {
  readonly size: number;
  readonly seed: number;
  /** Samples per group: the per-replica share of the batch. */
  readonly groupSize: number;
  private readonly landscape: readonly boolean[];
  private readonly groupsPerEpoch: number;
  private cachedEpoch = -1;
  private cachedGroups: number[][] = [];

  /** `aspectRatios[i]` is sample i's width / height. */
  constructor(aspectRatios: readonly number[], groupSize: number, seed: number) {
    const size = aspectRatios.length;
    if (size < 1) throw new TrainingError('the training set has 0 samples; it needs at least one', { hint: 'check the dataset: every image may have been skipped' });
    if (!Number.isInteger(groupSize) || groupSize < 1) throw new TrainingError(`aspect-ratio grouping needs a positive whole number of samples per group, not ${groupSize}`);
    const bad = aspectRatios.findIndex((r) => !(Number.isFinite(r) && r > 0));
    if (bad >= 0) throw new TrainingError(`sample ${bad} has aspect ratio ${aspectRatios[bad]}; aspect-ratio grouping needs a positive width / height for every sample`);
    this.size = size;
    this.seed = seed;
    this.groupSize = groupSize;
    this.landscape = aspectRatios.map((r) => r > 1);
    const wide = this.landscape.filter(Boolean).length;
    this.groupsPerEpoch = Math.ceil(wide / groupSize) + Math.ceil((size - wide) / groupSize);
  }

  batch(iteration: number, batchSize: number): number[] {
    if (batchSize % this.groupSize !== 0) {
      throw new TrainingError(`a batch of ${batchSize} samples cannot be made of aspect-ratio groups of ${this.groupSize}`, { hint: 'the batch must be a whole number of per-replica shares' });
    }
    const per = batchSize / this.groupSize;
    const out: number[] = [];
    for (let k = 0; k < per; k++) {
      const position = iteration * per + k;
      out.push(...this.groups(Math.floor(position / this.groupsPerEpoch))[position % this.groupsPerEpoch]!);
    }
    return out;
  }

  /** The groups of `epoch`, in the order the batches take them. */
  private groups(epoch: number): number[][] {
    if (epoch !== this.cachedEpoch) {
      const order = seededPermutation(this.size, mixSeed(this.seed, epoch, 0xa5));
      const groups: number[][] = [];
      for (const wide of [true, false]) {
        const queue = order.filter((i) => this.landscape[i] === wide);
        for (let start = 0; start < queue.length; start += this.groupSize) {
          groups.push(Array.from({ length: this.groupSize }, (_, k) => queue[(start + k) % queue.length]!));
        }
      }
      this.cachedGroups = seededPermutation(groups.length, mixSeed(this.seed, epoch, 0xa6)).map((g) => groups[g]!);
      this.cachedEpoch = epoch;
    }
    return this.cachedGroups;
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
