/**
 * A straightforward host (TypeScript) re-statement of torchvision's test-time RPN post-processing
 * (`AnchorGenerator` + `RegionProposalNetwork.filter_proposals`), image by image, written
 * independently of the graph code so that tests can check the graph against it.
 */
import type { HostTensor } from '@rcnn/core';

const f = Math.fround;

/** Settings of the reference filter (the TEST.RPN_* keys). */
export interface ReferenceSettings {
  readonly preNmsTopN: number;
  readonly postNmsTopN: number;
  readonly nmsThresh: number;
  readonly minSize: number;
  readonly scoreThresh: number;
  readonly bboxXformClip: number;
}

/** One image's proposals. */
export interface ReferenceProposals {
  readonly boxes: Float32Array;
  readonly scores: Float32Array;
  readonly count: number;
}

/** torchvision anchors of one level: sizes × ratios (ratio-major), grid (h, w), stride per axis. */
export function referenceAnchors(sizes: readonly number[], ratios: readonly number[], h: number, w: number, strideY: number, strideX: number): Float32Array {
  const base: number[][] = [];
  for (const r of ratios) {
    const hr = f(Math.sqrt(f(r)));
    const wr = f(1 / hr);
    for (const s of sizes) {
      const ws = f(wr * s);
      const hs = f(hr * s);
      // Python round(): half to even.
      const rnd = (v: number): number => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));
      base.push([rnd(-ws / 2), rnd(-hs / 2), rnd(ws / 2), rnd(hs / 2)]);
    }
  }
  const out = new Float32Array(h * w * base.length * 4);
  let o = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (const b of base) {
        out[o++] = x * strideX + b[0]!;
        out[o++] = y * strideY + b[1]!;
        out[o++] = x * strideX + b[2]!;
        out[o++] = y * strideY + b[3]!;
      }
    }
  }
  return out;
}

function iou(b: ArrayLike<number>, i: number, j: number): number {
  const areaI = f(f(b[4 * i + 2]! - b[4 * i]!) * f(b[4 * i + 3]! - b[4 * i + 1]!));
  const areaJ = f(f(b[4 * j + 2]! - b[4 * j]!) * f(b[4 * j + 3]! - b[4 * j + 1]!));
  const iw = Math.max(0, f(Math.min(b[4 * i + 2]!, b[4 * j + 2]!) - Math.max(b[4 * i]!, b[4 * j]!)));
  const ih = Math.max(0, f(Math.min(b[4 * i + 3]!, b[4 * j + 3]!) - Math.max(b[4 * i + 1]!, b[4 * j + 1]!)));
  const inter = f(iw * ih);
  const union = f(f(areaI + areaJ) - inter);
  return union > 0 ? f(inter / union) : 0;
}

/**
 * Proposals of image `n` from the per-level raw head outputs (objectness [N,A,h,w], deltas
 * [N,4A,h,w]) and per-level anchors [h*w*A*4], clipped to `imageH` x `imageW`.
 */
export function referenceProposals(
  objectness: readonly HostTensor[],
  deltas: readonly HostTensor[],
  anchors: readonly Float32Array[],
  n: number,
  imageH: number,
  imageW: number,
  s: ReferenceSettings,
): ReferenceProposals {
  type Cand = { box: number[]; score: number; level: number; rank: number };
  const kept: Cand[] = [];
  objectness.forEach((obj, level) => {
    const [, a, h, w] = obj.dims as [unknown, number, number, number];
    const od = obj.data as Float32Array;
    const dd = deltas[level]!.data as Float32Array;
    const m = h * w * a;
    const logit = (idx: number): number => {
      const ai = idx % a;
      const loc = (idx - ai) / a;
      return od[((n * a + ai) * h * w) + loc]!;
    };
    const order = Array.from({ length: m }, (_, i) => i).sort((p, q) => logit(q) - logit(p) || p - q);
    const cands: Cand[] = [];
    order.slice(0, Math.min(s.preNmsTopN, m)).forEach((idx, rank) => {
      const ai = idx % a;
      const loc = (idx - ai) / a;
      const d = (c: number): number => dd[((n * 4 * a + 4 * ai + c) * h * w) + loc]!;
      const an = anchors[level]!.subarray(4 * idx, 4 * idx + 4);
      const wA = f(an[2]! - an[0]!);
      const hA = f(an[3]! - an[1]!);
      const cx = f(an[0]! + f(0.5 * wA));
      const cy = f(an[1]! + f(0.5 * hA));
      const dw = Math.min(d(2), f(s.bboxXformClip));
      const dh = Math.min(d(3), f(s.bboxXformClip));
      const pcx = f(f(d(0) * wA) + cx);
      const pcy = f(f(d(1) * hA) + cy);
      const pw = f(f(Math.exp(dw)) * wA);
      const ph = f(f(Math.exp(dh)) * hA);
      const clip = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
      const box = [
        clip(f(pcx - f(0.5 * pw)), imageW),
        clip(f(pcy - f(0.5 * ph)), imageH),
        clip(f(pcx + f(0.5 * pw)), imageW),
        clip(f(pcy + f(0.5 * ph)), imageH),
      ];
      const score = f(1 / (1 + Math.exp(-logit(idx))));
      if (f(box[2]! - box[0]!) >= f(s.minSize) && f(box[3]! - box[1]!) >= f(s.minSize) && score >= f(s.scoreThresh)) {
        cands.push({ box, score, level, rank });
      }
    });
    // Greedy NMS within the level, highest score first.
    cands.sort((p, q) => q.score - p.score || p.rank - q.rank);
    const flat = cands.flatMap((c) => c.box);
    const suppressed = new Uint8Array(cands.length);
    for (let i = 0; i < cands.length; i++) {
      if (suppressed[i]) continue;
      kept.push(cands[i]!);
      for (let j = i + 1; j < cands.length; j++) if (!suppressed[j] && iou(flat, i, j) > s.nmsThresh) suppressed[j] = 1;
    }
  });
  kept.sort((p, q) => q.score - p.score || p.level - q.level || p.rank - q.rank);
  const top = kept.slice(0, s.postNmsTopN);
  return { boxes: Float32Array.from(top.flatMap((c) => c.box)), scores: Float32Array.from(top.map((c) => c.score)), count: top.length };
}
