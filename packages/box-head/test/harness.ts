/**
 * Shared test harness: builds the box stage alone (2-MLP head + outputs) on graph inputs holding a
 * parity case's reference FPN features and proposals, runs it in ORT and splits the results.
 */
import { join } from 'node:path';
import {
  DETECTION_OUTPUTS,
  type Detections,
  type FeatureMaps,
  type HostTensor,
  type Proposals,
  type RcnnConfig,
  SLOTS,
  type WeightStore,
  createContainer,
  loadConfig,
  ops,
  originalScaleFactors,
  proposalsToRois,
  resolveImplementation,
} from '@rcnn/core';
import { type ParityCase, type TestContext, createTestContext, runModel } from '@rcnn/testing';
import { register } from '../src/index.js';

/** The FPN levels the RoI heads pool from ('0'..'3' = P2..P5). */
export const ROI_LEVEL_NAMES = ['0', '1', '2', '3'] as const;

/** Config of a case (its case.json as the only layer) plus `set` overrides. */
export function caseConfig(pc: ParityCase, set: readonly string[] = []): RcnnConfig {
  // The box-head tests feed the box head the reference features; the C4 case's res5 head (another
  // package) is not built, so its box head section is left out.
  return loadConfig({ layers: [join(pc.dir, 'case.json')], set, caseMapping: { unmappedHeads: 'omit' } });
}

/** Proposals of a batch in core's padded layout, as host tensors. */
export interface PackedProposals {
  readonly boxes: HostTensor<'float32'>;
  readonly scores: HostTensor<'float32'>;
  readonly valid: HostTensor<'bool'>;
  readonly counts: HostTensor<'int64'>;
  /** Real proposals per image. */
  readonly perImage: readonly number[];
  /** Slots per image. */
  readonly k: number;
}

/**
 * Packs per-image proposals ([P_i,4] boxes, [P_i] scores) into [N,K,…] with K = max P_i (or
 * `minK`); padding boxes are zeros, padding scores -inf.
 */
export function packProposals(images: readonly { boxes: Float32Array; scores: Float32Array }[], minK = 0): PackedProposals {
  const perImage = images.map((im) => im.scores.length);
  const n = images.length;
  const k = Math.max(minK, ...perImage, 0);
  const boxes = new Float32Array(n * k * 4);
  const scores = new Float32Array(n * k).fill(-Infinity);
  const valid = new Uint8Array(n * k);
  images.forEach((im, i) => {
    boxes.set(im.boxes, i * k * 4);
    scores.set(im.scores, i * k);
    valid.fill(1, i * k, i * k + perImage[i]!);
  });
  return {
    boxes: { dtype: 'float32', dims: [n, k, 4], data: boxes },
    scores: { dtype: 'float32', dims: [n, k], data: scores },
    valid: { dtype: 'bool', dims: [n, k], data: valid },
    counts: { dtype: 'int64', dims: [n], data: BigInt64Array.from(perImage, (c) => BigInt(c)) },
    perImage,
    k,
  };
}

/** The reference proposals of image `i` of a case. */
export function referenceProposals(pc: ParityCase, i: number): { boxes: Float32Array; scores: Float32Array } {
  return { boxes: pc.reference(`rpn.proposals.${i}`).data as Float32Array, scores: pc.reference(`rpn.proposal_scores.${i}`).data as Float32Array };
}

/** Number of images of a case. */
export function imageCount(pc: ParityCase): number {
  return (pc.json.images as unknown[]).length;
}

/** The image-batch feeds of a case: reference images and image sizes, original sizes from case.json. */
export function batchFeeds(pc: ParityCase, images?: readonly number[]): Record<string, HostTensor> {
  const pick = images ?? [...Array(imageCount(pc)).keys()];
  const all = pc.reference('transform.images');
  const sizes = pc.reference('transform.image_sizes').data as BigInt64Array;
  const meta = pc.json.images as { height: number; width: number }[];
  const per = all.dims.slice(1).reduce((a, b) => a * b, 1);
  const imgs = new Float32Array(pick.length * per);
  pick.forEach((src, i) => imgs.set((all.data as Float32Array).subarray(src * per, (src + 1) * per), i * per));
  return {
    images: { dtype: 'float32', dims: [pick.length, ...all.dims.slice(1)], data: imgs },
    image_sizes: { dtype: 'int64', dims: [pick.length, 2], data: BigInt64Array.from(pick.flatMap((s) => [sizes[2 * s], sizes[2 * s + 1]])) },
    original_sizes: { dtype: 'int64', dims: [pick.length, 2], data: BigInt64Array.from(pick.flatMap((s) => [BigInt(meta[s]!.height), BigInt(meta[s]!.width)])) },
  };
}

/** Feeds of the reference RoI levels `backbone.0`..`backbone.3` (optionally only some images). */
export function featureFeeds(pc: ParityCase, images?: readonly number[]): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const name of ROI_LEVEL_NAMES) {
    const t = pc.reference(`backbone.${name}`);
    if (!images) {
      feeds[`backbone.${name}`] = t;
      continue;
    }
    const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const out = new Float32Array(images.length * per);
    images.forEach((src, i) => out.set((t.data as Float32Array).subarray(src * per, (src + 1) * per), i * per));
    feeds[`backbone.${name}`] = { dtype: 'float32', dims: [images.length, ...t.dims.slice(1)], data: out };
  }
  return feeds;
}

