/**
 * The detector side of `rcnn train`: the train-mode build of the configured model as a
 * {@link TrainingModel} (`detectorTrainingModel`) and the COCO dataset as {@link TrainingData}. The
 * engine in `@rcnn/runtime/training` does the rest.
 *
 * The COCO loader is `@rcnn/coco` (its own package and branch). It is imported at run time, as
 * the CLI imports the model packages, so that this command builds and its engine is tested where
 * the loader is not installed; {@link CocoLoader} is the part of its API used here.
 */
import type { DependencyContainer, ImageTargets, RcnnConfig } from '@rcnn/core';
import { ConfigError } from '@rcnn/core';
import { type ExportOptions, resolveModelSources } from '@rcnn/runtime';
import {
  CHECKPOINT_METADATA,
  type CheckpointFiles,
  type DetectorSample,
  type TrainingData,
  TrainingError,
  type TrainingModel,
  describeReinitialised,
  detectorTrainingModel,
} from '@rcnn/runtime/training';
import { cocoValidator } from './validate.js';

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
  readonly model: TrainingModel<DetectorSample>;
  readonly data: TrainingData<DetectorSample>;
  /** String metadata for checkpoints (category map …). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Lines for the user (re-initialised layers, skipped images …). */
  readonly notes: readonly string[];
  /** One line naming the model and the data, for the report. */
  readonly description: string;
  readonly validate?: (files: CheckpointFiles) => Promise<Readonly<Record<string, number>>>;
}

/** The part of `@rcnn/coco`'s API that `rcnn train` uses. */
export interface CocoLoader {
  register(container: DependencyContainer): void;
  loadCocoDataset(options: { annotations: string; imagesDir: string; masks?: boolean; keypoints?: boolean }): Promise<CocoDataset>;
  loadTrainingImage(dataset: CocoDataset, index: number): Promise<{ readonly data: Uint8Array; readonly width: number; readonly height: number; readonly path: string; readonly targets: ImageTargets }>;
}

/** A loaded COCO training set as {@link CocoLoader} returns it. */
export interface CocoDataset {
  readonly length: number;
  readonly categories: { readonly numClasses: number; toJSON(): unknown };
  summary(): string;
}

/** Imports `@rcnn/coco`, or says that `rcnn train` needs it. */
export async function importCocoLoader(): Promise<CocoLoader> {
  const specifier = '@rcnn/coco';
  try {
    return (await import(specifier)) as CocoLoader;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw e;
    throw new TrainingError('rcnn train reads COCO datasets with @rcnn/coco, which is not installed in this checkout', {
      hint: 'install @rcnn/coco (npm install @rcnn/coco), or use the engine from code with your own TrainingData (docs/fine-tuning.md)',
      cause: e,
    });
  }
}

/**
 * Resolves the config and weights, loads the dataset, and builds the detector's training model
 * with the initial weights fitted to the config (re-initialised layers listed in `notes`).
 */
export async function detectorTraining(options: DetectorTrainingOptions, coco?: CocoLoader): Promise<DetectorTrainingSetup> {
  const loader = coco ?? (await importCocoLoader());
  const sources = await resolveModelSources({ ...options.source, register: [...(options.source.register ?? []), loader.register], calibrateRandomWeights: false });
  const config = sources.resolved.config;
  const dataset = await loader.loadCocoDataset({ annotations: options.dataset, imagesDir: options.images, masks: config.MODEL.MASK_ON, keypoints: config.MODEL.KEYPOINTS_ON });
  if (dataset.categories.numClasses !== config.MODEL.NUM_CLASSES) {
    throw new ConfigError(`${options.dataset} has ${dataset.categories.numClasses - 1} categories, so the model needs MODEL.NUM_CLASSES ${dataset.categories.numClasses} (with the background); the config says ${config.MODEL.NUM_CLASSES}`, {
      key: 'MODEL.NUM_CLASSES',
      hint: `add --set MODEL.NUM_CLASSES=${dataset.categories.numClasses}`,
    });
  }
  const seed = options.source.seed ?? 0;
  const model = detectorTrainingModel({ config, container: sources.container, ...(sources.weights.isRandom ? {} : { weights: sources.weights }), seed });
  const notes = [`dataset ${options.dataset}: ${dataset.summary()}`, ...model.reinitialisedTensors.map(describeReinitialised)];
  if (sources.weights.isRandom) notes.push('no --weights: every layer starts from random numbers (training from scratch)');
  const validate = options.val ? await cocoValidator({ ...options.val, config, container: sources.container }) : undefined;
  const data: TrainingData<DetectorSample> = {
    size: dataset.length,
    async load(index) {
      const t = await loader.loadTrainingImage(dataset, index);
      return { image: { data: t.data, width: t.width, height: t.height, maxValue: 255 }, targets: t.targets, source: t.path };
    },
  };
  return {
    config,
    model,
    data,
    metadata: { [CHECKPOINT_METADATA.categories]: JSON.stringify(dataset.categories.toJSON()) },
    notes,
    description: `${sources.resolved.source} on ${options.dataset}`,
    ...(validate ? { validate } : {}),
  };
}
