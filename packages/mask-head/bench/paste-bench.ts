/**
 * Where should mask pasting run? Times 100 detections of realistic sizes on a 480 x 640 image:
 *
 * - host: {@link InstanceMasks.paste} (box-region crops only), then the full [D,1,H,W] uint8 masks,
 *   the full float probabilities, and COCO RLE for every detection;
 * - graph, exact: the same arithmetic as an ONNX graph over the full image (per-detection row and
 *   column indices/weights, GatherElements of the four neighbours, channels-last weighted sum);
 * - graph, separable: two batched MatMuls with row/column interpolation matrices (fast to write,
 *   but not bit-exact: PyTorch's channels-last kernel does not factor the sum).
 *
 * Run: `npx tsc -b && node build/bench/paste-bench.js [threads...]` in packages/mask-head.
 */
import { type Blob, GraphBuilder, type HostTensor, ops } from '@rcnn/core';
import { runModel } from '@rcnn/testing';
import ort from 'onnxruntime-node';
import { InstanceMasks } from '../src/index.js';

const H = 480;
const W = 640;
const D = 100;
const M = 28;
const PAD = 1;
const S = M + 2 * PAD;
const THRESHOLD = 0.5;
const REPEATS = 7;
const WARMUP = 3;

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * COCO-like detections: sqrt(area) log-uniform in 16..400 px, aspect ratio 1/2..2, centres
 * anywhere; clipped to the image as the detector's boxes are. Masks are soft blobs.
 */
function workload(): { boxes: Float32Array; probs: Float32Array } {
  const r = rng(2024);
  const boxes = new Float32Array(4 * D);
  for (let i = 0; i < D; i++) {
    const side = 16 * Math.exp(r() * Math.log(400 / 16));
    const aspect = Math.exp((r() * 2 - 1) * Math.LN2);
    const w = side * Math.sqrt(aspect);
    const h = side / Math.sqrt(aspect);
    const cx = r() * W;
    const cy = r() * H;
    boxes.set([Math.max(cx - w / 2, 0), Math.max(cy - h / 2, 0), Math.min(cx + w / 2, W), Math.min(cy + h / 2, H)], 4 * i);
  }
  const probs = new Float32Array(D * M * M);
  for (let i = 0; i < D; i++) {
    const rx = 6 + r() * 8;
    const ry = 6 + r() * 8;
    for (let y = 0; y < M; y++) {
      for (let x = 0; x < M; x++) {
        const d2 = ((x - 13.5) / rx) ** 2 + ((y - 13.5) / ry) ** 2;
        probs[i * M * M + y * M + x] = 1 / (1 + Math.exp(4 * (d2 - 1))) * (0.9 + 0.1 * r());
      }
    }
  }
  return { boxes, probs };
}

