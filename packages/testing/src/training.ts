/**
 * Comparing a training dump (`rcnn train-step --dump`) with a training fixture's reference, with
 * the tolerances of the training issues: every `loss.*` |Δ| ≤ 1e-4·max(1, |ref|); intermediates
 * by the inference parity rules (indices, labels and matches exact, boxes ≤ 1e-2 px, proposals as
 * a set); every `grad.*` max|Δ| ≤ 1e-3·max|ref| and the set of gradients equal to the reference's.
 */
import type { HostTensor } from '@rcnn/core';
import { type Verdict, compareDense, compareExact, compareProposals } from './compare.js';

/** Tolerances of {@link compareTrainingDump}. */
export interface TrainingTolerances {
  /** Relative loss tolerance: |Δ| ≤ loss·max(1, |ref|). */
  readonly loss: number;
  /** Box coordinates (anchors, proposals, GT boxes, keypoints): max|Δ| ≤ boxPx. */
  readonly boxPx: number;
  /** Other float intermediates (logits, regression and mask targets): max|Δ| ≤ dense·max(1, max|ref|). */
  readonly dense: number;
  /** Gradients: max|Δ| ≤ grad·max(1e-6, max|ref|) per tensor. */
  readonly grad: number;
  /** Gradients that are 0 in exact arithmetic (fixture diagnostics): max|Δ| ≤ this, absolutely. */
  readonly gradAbsoluteForZero: number;
}

/** The tolerances. */
export const TRAINING_TOLERANCES: TrainingTolerances = { loss: 1e-4, boxPx: 1e-2, dense: 1e-4, grad: 1e-3, gradAbsoluteForZero: 1e-6 };

const BOX_LIKE = /^(train\.rpn\.anchors|train\.roi\.proposals_with_gt|train\.roi\.sampled_proposals|train\.target\.boxes_resized|train\.target\.keypoints_resized)\./;

function values(t: HostTensor): ArrayLike<number> {
  return t.dtype === 'int64' ? Array.from(t.data as BigInt64Array, Number) : (t.data as ArrayLike<number>);
}

/** Dense comparison where the non-finite pattern (e.g. -inf regression targets of an image without GT) must agree exactly. */
function compareFinite(name: string, actual: HostTensor, reference: HostTensor, relTol: number): Verdict {
  const a = values(actual);
  const r = values(reference);
  if (actual.dims.join(',') === reference.dims.join(',')) {
    for (let i = 0; i < r.length; i++) {
      if (!Number.isFinite(r[i]) || !Number.isFinite(a[i])) {
        if (!Object.is(a[i], r[i])) return { name, pass: false, error: Infinity, detail: `non-finite pattern differs at flat ${i}: ${a[i]} vs ${r[i]}` };
      }
    }
  }
  const finite = (t: HostTensor, v: ArrayLike<number>): HostTensor => ({ dtype: 'float32', dims: t.dims, data: Float32Array.from(v, (x) => (Number.isFinite(x) ? x : 0)) }) as HostTensor;
  return compareDense(name, finite(actual, a), finite(reference, r), relTol);
}

/** Absolute comparison: max|Δ| ≤ tol. */
function compareAbsolute(name: string, actual: HostTensor, reference: HostTensor, tol: number): Verdict {
  if (actual.dims.join(',') !== reference.dims.join(',')) return { name, pass: false, error: Infinity, detail: `shape [${actual.dims}] != reference [${reference.dims}]` };
  const a = values(actual);
  const r = values(reference);
  let d = 0;
  for (let i = 0; i < r.length; i++) d = Math.max(d, Number.isNaN(a[i]! - r[i]!) ? Infinity : Math.abs(a[i]! - r[i]!));
  return { name, pass: d <= tol, error: d, detail: `max|a-b| = ${d.toExponential(3)} (tol ${tol.toExponential(1)})` };
}

