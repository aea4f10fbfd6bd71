/**
 * Compares an `rcnn predict --dump` of ONE image with a Detectron2 reference
 * (`fixtures/d2/<case>/reference.safetensors`, written by Detectron2's `DefaultPredictor`; see its
 * README): detections matched one-to-one (boxes ≤ 1e-2 px, scores ≤ 1e-4, labels equal, in original
 * and resized pixels), masks IoU ≥ 0.99 and mask probabilities, keypoints (≥ 99 % within 1 px,
 * logits ≤ 1e-3 where matched) and Detectron2's keypoint score (third column, ≤ 1e-4 relative),
 * and the RPN proposals matched at IoU ≥ 0.999 with sigmoid(objectness) ≤ 1e-4.
 *
 * A dump of one image names its tensors `.0`; the reference names them by the image's index.
 */
import type { HostTensor } from '@rcnn/core';
import { type Verdict, compareDense, compareDetections, compareKeypoints, compareMasks, compareProposals } from '@rcnn/testing';

/** Tensors by name. */
export type NamedTensors = ReadonlyMap<string, HostTensor>;

function rows(t: HostTensor, order: ArrayLike<number>): HostTensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const Ctor = t.data.constructor as { new (n: number): HostTensor['data'] };
  const out = new Ctor(order.length * per);
  for (let i = 0; i < order.length; i++) (out as Float32Array).set((t.data as Float32Array).subarray(order[i]! * per, (order[i]! + 1) * per), i * per);
  return { dtype: t.dtype, dims: [order.length, ...t.dims.slice(1)], data: out } as HostTensor;
}

function f32(values: ArrayLike<number>, dims: readonly number[]): HostTensor {
  return { dtype: 'float32', dims: [...dims], data: Float32Array.from(values) } as HostTensor;
}

/** Detectron2's keypoint score column (third) of matched keypoints, relative error ≤ `relTol`. */
function compareKeypointScores(name: string, actual: HostTensor, reference: HostTensor, matching: Int32Array, relTol = 1e-4): Verdict {
  const [d = 0, k = 0] = reference.dims; // [D, K, 3]
  const a = actual.data as Float32Array;
  const r = reference.data as Float32Array;
  let worst = 0;
  for (let i = 0; i < d; i++) {
    for (let q = 0; q < k; q++) {
      const ref = r[(i * k + q) * 3 + 2]!;
      const got = a[(matching[i]! * k + q) * 3 + 2]!;
      worst = Math.max(worst, Math.abs(got - ref) / Math.max(1, Math.abs(ref)));
    }
  }
  return { name, pass: worst <= relTol, error: worst, detail: `${d * k} keypoint scores, worst relative error ${worst.toExponential(2)} (max ${relTol})` };
}

/** Every verdict for image `index` of a Detectron2 reference against a one-image dump. */
export function compareDetectron2Image(produced: NamedTensors, reference: NamedTensors, index: number): Verdict[] {
  const got = (n: string): HostTensor | undefined => produced.get(`${n}.0`);
  const ref = (n: string): HostTensor => {
    const t = reference.get(`${n}.${index}`);
    if (!t) throw new Error(`reference has no ${n}.${index}`);
    return t;
  };
  const verdicts: Verdict[] = [];
  const missing = (n: string): Verdict => ({ name: n, pass: false, error: Infinity, detail: 'not produced' });
  const [boxes, scores, labels, resized] = ['det.boxes', 'det.scores', 'det.labels', 'det.boxes_resized'].map(got);
  if (!boxes || !scores || !labels || !resized) return [missing('det.boxes/scores/labels/boxes_resized')];
  const det = compareDetections(`det.boxes.${index} (+scores, labels)`, { boxes, scores, labels }, { boxes: ref('det.boxes'), scores: ref('det.scores'), labels: ref('det.labels') });
  verdicts.push(det);
  verdicts.push(compareDetections(`det.boxes_resized.${index}`, { boxes: resized, scores, labels }, { boxes: ref('det.boxes_resized'), scores: ref('det.scores'), labels: ref('det.labels') }));
  const matching = det.matching;
  const aligned = !matching.includes(-1);
  if (reference.has(`det.masks.${index}`)) {
    const masks = got('det.masks');
    const probs = got('det.mask_probs');
    verdicts.push(masks ? compareMasks(`det.masks.${index}`, masks, ref('det.masks'), 0.99, aligned ? matching : undefined) : missing('det.masks'));
    verdicts.push(probs && aligned ? compareDense(`det.mask_probs.${index}`, rows(probs, matching), ref('det.mask_probs')) : missing('det.mask_probs (aligned)'));
  }
  if (reference.has(`det.keypoints.${index}`)) {
    const kp = got('det.keypoints');
    const logits = got('det.keypoints_scores');
    if (!kp || !logits || !aligned) verdicts.push(missing('det.keypoints (aligned)'));
    else {
      verdicts.push(compareKeypoints(`det.keypoints.${index} (+logits)`, { keypoints: kp, scores: logits }, { keypoints: ref('det.keypoints'), scores: ref('det.keypoints_logits') }, 1, 0.99, 1e-3, matching));
      verdicts.push(compareKeypointScores(`det.keypoints.${index} score column`, kp, ref("det.keypoints"), matching, 1e-3));
    }
  }
  const proposals = got('rpn.proposals');
  const proposalScores = got('rpn.proposal_scores');
  if (!proposals || !proposalScores) verdicts.push(missing('rpn.proposals (dump with --dump-intermediates)'));
  else {
    const logits = ref('rpn.objectness_logits').data as Float32Array;
    const sigmoid = f32(Array.from(logits, (x) => 1 / (1 + Math.exp(-x))), [logits.length]);
    verdicts.push(compareProposals(`rpn.proposals.${index} (+scores)`, proposals, proposalScores, ref('rpn.proposals'), sigmoid));
  }
  return verdicts;
}
