/** Errors of training runs (`rcnn train`). */
import { RcnnError } from '@rcnn/core';

/**
 * A training run cannot go on: a non-finite loss or gradient, a step whose outputs do not match
 * its parameters, a checkpoint that does not fit the run. Names the iteration when there is one.
 */
export class TrainingError extends RcnnError {
  /** The 0-based iteration at fault, when there is one. */
  readonly iteration: number | undefined;
  /** The losses of that iteration, when they were computed. */
  readonly losses: Readonly<Record<string, number>> | undefined;
  constructor(message: string, options?: { iteration?: number; losses?: Readonly<Record<string, number>>; hint?: string; cause?: unknown }) {
    super('E_TRAINING', message, options);
    this.iteration = options?.iteration;
    this.losses = options?.losses;
  }
}
