/**
 * Shared test setup: the mask head built alone on graph inputs (reference FPN features and final
 * detections of the maskrcnn_tiny fixture), run in onnxruntime.
 */
import { join } from 'node:path';
import {
  type Detections,
  type FeatureMaps,
  type HostTensor,
  type ImageDetections,
  type RcnnConfig,
  SLOTS,
  type WeightStore,
  createContainer,
  loadConfig,
  resolveImplementation,
} from '@rcnn/core';
import { type ParityCase, createTestContext, loadParityCase, publicCaseDir, runModel } from '@rcnn/testing';
import { register } from '../src/index.js';

/** The maskrcnn_tiny case and its config. */
export const CASE_DIR = publicCaseDir('maskrcnn_tiny');
export const parity: ParityCase = loadParityCase(CASE_DIR);
export const config: RcnnConfig = loadConfig({ layers: [join(CASE_DIR, 'case.json')] });

/** FPN levels the RoI heads use: reference tensors backbone.0..3 are P2..P5. */
export const LEVELS = [2, 3, 4, 5] as const;

/** Builds the registered mask head on graph inputs `features.<i>` and `detections.*`; returns the model bytes. */
export function buildMaskHeadModel(cfg: RcnnConfig = config, weights: WeightStore = parity.weights()): Uint8Array {
  const container = createContainer();
  register(container);
  const head = resolveImplementation(container, SLOTS.roiMaskHead, cfg.MRCNN.ROI_MASK_HEAD).value;
  const ctx = createTestContext(cfg, { weights, container });
  const g = ctx.graph;
  const channels = cfg.FPN.DIM;
  const features: FeatureMaps = LEVELS.map((level, i) => ({
    name: String(i),
    blob: g.input(`features.${i}`, 'float32', ['N', channels, `h${i}`, `w${i}`]),
    channels,
    spatialScale: 1 / 2 ** level,
    level,
  }));
  const detections: Detections = {
    boxes: g.input('detections.boxes', 'float32', ['D', 4]),
    scores: g.input('detections.scores', 'float32', ['D']),
    labels: g.input('detections.labels', 'int64', ['D']),
    batchIndex: g.input('detections.batch_index', 'int64', ['D']),
  };
  const { maskProbs } = g.withScope('mask_head', () => head.build(ctx, features, detections));
  ctx.outputTaps();
  g.output(maskProbs, 'det.mask_probs', 'float32');
  return g.toModelProto();
}

/** Detections as host tensors (flattened over the batch). */
export interface HostDetections {
  readonly boxes: Float32Array;
  readonly labels: BigInt64Array;
  readonly batchIndex: BigInt64Array;
}

/** Concatenates typed arrays. */
export function cat<T extends Float32Array | BigInt64Array | Uint8Array>(parts: readonly T[]): T {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new (parts[0]!.constructor as new (n: number) => T)(n);
  let o = 0;
  for (const p of parts) {
    out.set(p as never, o);
    o += p.length;
  }
  return out;
}

/** Feature tensors of a batch: each image's reference features (optionally scaled), stacked along N. */
export function batchFeatures(scales: readonly number[]): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  LEVELS.forEach((_, i) => {
    const ref = parity.reference(`backbone.${i}`);
    const data = ref.data as Float32Array;
    feeds[`features.${i}`] = {
      dtype: 'float32',
      dims: [scales.length, ...ref.dims.slice(1)],
      data: cat(scales.map((s) => data.map((v) => v * s))),
    };
  });
  return feeds;
}

/** Runs the model on features and detections; returns every output. */
export async function runMaskHead(model: Uint8Array, features: Record<string, HostTensor>, det: HostDetections): Promise<Map<string, HostTensor>> {
  const n = features['features.0']!.dims[0]!;
  const d = det.labels.length;
  const [, , hp, wp] = (parity.reference('transform.images') as HostTensor).dims as [unknown, unknown, number, number];
  const sizes = parity.reference('transform.image_sizes').data as BigInt64Array;
  return runModel(model, {
    ...features,
    images: { dtype: 'float32', dims: [n, 3, hp, wp], data: new Float32Array(n * 3 * hp * wp) },
    image_sizes: { dtype: 'int64', dims: [n, 2], data: cat(Array.from({ length: n }, () => sizes)) },
    original_sizes: { dtype: 'int64', dims: [n, 2], data: cat(Array.from({ length: n }, () => BigInt64Array.of(200n, 260n))) },
    'detections.boxes': { dtype: 'float32', dims: [d, 4], data: det.boxes },
    'detections.scores': { dtype: 'float32', dims: [d], data: new Float32Array(d).fill(0.5) },
    'detections.labels': { dtype: 'int64', dims: [d], data: det.labels },
    'detections.batch_index': { dtype: 'int64', dims: [d], data: det.batchIndex },
  });
}

/** The reference detections of image 0 (resized-image boxes, labels, batch index 0). */
export function referenceDetections(batchIndex = 0): HostDetections {
  const labels = parity.reference('det.labels.0').data as BigInt64Array;
  return {
    boxes: parity.reference('det.boxes_resized.0').data as Float32Array,
    labels,
    batchIndex: new BigInt64Array(labels.length).fill(BigInt(batchIndex)),
  };
}

/** An ImageDetections for the host post-processor (only the fields pasting reads are meaningful). */
export function imageDetections(imageIndex: number, originalSize: readonly [number, number], boxes: Float32Array, labels: ArrayLike<bigint>): ImageDetections {
  const d = boxes.length / 4;
  return {
    imageIndex,
    originalSize,
    resizedSize: originalSize,
    boxes,
    boxesResized: boxes,
    scores: new Float32Array(d),
    labels: Int32Array.from(labels, Number),
    extras: new Map(),
  };
}