/** Feeds of packed proposals under the stage graph's input names. */
export function proposalFeeds(p: PackedProposals): Record<string, HostTensor> {
  return { 'proposals.boxes': p.boxes, 'proposals.scores': p.scores, 'proposals.valid': p.valid, 'proposals.counts': p.counts };
}

/**
 * Builds the box stage (registry names from config) on graph inputs: `backbone.<0..3>` features,
 * `proposals.*` in core's Proposals layout; outputs `det.*` exactly as buildModel names and scales
 * them, plus every tap. Returns the ModelProto bytes.
 */
export function buildBoxStage(config: RcnnConfig, weights: WeightStore, channels: number): Uint8Array {
  const container = createContainer();
  register(container);
  const ctx = createTestContext(config, { weights, container });
  const g = ctx.graph;
  const features: FeatureMaps = ROI_LEVEL_NAMES.map((name, i) => ({
    name,
    blob: g.input(`backbone.${name}`, 'float32', ['N', channels, `H${name}`, `W${name}`]),
    channels,
    spatialScale: 2 ** -(2 + i),
    level: 2 + i,
  }));
  const proposals = proposalInputs(ctx);
  const head = resolveImplementation(container, SLOTS.roiBoxHead, config.FAST_RCNN.ROI_BOX_HEAD).value;
  const outputs = resolveImplementation(container, SLOTS.roiBoxOutputs, config.FAST_RCNN.OUTPUTS).value;
  const rois = proposalsToRois(g, proposals);
  const rep = g.withScope('box_head', () => head.build(ctx, features, rois));
  const det = g.withScope('box_outputs', () => outputs.build(ctx, rep, proposals));
  outputDetections(ctx, det);
  ctx.outputTaps();
  return g.toModelProto();
}

/** Declares `det.*` outputs exactly as buildModel does: resized boxes times f32(original) / f32(resized) per row. */
export function outputDetections(ctx: TestContext, det: Detections): void {
  const g = ctx.graph;
  g.withScope('det_outputs', () => {
    const scale = originalScaleFactors(g, ctx.batch.imageSizes, ctx.batch.originalSizes, det.batchIndex);
    g.output(ops.mul(g, det.boxes, scale, 'boxes_original'), DETECTION_OUTPUTS.boxes, 'float32');
    g.output(det.boxes, DETECTION_OUTPUTS.boxesResized, 'float32');
    g.output(det.scores, DETECTION_OUTPUTS.scores, 'float32');
    g.output(det.labels, DETECTION_OUTPUTS.labels, 'int64');
    g.output(det.batchIndex, DETECTION_OUTPUTS.batchIndex, 'int64');
  });
}

/** Graph inputs `proposals.*` in core's Proposals layout. */
export function proposalInputs(ctx: TestContext): Proposals {
  const g = ctx.graph;
  return {
    boxes: g.input('proposals.boxes', 'float32', ['N', 'K', 4]),
    scores: g.input('proposals.scores', 'float32', ['N', 'K']),
    valid: g.input('proposals.valid', 'bool', ['N', 'K']),
    counts: g.input('proposals.counts', 'int64', ['N']),
  };
}

/** Builds and runs the box stage on a case's reference features and the given proposals. */
export async function runBoxStage(
  pc: ParityCase,
  config: RcnnConfig,
  weights: WeightStore,
  proposals: PackedProposals,
  images?: readonly number[],
): Promise<Map<string, HostTensor>> {
  const channels = pc.reference('backbone.0').dims[1]!;
  const model = buildBoxStage(config, weights, channels);
  return runModel(model, { ...batchFeeds(pc, images), ...featureFeeds(pc, images), ...proposalFeeds(proposals) });
}

/** Rows `[start, end)` of a flat tensor's first axis. */
export function rows(t: HostTensor, start: number, end: number): HostTensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const data = t.data.subarray(start * per, end * per);
  return { dtype: t.dtype, dims: [end - start, ...t.dims.slice(1)], data } as HostTensor;
}

/** Concatenates the rows of `[start, end)` ranges of a tensor's first axis. */
export function gatherRows(t: HostTensor, ranges: readonly (readonly [number, number])[]): HostTensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const total = ranges.reduce((a, [s, e]) => a + e - s, 0);
  const out = new Float32Array(total * per);
  let at = 0;
  for (const [s, e] of ranges) {
    out.set((t.data as Float32Array).subarray(s * per, e * per), at);
    at += (e - s) * per;
  }
  return { dtype: 'float32', dims: [total, ...t.dims.slice(1)], data: out };
}

/** The valid rows of a 'proposal-rows' tap ([N*K,…]): image i's first counts[i] slots, in image order. */
export function validProposalRows(t: HostTensor, p: PackedProposals): HostTensor {
  return gatherRows(
    t,
    p.perImage.map((c, i) => [i * p.k, i * p.k + c] as const),
  );
}

/** Rows of each image in the flattened detections (batch index is non-decreasing; checked). */
export function detectionRanges(batchIndex: HostTensor, images: number): [number, number][] {
  const b = Array.from(batchIndex.data as BigInt64Array, Number);
  for (let i = 1; i < b.length; i++) if (b[i]! < b[i - 1]!) throw new Error(`det.batch_index decreases at row ${i}`);
  return [...Array(images).keys()].map((i) => [b.indexOf(i) === -1 ? b.filter((x) => x < i).length : b.indexOf(i), b.filter((x) => x <= i).length]);
}

/** Max |a - b| over two float tensors of equal shape. */
export function maxAbsDiff(a: HostTensor, b: HostTensor): number {
  if (a.dims.join(',') !== b.dims.join(',')) return Infinity;
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}
