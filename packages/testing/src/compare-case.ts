/**
 * Compares the tensors rcnn-node produced for a parity case (fixture names) with the case's
 * reference, choosing the comparison and tolerance by tensor name:
 * dense tensors max|a−b| ≤ 1e-4·max(1, max|ref|); proposals matched with IoU ≥ 0.999 and scores
 * ≤ 1e-4; detections matched one-to-one (boxes ≤ 1e-2 px, scores ≤ 1e-4, labels equal); binary
 * masks IoU ≥ 0.99; ≥ 99 % of keypoints within 1 px. Per-detection tensors are compared through
 * the detection matching, so a different order of equal-score detections is not an error.
 */
import type { HostTensor } from '@rcnn/core';
import { type Verdict, compareDense, compareDetections, compareExact, compareKeypoints, compareMasks, compareProposals } from './compare.js';
import type { ParityCase } from './fixtures.js';

/** Tensors produced by rcnn-node, by fixture name. */
export type ProducedTensors = ReadonlyMap<string, HostTensor>;

/** A verdict and the reference tensors it judged. */
export type CaseVerdict = Verdict & { readonly covers: readonly string[] };

/** Rows [start, end) of `t` along axis 0, reordered by `order` (indices into those rows). */
function takeRows(t: HostTensor, order: ArrayLike<number>): HostTensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const Ctor = t.data.constructor as { new (n: number): HostTensor['data'] };
  const out = new Ctor(order.length * per);
  for (let i = 0; i < order.length; i++) {
    (out as Float32Array).set((t.data as Float32Array).subarray(order[i]! * per, (order[i]! + 1) * per), i * per);
  }
  return { dtype: t.dtype, dims: [order.length, ...t.dims.slice(1)], data: out } as HostTensor;
}

const missing = (name: string): Verdict => ({ name, pass: false, error: Infinity, detail: 'not produced by rcnn-node' });

/** Every verdict for one case; each reference tensor is judged exactly once. */
export function compareCase(c: ParityCase, produced: ProducedTensors): CaseVerdict[] {
  const verdicts: CaseVerdict[] = [];
  const judged = new Set<string>();
  // Everything judged since the previous verdict is what that verdict covers.
  let pending: string[] = [];
  const push = (v: Verdict): void => {
    verdicts.push({ ...v, covers: pending });
    pending = [];
  };
  const judge = (...names: string[]): void => {
    for (const n of names) {
      if (judged.has(n)) continue;
      judged.add(n);
      pending.push(n);
    }
  };
  const ref = (n: string): HostTensor => c.reference(n);
  const got = (n: string): HostTensor | undefined => produced.get(n);
  const names = c.referenceNames();
  const images = names.filter((n) => /^det\.boxes\.\d+$/.test(n)).map((n) => Number(n.split('.')[2]));

  // Detections first: their matching orders every per-detection tensor.
  const matchings = new Map<number, Int32Array>();
  for (const i of images.sort((a, b) => a - b)) {
    for (const space of ['boxes', 'boxes_resized'] as const) {
      const name = `det.${space}.${i}`;
      if (!c.hasReference(name)) continue;
      const parts = [name, `det.scores.${i}`, `det.labels.${i}`];
      judge(...parts);
      const [b, s, l] = parts.map(got);
      if (!b || !s || !l) {
        push(missing(parts.filter((p) => !got(p)).join(', ')));
        continue;
      }
      const v = compareDetections(`${name} (+scores, labels)`, { boxes: b, scores: s, labels: l }, { boxes: ref(name), scores: ref(`det.scores.${i}`), labels: ref(`det.labels.${i}`) });
      push(v);
      if (space === 'boxes' || !matchings.has(i)) matchings.set(i, v.matching);
    }
  }
  // Global row order of all detections (image order) for roi.mask_logits / roi.keypoint_logits.
  const globalOrder: number[] = [];
  let offset = 0;
  for (const i of [...matchings.keys()].sort((a, b) => a - b)) {
    const m = matchings.get(i)!;
    for (const j of m) globalOrder.push(j < 0 ? -1 : offset + j);
    offset += m.length;
  }
  const canReorder = !globalOrder.includes(-1);

  // Proposals next: their matching orders the per-proposal rows (roi.box_features, …), which
  // follow proposal order, so equal-score proposals swapped by float rounding are not errors.
  const proposalOrder: number[] = [];
  let proposalOffset = 0;
  let proposalsAligned = true;
  const proposalImages = names.filter((n) => /^rpn\.proposals\.\d+$/.test(n)).map((n) => Number(n.split('.')[2])).sort((a, b) => a - b);
  for (const i of proposalImages) {
    const name = `rpn.proposals.${i}`;
    const scoresName = `rpn.proposal_scores.${i}`;
    judge(name, scoresName);
    const [b, s] = [got(name), got(scoresName)];
    if (!b || !s) {
      push(missing(name));
      proposalsAligned = false;
      continue;
    }
    const v = compareProposals(`${name} (+scores)`, b, s, ref(name), ref(scoresName));
    push(v);
    if (v.matching.includes(-1)) proposalsAligned = false;
    for (const j of v.matching) proposalOrder.push(proposalOffset + j);
    proposalOffset += v.matching.length;
  }
  const proposalRows = new Set(['roi.box_features', 'roi.class_logits', 'roi.box_regression']);

  for (const name of names) {
    if (judged.has(name)) continue;
    judge(name);
    const r = ref(name);
    const perImage = /\.(\d+)$/.exec(name);
    const index = perImage ? Number(perImage[1]) : -1;
    const a = got(name);
    if (!a) {
      push(missing(name));
      continue;
    }
    const matching = index >= 0 ? matchings.get(index) : undefined;
    const usable = matching && !matching.includes(-1) ? matching : undefined;
    if (name === 'transform.image_sizes') push(compareExact(name, a, r));
    else if (proposalRows.has(name) && proposalsAligned && proposalOrder.length === a.dims[0]) push(compareDense(name, takeRows(a, proposalOrder), r));
    else if (/^det\.masks\.\d+$/.test(name)) push(compareMasks(name, a, r, 0.99, usable));
    else if (/^det\.keypoints(_resized)?\.\d+$/.test(name)) {
      const scoresName = `det.keypoints_scores.${index}`;
      judge(scoresName);
      const s = got(scoresName);
      push(s ? compareKeypoints(`${name} (+scores)`, { keypoints: a, scores: s }, { keypoints: r, scores: ref(scoresName) }, 1, 0.99, 1e-3, usable) : missing(scoresName));
    } else if (/^det\.keypoints_scores\.\d+$/.test(name)) {
      // judged with the keypoints (the first of det.keypoints / det.keypoints_resized that comes)
      if (!names.some((n) => n === `det.keypoints.${index}` || n === `det.keypoints_resized.${index}`)) push(missing(`${name} (no keypoints reference)`));
    } else if (/^det\.mask_probs\.\d+$/.test(name)) {
      push(compareDense(name, usable ? takeRows(a, usable) : a, r));
    } else if ((name === 'roi.mask_logits' || name === 'roi.keypoint_logits') && canReorder && globalOrder.length === a.dims[0]) {
      push(compareDense(name, takeRows(a, globalOrder), r));
    } else push(compareDense(name, a, r));
  }
  return verdicts;
}
