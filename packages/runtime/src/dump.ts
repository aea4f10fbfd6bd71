/**
 * Tensor dumps with the parity fixtures' names (`det.boxes.<i>`, `rpn.proposals.<i>`,
 * `transform.images`, every tapped intermediate …), so a run can be compared with any parity case's
 * `reference.safetensors` from outside the project. Per-image tensors are cut by each tap's
 * {@link TapLayout}; an image without detections gives zero-sized tensors.
 */
import {
  ConfigError,
  DETECTION_OUTPUTS,
  type HostTensor,
  PROPOSAL_OUTPUTS,
  type RcnnConfig,
  type TapLayout,
  elementCount,
  hostTensor,
  writeFileAtomic,
  writeSafetensors,
} from '@rcnn/core';
import type { BatchOutputs, ImageResult } from './detector.js';
import { readKeypoints, readMasks } from './extras.js';
import { requireOutput, sliceRows } from './outputs.js';

/** Name of the per-image tensors in the fixtures: `<name>.<image index>`. */
const perImage = (name: string, i: number): string => `${name}.${i}`;

/** Row `p` of a [N,…] tensor without the batch axis. */
function imageRow(t: HostTensor, p: number): HostTensor {
  const s = sliceRows(t, p, p + 1);
  return { ...s, dims: s.dims.slice(1) } as HostTensor;
}

/** The first `count` slots of image `p` of a [N,K,…] tensor. */
function proposalSlots(t: HostTensor, p: number, count: number): HostTensor {
  const row = imageRow(t, p);
  return sliceRows(row, 0, count);
}

/** The valid rows of a [N*K,…] tensor, image after image. */
function validProposalRows(t: HostTensor, counts: readonly number[]): HostTensor {
  const n = counts.length;
  const k = n === 0 ? 0 : t.dims[0]! / n;
  const parts = counts.map((c, i) => sliceRows(t, i * k, i * k + c));
  const total = counts.reduce((a, c) => a + c, 0);
  const rowSize = elementCount(t.dims.slice(1));
  const data = new (t.data.constructor as new (n: number) => HostTensor['data'])(total * rowSize);
  let o = 0;
  for (const p of parts) {
    (data as Float32Array).set(p.data as Float32Array, o);
    o += p.data.length;
  }
  return { dtype: t.dtype, dims: [total, ...t.dims.slice(1)], data } as HostTensor;
}

/** Layout of each model output in a dump (taps carry their own). */
function outputLayout(name: string): TapLayout | 'skip' {
  if (name === DETECTION_OUTPUTS.batchIndex) return 'skip';
  if (name.startsWith('det.')) return 'per-image-detections';
  if (name === PROPOSAL_OUTPUTS.counts) return 'whole';
  if (name.startsWith('rpn.')) return 'per-image-proposals';
  return 'whole';
}

/**
 * Every tensor of the results' batches under its fixture name. The results must come from
 * `predict(…, { keepOutputs: true })`. Whole-batch tensors (`transform.images`, `backbone.*`, …)
 * exist once per batch, so a dump takes all its images from one batch. Masks and keypoints come
 * from the post-processors' typed results, which carry their own threshold and sizes: the config
 * argument is no longer read (kept so existing calls compile).
 */
export function dumpTensors(results: readonly ImageResult[], _config?: RcnnConfig): Map<string, HostTensor> {
  const batches = [...new Set(results.map((r) => r.batch))];
  if (batches.some((b) => b === undefined)) throw new ConfigError('dumpTensors needs results of predict(…, { keepOutputs: true })');
  if (batches.length > 1) {
    throw new ConfigError(`a dump holds whole-batch tensors (transform.images, backbone.*), but the ${results.length} images ran in ${batches.length} batches`, {
      hint: 'run all images of a dump in one batch (--batch N with N >= the number of images)',
    });
  }
  const out = new Map<string, HostTensor>();
  if (batches.length === 0) return out;
  const batch = batches[0] as BatchOutputs;
  const byPosition = new Map(results.map((r) => [r.batchPosition, r]));
  out.set('transform.images', batch.prepared.images);
  out.set('transform.image_sizes', batch.prepared.imageSizes);
  const countsTensor = batch.outputs.get(PROPOSAL_OUTPUTS.counts);
  const counts = countsTensor ? Array.from(countsTensor.data as BigInt64Array, Number) : undefined;
  const needCounts = (name: string): number[] => {
    if (!counts) throw new ConfigError(`cannot dump "${name}" per image: the model has no ${PROPOSAL_OUTPUTS.counts} output (build with intermediates)`);
    return counts;
  };
  const entries: [string, TapLayout][] = [
    ...[...batch.outputs.keys()].filter((n) => !batch.taps.some((t) => t.name === n)).flatMap((n): [string, TapLayout][] => {
      const l = outputLayout(n);
      return l === 'skip' ? [] : [[n, l]];
    }),
    ...batch.taps.map((t): [string, TapLayout] => [t.name, t.layout]),
  ];
  for (const [name, layout] of entries) {
    const t = requireOutput(batch.outputs, name);
    switch (layout) {
      case 'whole':
        out.set(name, t);
        break;
      case 'proposal-rows':
        out.set(name, validProposalRows(t, needCounts(name)));
        break;
      default:
        batch.indices.forEach((index, p) => {
          if (!byPosition.has(p)) return;
          if (layout === 'per-image') out.set(perImage(name, index), imageRow(t, p));
          else if (layout === 'replicated-per-image') out.set(perImage(name, index), t);
          else if (layout === 'per-image-proposals') out.set(perImage(name, index), proposalSlots(t, p, needCounts(name)[p]!));
          else {
            const rows = batch.rows?.[p];
            if (!rows) throw new ConfigError(`cannot dump "${name}" per detection: the model has no detections`);
            out.set(perImage(name, index), sliceRows(t, rows[0], rows[1]));
          }
        });
    }
  }
  for (const r of results) addExtras(out, r);
  return out;
}

/** `det.masks.<i>` and `det.keypoints*.<i>` from what the host post-processors added. */
function addExtras(out: Map<string, HostTensor>, r: ImageResult): void {
  const det = r.detections;
  if (!det) return;
  const masks = readMasks(det);
  if (masks) out.set(perImage('det.masks', r.index), masks.binaryTensor());
  const kp = readKeypoints(det);
  if (kp) {
    const [d, k] = [kp.count, kp.numKeypoints];
    out.set(perImage('det.keypoints', r.index), hostTensor('float32', [d, k, 3], kp.keypoints));
    out.set(perImage('det.keypoints_resized', r.index), hostTensor('float32', [d, k, 3], kp.keypointsResized));
    out.set(perImage('det.keypoints_scores', r.index), hostTensor('float32', [d, k], kp.scores));
  }
}

/**
 * Writes {@link dumpTensors} to a safetensors file, with the config and weights in its metadata;
 * atomically (core's `writeFileAtomic`): a failed write leaves no truncated file.
 */
export async function writeDump(path: string, results: readonly ImageResult[], config: RcnnConfig, metadata: Readonly<Record<string, string>> = {}): Promise<number> {
  const tensors = dumpTensors(results, config);
  const bytes = writeSafetensors(tensors, {
    'rcnn.config': JSON.stringify(config),
    'rcnn.images': JSON.stringify(results.map((r) => r.source)),
    ...metadata,
  });
  await writeFileAtomic(path, bytes);
  return tensors.size;
}