function median(times: number[]): number {
  const s = [...times].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(fn: () => unknown | Promise<unknown>): Promise<number> {
  for (let k = 0; k < WARMUP; k++) await fn(); // JIT tier-up, ORT allocations
  const times: number[] = [];
  for (let k = 0; k < REPEATS; k++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Expanded integer boxes and resize geometry, shared by both graph formulations. */
function expandedBoxes(g: GraphBuilder, boxes: Blob): { start: Blob[]; size: Blob[] } {
  const f = (v: number): Blob => g.constFloat32(v);
  const [x1, y1, x2, y2] = ops.split(g, boxes, [1, 1, 1, 1], 1, 'xyxy');
  const scale = f(Math.fround(S / M));
  const half = (a: Blob, b: Blob): Blob => ops.mul(g, ops.mul(g, ops.sub(g, b, a), f(0.5)), scale);
  const centre = (a: Blob, b: Blob): Blob => ops.mul(g, ops.add(g, a, b), f(0.5));
  const toInt = (v: Blob): Blob => ops.cast(g, v, 'int64');
  const bx1 = toInt(ops.sub(g, centre(x1, x2), half(x1, x2)));
  const bx2 = toInt(ops.add(g, centre(x1, x2), half(x1, x2)));
  const by1 = toInt(ops.sub(g, centre(y1, y2), half(y1, y2)));
  const by2 = toInt(ops.add(g, centre(y1, y2), half(y1, y2)));
  const one = g.constInt64(1);
  const w = ops.max(g, [ops.add(g, ops.sub(g, bx2, bx1), one), one]);
  const h = ops.max(g, [ops.add(g, ops.sub(g, by2, by1), one), one]);
  return { start: [by1, bx1], size: [h, w] }; // each [D,1]
}

/** Per output position along an axis of length n: source indices, weights and validity, all [D,n]. */
function axis(g: GraphBuilder, start: Blob, size: Blob, n: number): { i0: Blob; i1: Blob; l0: Blob; l1: Blob; valid: Blob } {
  const f = (v: number): Blob => g.constFloat32(v);
  const pos = g.constInt64(Array.from({ length: n }, (_, i) => i), [1, n]);
  const o = ops.sub(g, pos, start); // [D,n] position inside the resized mask
  const valid = ops.and(g, ops.greaterOrEqual(g, o, g.constInt64(0)), ops.less(g, o, size));
  const scale = ops.div(g, f(S), ops.cast(g, size, 'float32'));
  const src = ops.max(g, [ops.sub(g, ops.mul(g, scale, ops.add(g, ops.cast(g, o, 'float32'), f(0.5))), f(0.5)), f(0)]);
  const i0 = ops.min(g, [ops.cast(g, src, 'int64'), g.constInt64(S - 1)]);
  const i1 = ops.min(g, [ops.add(g, i0, g.constInt64(1)), g.constInt64(S - 1)]);
  const l1 = ops.min(g, [ops.max(g, [ops.sub(g, src, ops.cast(g, i0, 'float32')), f(0)]), f(1)]);
  const l0 = ops.sub(g, f(1), l1);
  return { i0, i1, l0, l1, valid };
}

/** Exact formulation: gathers the four neighbours of every image pixel of every detection. */
function exactGraph(): Uint8Array {
  const g = new GraphBuilder({ name: 'paste_exact' });
  const probs = g.input('probs', 'float32', ['D', 1, M, M]);
  const boxes = g.input('boxes', 'float32', ['D', 4]);
  const padded = ops.squeeze(g, g.op('Pad', [probs, g.constInt64([0, 0, PAD, PAD, 0, 0, PAD, PAD])]), [1]); // [D,S,S]
  const { start, size } = expandedBoxes(g, boxes);
  const rows = axis(g, start[0]!, size[0]!, H);
  const cols = axis(g, start[1]!, size[1]!, W);
  const d = ops.dim(g, boxes, 0);
  const dhs = ops.concat(g, [d, g.constInt64([H, S])], 0);
  const dhw = ops.concat(g, [d, g.constInt64([H, W])], 0);
  const rowsOf = (i: Blob): Blob => ops.gatherElements(g, padded, ops.expand(g, ops.unsqueeze(g, i, [2]), dhs), 1); // [D,H,S]
  const colsOf = (x: Blob, i: Blob): Blob => ops.gatherElements(g, x, ops.expand(g, ops.unsqueeze(g, i, [1]), dhw), 2); // [D,H,W]
  const top = rowsOf(rows.i0);
  const bottom = rowsOf(rows.i1);
  const wgt = (a: Blob, b: Blob): Blob => ops.mul(g, ops.unsqueeze(g, a, [2]), ops.unsqueeze(g, b, [1]));
  let v = ops.mul(g, wgt(rows.l0, cols.l0), colsOf(top, cols.i0));
  v = ops.add(g, v, ops.mul(g, wgt(rows.l0, cols.l1), colsOf(top, cols.i1)));
  v = ops.add(g, v, ops.mul(g, wgt(rows.l1, cols.l0), colsOf(bottom, cols.i0)));
  v = ops.add(g, v, ops.mul(g, wgt(rows.l1, cols.l1), colsOf(bottom, cols.i1)));
  const inside = ops.and(g, ops.unsqueeze(g, rows.valid, [2]), ops.unsqueeze(g, cols.valid, [1]));
  const pasted = ops.unsqueeze(g, ops.where(g, inside, v, g.constFloat32(0)), [1]);
  g.output(pasted, 'probs_full', 'float32');
  g.output(ops.cast(g, ops.greater(g, pasted, g.constFloat32(THRESHOLD)), 'uint8'), 'masks', 'uint8');
  return g.toModelProto();
}

/** Separable formulation: out[d] = Ry[d] · P[d] · Cx[d]ᵀ with 2-tap interpolation matrices. */
function separableGraph(): Uint8Array {
  const g = new GraphBuilder({ name: 'paste_separable' });
  const probs = g.input('probs', 'float32', ['D', 1, M, M]);
  const boxes = g.input('boxes', 'float32', ['D', 4]);
  const padded = ops.squeeze(g, g.op('Pad', [probs, g.constInt64([0, 0, PAD, PAD, 0, 0, PAD, PAD])]), [1]);
  const { start, size } = expandedBoxes(g, boxes);
  const matrix = (a: ReturnType<typeof axis>): Blob => {
    // [D,n,S]: weight l0 at column i0 and l1 at i1 (added when equal), zero rows outside the box.
    const taps = g.constInt64(Array.from({ length: S }, (_, i) => i), [1, 1, S]);
    const hit = (i: Blob, l: Blob): Blob => ops.where(g, ops.equal(g, ops.unsqueeze(g, i, [2]), taps), ops.unsqueeze(g, l, [2]), g.constFloat32(0));
    const m = ops.add(g, hit(a.i0, a.l0), hit(a.i1, a.l1));
    return ops.where(g, ops.unsqueeze(g, a.valid, [2]), m, g.constFloat32(0));
  };
  const ry = matrix(axis(g, start[0]!, size[0]!, H));
  const cx = matrix(axis(g, start[1]!, size[1]!, W));
  const pasted = ops.unsqueeze(g, g.op('MatMul', [g.op('MatMul', [ry, padded]), ops.transpose(g, cx, [0, 2, 1])]), [1]);
  g.output(pasted, 'probs_full', 'float32');
  g.output(ops.cast(g, ops.greater(g, pasted, g.constFloat32(THRESHOLD)), 'uint8'), 'masks', 'uint8');
  return g.toModelProto();
}

async function main(): Promise<void> {
  const threadCounts = process.argv.slice(2).map(Number).filter((n) => n > 0);
  const { boxes, probs } = workload();
  const opts = { resolution: M, padding: PAD, threshold: THRESHOLD, imageHeight: H, imageWidth: W };
  const reference = InstanceMasks.paste(probs, boxes, opts);
  let pixels = 0;
  for (const m of reference.masks) pixels += m.width * m.height;
  console.log(`${D} detections on ${H} x ${W}: ${pixels} pasted pixels (${(pixels / D).toFixed(0)} per detection)`);

  const rows: [string, number, string][] = [];
  rows.push(['host TS: paste (box crops)', await time(() => InstanceMasks.paste(probs, boxes, opts)), 'exact (reference)']);
  rows.push(['host TS: paste + [D,1,H,W] uint8 masks', await time(() => InstanceMasks.paste(probs, boxes, opts).binaryTensor()), 'exact']);
  rows.push(['host TS: paste + COCO RLE (compressed) x D', await time(() => InstanceMasks.paste(probs, boxes, opts).toRles()), 'exact']);
  rows.push(['host TS: paste + [D,1,H,W] float probabilities', await time(() => InstanceMasks.paste(probs, boxes, opts).probabilityTensor()), 'exact']);

  const feeds: Record<string, HostTensor> = {
    probs: { dtype: 'float32', dims: [D, 1, M, M], data: probs },
    boxes: { dtype: 'float32', dims: [D, 4], data: boxes },
  };
  const full = reference.probabilityTensor().data;
  for (const [name, model] of [
    ['graph (ORT): exact gather', exactGraph()],
    ['graph (ORT): separable MatMul', separableGraph()],
  ] as const) {
    for (const threads of threadCounts.length > 0 ? threadCounts : [1, 2]) {
      const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
      let out = await runModel(session, feeds);
      const ms = await time(async () => {
        out = await runModel(session, feeds);
      });
      const got = out.get('probs_full')!.data as Float32Array;
      let maxDiff = 0;
      let differing = 0;
      for (let i = 0; i < full.length; i++) {
        const diff = Math.abs(got[i]! - full[i]!);
        if (diff > 0) differing++;
        maxDiff = Math.max(maxDiff, diff);
      }
      const masks = out.get('masks')!.data as Uint8Array;
      const host = reference.binaryTensor().data;
      let maskDiff = 0;
      for (let i = 0; i < host.length; i++) if (masks[i] !== host[i]) maskDiff++;
      rows.push([`${name}, ${threads} thread(s)`, ms, differing === 0 ? 'exact' : `${differing} probs differ (max ${maxDiff.toExponential(1)}), ${maskDiff} mask pixels`]);
      await session.release();
    }
  }
  console.log('| option | median ms | vs host paste |');
  console.log('| --- | ---: | --- |');
  for (const [name, ms, exact] of rows) console.log(`| ${name} | ${ms.toFixed(1)} | ${exact} |`);
}

await main();
