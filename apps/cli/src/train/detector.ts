/**
 * The detector side of `rcnn train`: the train-mode build of the configured model as a
 * {@link TrainingModel} (`detectorTrainingModel`) and the COCO dataset as {@link TrainingData}. The
 * engine in `@rcnn/runtime/training` does the rest.
 *
 * The COCO loader is `@rcnn/coco`; {@link CocoLoader} is the part of its API used here (tests pass
 * a loader over fixture images).
 */
import { dataLoaderSettings, loadCocoDataset, loadTrainingImage, register as registerCoco } from '@rcnn/coco';
import type { DependencyContainer, ImageTargets, RcnnConfig } from '@rcnn/core';
import { ConfigError } from '@rcnn/core';
import { type ExportOptions, resolveModelSources } from '@rcnn/runtime';
import {
  CHECKPOINT_METADATA,
  type CheckpointFiles,
  type DetectorSample,
  type TrainingData,
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
  /** Validation set evaluated at checkpoints (keypoints with `oksSigmas`, see {@link cocoValidator}). */
  readonly val?: { readonly dataset: string; readonly images: string; readonly oksSigmas?: readonly number[] };
  readonly onWarning: (message: string) => void;
}

/** What `rcnn train` trains: a model, its data and what goes with them. */
export interface TrainingSetup<S> {
  readonly config: RcnnConfig;
  readonly model: TrainingModel<S>;
  readonly data: TrainingData<S>;
  /** String metadata for checkpoints (category map …). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Lines for the user (re-initialised layers, skipped images …). */
  readonly notes: readonly string[];
  /** One line naming the model and the data, for the report. */
  readonly description: string;
  /** Evaluates a checkpoint (`--val`). */
  readonly validate?: (files: CheckpointFiles) => Promise<Readonly<Record<string, number>>>;
  /** How batches are formed and loaded ahead (DATALOADER.ASPECT_RATIO_GROUPING, DATALOADER.PREFETCH); the engine's defaults when absent. */
  readonly loading?: { readonly aspectRatioGrouping: boolean; readonly prefetch: number };
}

/** The detector's training setup. */
export type DetectorTrainingSetup = TrainingSetup<DetectorSample>;

/** The part of `@rcnn/coco`'s API that `rcnn train` uses. */
export interface CocoLoader {
  register(container: DependencyContainer): void;
  loadCocoDataset(options: {
    annotations: string;
    imagesDir: string;
    masks?: boolean;
    keypoints?: boolean;
    legacyPlusOne?: boolean;
    filterEmptyAnnotations?: boolean;
    minKeypointsPerImage?: number;
  }): Promise<CocoDataset>;
  loadTrainingImage(dataset: CocoDataset, index: number): Promise<{ readonly data: Uint8Array; readonly width: number; readonly height: number; readonly path: string; readonly targets: ImageTargets }>;
}

/** A loaded COCO training set as {@link CocoLoader} returns it. */
export interface CocoDataset {
  readonly length: number;
  readonly categories: { readonly numClasses: number; toJSON(): unknown };
  /** Width / height of image `index`, from the JSON (for DATALOADER.ASPECT_RATIO_GROUPING). */
  aspectRatio(index: number): number;
  summary(): string;
}

/** `@rcnn/coco` as {@link detectorTraining} uses it. */
export const COCO_LOADER: CocoLoader = { register: registerCoco, loadCocoDataset, loadTrainingImage };

/**
 * Loads a COCO training set for `config` as `rcnn train` reads it: `@rcnn/coco`'s loader with masks
 * and keypoints as the model trains them (category ids to contiguous labels, polygons / RLE to
 * bitmaps, crowd regions and unusable items skipped, boxes in the MODEL.LEGACY_PLUS_ONE convention,
 * images without annotations or with too few keypoints filtered as DATALOADER.FILTER_EMPTY_ANNOTATIONS
 * and DATALOADER.MIN_KEYPOINTS_PER_IMAGE say), and a ConfigError when its category count does not
 * fit MODEL.NUM_CLASSES. `config` must have been loaded with @rcnn/coco's DATALOADER section.
 */
export async function loadCocoTrainingSet(config: RcnnConfig, dataset: string, images: string, loader: CocoLoader = COCO_LOADER): Promise<CocoDataset> {
  const loading = dataLoaderSettings(config);
  const loaded = await loader.loadCocoDataset({
    filterEmptyAnnotations: loading.FILTER_EMPTY_ANNOTATIONS,
    minKeypointsPerImage: loading.MIN_KEYPOINTS_PER_IMAGE,
    annotations: dataset,
    imagesDir: images,
    masks: config.MODEL.MASK_ON,
    keypoints: config.MODEL.KEYPOINTS_ON,
    legacyPlusOne: config.MODEL.LEGACY_PLUS_ONE,
  });
  if (loaded.categories.numClasses !== config.MODEL.NUM_CLASSES) {
    throw new ConfigError(`${dataset} has ${loaded.categories.numClasses - 1} categories, so the model needs MODEL.NUM_CLASSES ${loaded.categories.numClasses} (with the background); the config says ${config.MODEL.NUM_CLASSES}`, {
      key: 'MODEL.NUM_CLASSES',
      hint: `add --set MODEL.NUM_CLASSES=${loaded.categories.numClasses}`,
    });
  }
  return loaded;
}

/** Image `index` of a COCO training set decoded with its targets, as a training step takes it (`rcnn train` and `rcnn train-step`). */
export async function loadCocoTrainingSample(dataset: CocoDataset, index: number, loader: CocoLoader = COCO_LOADER): Promise<DetectorSample> {
  const t = await loader.loadTrainingImage(dataset, index);
  return { image: { data: t.data, width: t.width, height: t.height, maxValue: 255 }, targets: t.targets, source: t.path };
}

/**
 * Resolves the config and weights, loads the dataset, and builds the detector's training model
 * with the initial weights fitted to the config (re-initialised layers listed in `notes`).
 */
export async function detectorTraining(options: DetectorTrainingOptions, loader: CocoLoader = COCO_LOADER): Promise<DetectorTrainingSetup> {
  const sources = await resolveModelSources({ ...options.source, register: [...(options.source.register ?? []), loader.register], calibrateRandomWeights: false });
  const config = sources.resolved.config;
  const dataset = await loadCocoTrainingSet(config, options.dataset, options.images, loader);
  const seed = options.source.seed ?? 0;
  const model = detectorTrainingModel({ config, container: sources.container, ...(sources.weights.isRandom ? {} : { weights: sources.weights }), seed });
  const notes = [`dataset ${options.dataset}: ${dataset.summary()}`, `step: ${model.stepChain}`, ...model.reinitialisedTensors.map(describeReinitialised)];
  if (sources.weights.isRandom) notes.push('no --weights: every layer starts from random numbers (training from scratch)');
  const validate = options.val ? await cocoValidator({ ...options.val, config, container: sources.container }) : undefined;
  const data: TrainingData<DetectorSample> = {
    size: dataset.length,
    load: (index) => loadCocoTrainingSample(dataset, index, loader),
    aspectRatio: (index) => dataset.aspectRatio(index),
  };
  const loading = dataLoaderSettings(config);
  return {
    config,
    model,
    data,
    metadata: { [CHECKPOINT_METADATA.categories]: JSON.stringify(dataset.categories.toJSON()) },
    notes,
    description: `${sources.resolved.source} on ${options.dataset}`,
    ...(validate ? { validate } : {}),
    loading: { aspectRatioGrouping: loading.ASPECT_RATIO_GROUPING, prefetch: loading.PREFETCH },
  };
}
