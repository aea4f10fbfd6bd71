/**
 * torchvision `RoIHeads.select_training_samples` on the host: GT boxes appended to each image's
 * detached proposals, matching without low-quality matches, balanced sampling (drawn or
 * injected), rows kept in ascending index order. The IoU follows MODEL.LEGACY_PLUS_ONE (Detectron's
 * +1 widths). Proposals carry no gradient (torchvision detaches
 * them), so doing this on the host changes no gradient.
 */
import type { RcnnConfig } from '../config/config.js';
import { type HostTensor, hostTensor } from '../graph/dtypes.js';
import type { HostTargets, RoiImageSample, SamplingSource } from '../model/contracts.js';
import { type BalancedSample, boxIouFloat32, checkInjectedSample, matchBoxes, sampleBalanced } from './matching.js';
import type { ResizedTargets } from './targets.js';
import { at } from '../errors.js';

/** Names of the graph inputs the training build declares for the sampled RoIs. */
export const ROI_TRAINING_INPUTS = {
  boxes: 'train.roi.boxes',
  batchIndex: 'train.roi.batch_index',
  labels: 'train.roi.labels',
  positiveBoxes: 'train.roi.positive_boxes',
  positiveBatchIndex: 'train.roi.positive_batch_index',
  positiveLabels: 'train.roi.positive_labels',
} as const;

/** int64 host tensor from numbers. */
export function int64Tensor(values: ArrayLike<number>, dims: readonly number[] = [values.length]): HostTensor<'int64'> {
  return hostTensor('int64', dims, toInt64Array(values));
}

/** Whether the platform stores integers little-endian (the int32-pair fast path of {@link toInt64Array}). */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Integers as an int64 array. Values in the int32 range (anchor and row indices, labels) are written
 * as two 32-bit words — no BigInt per element, which made a 200k-anchor match list the largest host
 * cost of the RPN targets; others go through BigInt. Non-integers fail (BigInt throws).
 */
function toInt64Array(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]!);
    return out;
  }
  const words = new Int32Array(out.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if ((v | 0) === v) {
      words[2 * i] = v;
      words[2 * i + 1] = v < 0 ? -1 : 0;
    } else {
      out[i] = BigInt(v);
    }
  }
  return out;
}

/** Rows `index` of a [M*width] float32 array. */
export function pickRows(data: Float32Array, index: ArrayLike<number>, width: number): Float32Array {
  const out = new Float32Array(index.length * width);
  for (let i = 0; i < index.length; i++) out.set(data.subarray(index[i]! * width, (index[i]! + 1) * width), i * width);
  return out;
}

/** The RoI samples of a batch and what goes with them. */
export interface RoiSampling {
  readonly samples: RoiImageSample[];
  /** Feeds of {@link ROI_TRAINING_INPUTS} and fixture-named intermediates (`train.roi.*`). */
  readonly host: HostTargets;
}

/** Matches and samples the RoIs of every image (see module doc); `proposals[i]` is [P*4] resized-image pixels. */
export function sampleRois(proposals: readonly Float32Array[], targets: readonly ResizedTargets[], config: RcnnConfig, sampling: SamplingSource): RoiSampling {
  const t = config.TRAIN;
  const samples: RoiImageSample[] = [];
  const intermediates: Record<string, HostTensor> = {};
  const all = { boxes: [] as Float32Array[], batch: [] as number[], labels: [] as number[], posBoxes: [] as Float32Array[], posBatch: [] as number[], posLabels: [] as number[] };
  proposals.forEach((props, i) => {
    const gt = at(targets, i, 'targets');
    const g = gt.labels.length;
    const rows = t.ADD_GT_PROPOSALS ? Float32Array.from([...props, ...gt.boxes]) : props;
    const m = rows.length / 4;
    const matchedGt = matchBoxes(boxIouFloat32(gt.boxes, rows, config.MODEL.LEGACY_PLUS_ONE), g, m, { high: t.FG_THRESH, low: t.BG_THRESH_HI, allowLowQualityMatches: false });
    const labels = Int32Array.from(matchedGt, (j) => (j >= 0 ? gt.labels[j]! : j === -1 ? 0 : -1));
    const kinds = Int8Array.from(labels, (l) => (l > 0 ? 1 : l === 0 ? 0 : -1));
    const what = `RoI sample of image ${i}`;
    const injected = sampling.injected?.[i];
    const sample: BalancedSample = injected
      ? checkInjectedSample(injected, kinds, what)
      : sampleBalanced(kinds, { batchSizePerImage: t.BATCH_SIZE_PER_IM, positiveFraction: t.FG_FRACTION }, sampling.rand);
    const sampled = Int32Array.from([...sample.positive, ...sample.negative]).sort();
    const positives = sampled.filter((r) => labels[r]! > 0);
    samples.push({ rows, matchedGt, labels, sampled, positives });

    const sampledBoxes = pickRows(rows, sampled, 4);
    intermediates[`train.roi.proposals_with_gt.${i}`] = hostTensor('float32', [m, 4], rows);
    intermediates[`train.roi.matched_gt.${i}`] = int64Tensor(matchedGt);
    intermediates[`train.roi.sampled_pos.${i}`] = int64Tensor(sample.positive);
    intermediates[`train.roi.sampled_neg.${i}`] = int64Tensor(sample.negative);
    intermediates[`train.roi.sampled_proposals.${i}`] = hostTensor('float32', [sampled.length, 4], sampledBoxes);
    intermediates[`train.roi.labels.${i}`] = int64Tensor(Array.from(sampled, (r) => labels[r]!));
    all.boxes.push(sampledBoxes);
    for (const r of sampled) {
      all.batch.push(i);
      all.labels.push(labels[r]!);
    }
    all.posBoxes.push(pickRows(rows, positives, 4));
    for (const r of positives) {
      all.posBatch.push(i);
      all.posLabels.push(labels[r]!);
    }
  });
  const cat = (parts: Float32Array[]): Float32Array => Float32Array.from(parts.flatMap((p) => Array.from(p)));
  const feeds: Record<string, HostTensor> = {
    [ROI_TRAINING_INPUTS.boxes]: hostTensor('float32', [all.batch.length, 4], cat(all.boxes)),
    [ROI_TRAINING_INPUTS.batchIndex]: int64Tensor(all.batch),
    [ROI_TRAINING_INPUTS.labels]: int64Tensor(all.labels),
    [ROI_TRAINING_INPUTS.positiveBoxes]: hostTensor('float32', [all.posBatch.length, 4], cat(all.posBoxes)),
    [ROI_TRAINING_INPUTS.positiveBatchIndex]: int64Tensor(all.posBatch),
    [ROI_TRAINING_INPUTS.positiveLabels]: int64Tensor(all.posLabels),
  };
  return { samples, host: { feeds, intermediates } };
}
