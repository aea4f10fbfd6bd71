/**
 * The whole host side of an exported model, from the `/web` entries of the packages only (no Node
 * API, so it runs in a page and in Node alike): the model's config from its metadata, the image
 * transform, one run of the session, the split per image and the host post-processors the model
 * lists (`rcnn.host_postprocessors`), with the time of each stage.
 */
import { GeneralizedRCNNTransform } from '@rcnn/backbone/web';
import {
  ConfigError,
  type HostPostprocessor,
  type HostTensor,
  type ImageDetections,
  MODEL_INPUTS,
  MODEL_METADATA,
  type RawOutputs,
  type RcnnConfig,
  type RgbImage,
  readModelMetadata,
} from '@rcnn/core/web';
import { KEYPOINT_DECODER, heatmapsToKeypoints } from '@rcnn/keypoint-head/web';
import { PASTE_MASKS, PasteMasks } from '@rcnn/mask-head/web';
import { type ModelLabels, defaultLabels, readKeypoints, readMasks, splitDetections } from '@rcnn/runtime/web';

/** The host post-processors a page can apply, by registry name. */
export const WEB_POSTPROCESSORS: Readonly<Record<string, HostPostprocessor>> = {
  [PASTE_MASKS]: new PasteMasks(),
  [KEYPOINT_DECODER]: heatmapsToKeypoints,
};

/** What a page needs to know about an exported model, read from its metadata. */
export interface ModelInfo {
  readonly config: RcnnConfig;
  readonly kind: string;
  readonly hostPostprocessors: readonly string[];
  readonly labels: ModelLabels;
  readonly precision: string;
}

/** Reads an exported model's config, kind and host post-processors (core's MODEL_METADATA). */
export function modelInfo(model: Uint8Array): ModelInfo {
  const meta = readModelMetadata(model);
  const json = meta.get(MODEL_METADATA.config);
  if (json === undefined) throw new ConfigError(`the model has no "${MODEL_METADATA.config}" metadata: export it with \`rcnn export\``);
  const config = JSON.parse(json) as RcnnConfig;
  const kind = meta.get(MODEL_METADATA.kind) ?? 'detections';
  if (kind !== 'detections') throw new ConfigError(`the page draws detections; this model's kind is "${kind}"`);
  const hostPostprocessors = (meta.get(MODEL_METADATA.hostPostprocessors) ?? '').split(',').filter((s) => s.length > 0);
  for (const name of hostPostprocessors) {
    if (!(name in WEB_POSTPROCESSORS)) throw new ConfigError(`host post-processor "${name}" is not available in the page; known: ${Object.keys(WEB_POSTPROCESSORS).join(', ')}`);
  }
  const keypoints = config.MODEL.KEYPOINTS_ON ? config.KRCNN.NUM_KEYPOINTS : undefined;
  return { config, kind, hostPostprocessors, labels: defaultLabels(config.MODEL.NUM_CLASSES, keypoints), precision: meta.get(MODEL_METADATA.precision) ?? 'float32' };
}

/** Runs the model once on host tensors (an adapter over an onnxruntime-web session). */
export type RunModel = (feeds: Readonly<Record<string, HostTensor>>) => Promise<RawOutputs>;

/** Milliseconds of each stage of one image. */
export interface StageTimes {
  readonly transform: number;
  readonly inference: number;
  readonly postprocess: number;
}

/** Detections of one image (original-image pixels, with masks / keypoints in their extras) and the stage times. */
export interface Detected {
  readonly detections: ImageDetections;
  readonly times: StageTimes;
}

const now = (): number => performance.now();

/** Transform, run, split, post-process: one image through an exported detection model. */
export async function detect(run: RunModel, info: ModelInfo, image: RgbImage): Promise<Detected> {
  const t0 = now();
  const batch = new GeneralizedRCNNTransform().prepare([image], info.config);
  const t1 = now();
  const outputs = await run({ [MODEL_INPUTS.images]: batch.images, [MODEL_INPUTS.imageSizes]: batch.imageSizes, [MODEL_INPUTS.originalSizes]: batch.originalSizes });
  const t2 = now();
  const { images, rows } = splitDetections(outputs, batch);
  for (const name of info.hostPostprocessors) {
    const postprocessor = WEB_POSTPROCESSORS[name];
    if (!postprocessor) throw new ConfigError(`host post-processor "${name}" is not available in the page; known: ${Object.keys(WEB_POSTPROCESSORS).join(', ')}`);
    postprocessor.apply(outputs, images, rows, info.config);
  }
  const t3 = now();
  return { detections: images[0]!, times: { transform: t1 - t0, inference: t2 - t1, postprocess: t3 - t2 } };
}

/** An onnxruntime-web (or onnxruntime-node) tensor as the adapter sees it. */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

/** Host tensors from a session's outputs (float32, int64, int32, uint8, bool). */
export function hostOutputs(out: Readonly<Record<string, OrtTensorLike>>): Map<string, HostTensor> {
  const result = new Map<string, HostTensor>();
  for (const [name, t] of Object.entries(out)) {
    if (!['float32', 'int64', 'int32', 'uint8', 'bool'].includes(t.type)) throw new ConfigError(`output ${name}: element type ${t.type} is not supported by the page`);
    result.set(name, { dtype: t.type, dims: [...t.dims], data: t.data } as HostTensor);
  }
  return result;
}

/** Plain JSON of one image's detections (what the page shows and its test compares). */
export interface DetectionsJson {
  readonly boxes: number[];
  readonly scores: number[];
  readonly labels: number[];
  /** COCO RLE counts string per detection (Mask R-CNN). */
  readonly masks?: string[];
  /** [x, y, v] * K per detection, flattened (Keypoint R-CNN). */
  readonly keypoints?: number[];
}

/** One image's detections as {@link DetectionsJson}. */
export function detectionsJson(det: ImageDetections): DetectionsJson {
  const masks = readMasks(det);
  const kp = readKeypoints(det);
  return {
    boxes: Array.from(det.boxes),
    scores: Array.from(det.scores),
    labels: Array.from(det.labels, Number),
    ...(masks ? { masks: Array.from({ length: masks.count }, (_, d) => masks.rle(d).counts) } : {}),
    ...(kp ? { keypoints: Array.from(kp.keypoints) } : {}),
  };
}
