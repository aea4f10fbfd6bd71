/**
 * The detector side of `rcnn train`: the train-mode build of the configured model as a
 * {@link TrainingModel} and the COCO dataset as {@link TrainingData}. The engine in
 * `@rcnn/runtime/training` does the rest.
 */
import type { RcnnConfig } from '@rcnn/core';
import { type ExportOptions, resolveModelSources } from '@rcnn/runtime';
import { type CheckpointFiles, type TrainingData, TrainingError, type TrainingModel } from '@rcnn/runtime/training';

/** Inputs of {@link detectorTraining}. */
export interface DetectorTrainingOptions {
  /** Config, weights and plugins as the other commands resolve them. */
  readonly source: ExportOptions;
  /** COCO annotations of the training set. */
  readonly dataset: string;
  /** Directory of the training images. */
  readonly images: string;
  /** Validation set evaluated at checkpoints. */
  readonly val?: { readonly dataset: string; readonly images: string };
  readonly onWarning: (message: string) => void;
}

/** What the engine needs to train the detector. */
export interface DetectorTrainingSetup {
  readonly config: RcnnConfig;
  readonly model: TrainingModel<unknown>;
  readonly data: TrainingData<unknown>;
  /** String metadata for checkpoints (category map …). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Lines for the user (re-initialised layers, skipped images …). */
  readonly notes: readonly string[];
  /** One line naming the model and the data, for the report. */
  readonly description: string;
  readonly validate?: (files: CheckpointFiles) => Promise<Readonly<Record<string, number>>>;
}

/**
 * Resolves the config and weights, then builds the detector's training step. The train-mode
 * build (issue 16: `loss.*` and `grad.*` outputs with the trainable parameters as inputs) and the
 * COCO training loader are other packages' work; until this checkout has them, this says so.
 */
export async function detectorTraining(options: DetectorTrainingOptions): Promise<DetectorTrainingSetup> {
  const sources = await resolveModelSources({ ...options.source, calibrateRandomWeights: false });
  void sources;
  throw new TrainingError('this build of rcnn-node has no train-mode detector graph yet (issue 16: train-mode losses and gradients)', {
    hint: 'the training engine (@rcnn/runtime/training) is ready; rcnn train needs the train-mode build to land',
  });
}
