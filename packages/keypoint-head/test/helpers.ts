/**
 * Test harness: builds the keypoint head alone on graph inputs (reference FPN features and
 * detections), runs it in ORT and turns host arrays into the runtime's ImageDetections.
 */
import {
  type Detections,
  type FeatureMap,
  type HostTensor,
  type ImageDetections,
  type RcnnConfig,
  type WeightStore,
  loadConfig,
} from '@rcnn/core';
import { type ParityCase, createTestContext, loadParityCase, publicCaseDir, runModel } from '@rcnn/testing';
import { keypointRcnnHeads } from '../src/index.js';

/** The public Keypoint R-CNN case. */
export const KEYPOINT_CASE = 'keypointrcnn_tiny';

/** RoI levels of the FPN cases: names '0'..'3' are P2..P5. */
export const ROI_LEVELS = ['0', '1', '2', '3'] as const;

/** The case and its config (case.json as a config layer, as the runtime loads it). */
export function keypointCase(): { pc: ParityCase; config: RcnnConfig } {
  const dir = publicCaseDir(KEYPOINT_CASE);
  return { pc: loadParityCase(dir), config: loadConfig({ layers: [`${dir}/case.json`] }) };
}

/** A float32 host tensor. */
export const f32 = (dims: readonly number[], data: Float32Array | readonly number[]): HostTensor<'float32'> => ({
  dtype: 'float32',
  dims: [...dims],
  data: data instanceof Float32Array ? data : Float32Array.from(data),
});

/** An int64 host tensor. */
export const i64 = (dims: readonly number[], data: readonly number[]): HostTensor<'int64'> => ({
  dtype: 'int64',
  dims: [...dims],
  data: BigInt64Array.from(data, (v) => BigInt(v)),
});

/** Graph inputs and feeds of one keypoint-head run. */
export interface HeadRun {
  readonly heatmaps: HostTensor;
  readonly logits: HostTensor;
  readonly outputs: Map<string, HostTensor>;
}

/**
 * Builds the head on inputs `feat.<name>` (features, levels '0'..'3') and `det.*` (detections),
 * runs it and returns `det.keypoint_heatmaps` and the tapped `roi.keypoint_logits`.
 */
export async function runHead(
  config: RcnnConfig,
  weights: WeightStore,
  features: readonly HostTensor[],
  detections: { boxes: Float32Array; labels: readonly number[]; batchIndex: readonly number[] },
): Promise<HeadRun> {
  const ctx = createTestContext(config, { weights });
  const g = ctx.graph;
  const maps: FeatureMap[] = features.map((t, i) => ({
    name: ROI_LEVELS[i]!,
    blob: g.input(`feat.${ROI_LEVELS[i]}`, 'float32', ['N', t.dims[1]!, t.dims[2]!, t.dims[3]!]),
    channels: t.dims[1]!,
    spatialScale: 2 ** -(2 + i),
    level: 2 + i,
  }));
  const det: Detections = {
    boxes: g.input('det.in.boxes', 'float32', ['D', 4]),
    scores: g.input('det.in.scores', 'float32', ['D']),
    labels: g.input('det.in.labels', 'int64', ['D']),
    batchIndex: g.input('det.in.batch_index', 'int64', ['D']),
  };
  const { heatmaps } = g.withScope('keypoint_head', () => keypointRcnnHeads.build(ctx, maps, det));
  g.output(heatmaps, 'det.keypoint_heatmaps', 'float32');
  ctx.outputTaps();
  const d = detections.labels.length;
  const n = features[0]!.dims[0]!;
  const feeds: Record<string, HostTensor> = {
    images: f32([n, 3, 32, 32], new Float32Array(n * 3 * 32 * 32)),
    image_sizes: i64([n, 2], Array.from({ length: 2 * n }, () => 32)),
    original_sizes: i64([n, 2], Array.from({ length: 2 * n }, () => 32)),
    'det.in.boxes': f32([d, 4], detections.boxes),
    'det.in.scores': f32([d], new Float32Array(d).fill(1)),
    'det.in.labels': i64([d], detections.labels),
    'det.in.batch_index': i64([d], detections.batchIndex),
  };
  features.forEach((t, i) => (feeds[`feat.${ROI_LEVELS[i]}`] = t));
  const outputs = await runModel(g.toModelProto(), feeds);
  return { heatmaps: outputs.get('det.keypoint_heatmaps')!, logits: outputs.get('roi.keypoint_logits')!, outputs };
}

/** The reference features '0'..'3' of image 0 of a case. */
export function referenceFeatures(pc: ParityCase): HostTensor<'float32'>[] {
  return ROI_LEVELS.map((name) => pc.reference(`backbone.${name}`) as HostTensor<'float32'>);
}

/** Concatenates [1,…] tensors along the batch axis. */
export function concatBatch(parts: readonly HostTensor<'float32'>[]): HostTensor<'float32'> {
  const data = new Float32Array(parts.reduce((s, p) => s + p.data.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p.data, o);
    o += p.data.length;
  }
  return f32([parts.reduce((s, p) => s + p.dims[0]!, 0), ...parts[0]!.dims.slice(1)], data);
}

/** Multiplies every element by `s` (a second, different image with the same shapes). */
export function scaled(t: HostTensor<'float32'>, s: number): HostTensor<'float32'> {
  return f32(t.dims, t.data.map((v) => v * s));
}

/** ImageDetections of one image as the runtime builds them (only what the decoder reads matters). */
export function imageDetections(imageIndex: number, boxesResized: Float32Array, resizedSize: [number, number], originalSize: [number, number]): ImageDetections {
  const n = boxesResized.length / 4;
  const rh = Math.fround(originalSize[0] / resizedSize[0]);
  const rw = Math.fround(originalSize[1] / resizedSize[1]);
  return {
    imageIndex,
    originalSize,
    resizedSize,
    boxes: boxesResized.map((v, i) => v * (i % 2 === 0 ? rw : rh)),
    boxesResized,
    scores: new Float32Array(n).fill(0.9),
    labels: new Int32Array(n).fill(1),
    extras: new Map(),
  };
}