/** Per-tensor gradient rule: max|Δ| ≤ tol·max(1e-6, max|ref|). */
export function compareGradient(name: string, actual: HostTensor, reference: HostTensor, tol = TRAINING_TOLERANCES.grad): Verdict {
  let maxRef = 0;
  const r = values(reference);
  for (let i = 0; i < r.length; i++) maxRef = Math.max(maxRef, Math.abs(r[i]!));
  const v = compareAbsolute(name, actual, reference, tol * Math.max(1e-6, maxRef));
  return { ...v, error: v.error / Math.max(1e-6, maxRef), detail: `${v.detail}, relative to max|ref| ${maxRef.toExponential(3)}: ${(v.error / Math.max(1e-6, maxRef)).toExponential(3)}` };
}

/** Options of {@link compareTrainingDump}. */
export interface TrainingDumpCheck {
  /** Compare `grad.*` too (and require the same set of gradients). */
  readonly gradients?: boolean;
  /** Gradients that are 0 in exact arithmetic, compared absolutely. */
  readonly mathematicallyZero?: readonly string[];
  readonly tolerances?: TrainingTolerances;
}

/**
 * Compares every reference tensor the dump is expected to hold. Missing `loss.*` (and with
 * `gradients`, missing or extra `grad.*`) fail; `target.*` (inputs) are skipped; other reference
 * tensors are compared when the dump has them. Returns one verdict per tensor.
 */
export function compareTrainingDump(dump: ReadonlyMap<string, HostTensor>, reference: ReadonlyMap<string, HostTensor>, check: TrainingDumpCheck = {}): Verdict[] {
  const tol = check.tolerances ?? TRAINING_TOLERANCES;
  const zero = new Set(check.mathematicallyZero ?? []);
  const verdicts: Verdict[] = [];
  for (const [name, ref] of reference) {
    if (name.startsWith('target.')) continue;
    const ours = dump.get(name);
    if (name.startsWith('grad.') && !check.gradients) continue;
    if (!ours) {
      if (name.startsWith('loss.') || name.startsWith('grad.')) verdicts.push({ name, pass: false, error: Infinity, detail: 'missing from the dump' });
      continue;
    }
    if (name.startsWith('loss.')) {
      const a = (ours.data as Float32Array)[0]!;
      const r = (ref.data as Float32Array)[0]!;
      const d = Math.abs(a - r);
      const t = tol.loss * Math.max(1, Math.abs(r));
      verdicts.push({ name, pass: d <= t, error: d, detail: `${a} vs ${r}: |Δ| = ${d.toExponential(3)} (tol ${t.toExponential(3)})` });
    } else if (name.startsWith('grad.')) {
      verdicts.push(zero.has(name) ? compareAbsolute(name, ours, ref, tol.gradAbsoluteForZero) : compareGradient(name, ours, ref, tol.grad));
    } else if (/^train\.rpn\.proposals\.\d+$/.test(name)) {
      const scores = name.replace('proposals', 'proposal_scores');
      const refScores = reference.get(scores);
      const ourScores = dump.get(scores);
      if (refScores && ourScores) verdicts.push(compareProposals(name, ours, ourScores, ref, refScores, 0.999, tol.dense));
    } else if (/^train\.rpn\.proposal_scores\./.test(name)) {
      continue; // compared with the proposals, as a set
    } else if (ref.dtype === 'int64' || ref.dtype === 'uint8') {
      verdicts.push(compareExact(name, ours, ref));
    } else if (BOX_LIKE.test(name)) {
      verdicts.push(compareAbsolute(name, ours, ref, tol.boxPx));
    } else {
      verdicts.push(compareFinite(name, ours, ref, tol.dense));
    }
  }
  if (check.gradients) {
    for (const name of dump.keys()) {
      if (name.startsWith('grad.') && !reference.has(name)) verdicts.push({ name, pass: false, error: Infinity, detail: 'a gradient the reference does not have (frozen in torchvision)' });
    }
  }
  return verdicts;
}
