/**
 * Finite-difference checks of gradients built by `buildGradients`, run in onnxruntime (CPU).
 *
 * The checked function is L = Σ y ⊙ R with y the output of the graph under test and R a fixed
 * random tensor of y's shape (so every output element matters with a different weight). The
 * analytic gradient of each wrt input is compared with the central difference
 * (L(x + h e_i) − L(x − h e_i)) / 2h at every element (or a seeded sample of them).
 * float64 graphs use h = 1e-6; float32 graphs (operators onnxruntime runs only in float32:
 * Conv, ConvTranspose, Resize) are checked only where L is linear in the input, where any h is
 * exact and h = 1 leaves only float32 rounding.
 */
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { type Blob, GraphBuilder, type HostTensor, buildGradients, gaussian, seededRandom } from '../src/index.js';

/** A float tensor of the checked dtype, or an int64 / bool constant input. */
export type CheckInput = HostTensor;

/** Options of {@link gradcheck}; `K` are the input names (so `build` reads `x.a` unchecked). */
export interface GradcheckOptions<K extends string = string> {
  /** Graph inputs (float ones in `dtype`; int64 / bool ones are fed but not differentiated). */
  readonly inputs: Readonly<Record<K, CheckInput>>;
  /** Builds the function under test from the input blobs; returns its output. */
  readonly build: (g: GraphBuilder, x: Readonly<Record<K, Blob>>) => Blob;
  /** Inputs to differentiate (default: every float input). */
  readonly wrt?: readonly NoInfer<K>[];
  readonly dtype?: 'float32' | 'float64';
  /** Finite-difference step (default 1e-6 for float64, 1 for float32). */
  readonly h?: number;
  /** Allowed max |analytic − numeric| relative to max(1, max |numeric|) (default 1e-6 float64, 1e-4 float32). */
  readonly tolerance?: number;
  /** Check at most this many elements per input (seeded sample; default all). */
  readonly maxElements?: number;
  readonly seed?: number;
}

/** What {@link gradcheck} measured. */
export interface GradcheckResult {
  /** Worst relative error per input. */
  readonly errors: Readonly<Record<string, number>>;
  /** The graph (for structural assertions). */
  readonly graph: GraphBuilder;
  /** Analytic gradients by input. */
  readonly gradients: Readonly<Record<string, Float64Array>>;
}

const isFloat = (t: HostTensor): boolean => t.dtype === 'float32' || t.dtype === 'float64';

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, [...t.dims]);
}

/** Seeded standard-normal values. */
export function randn(n: number, seed: number, scale = 1): number[] {
  const gauss = gaussian(seededRandom(seed));
  return Array.from({ length: n }, () => scale * gauss());
}

/** Seeded uniform values in [lo, hi). */
export function uniform(n: number, seed: number, lo: number, hi: number): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

/** A float tensor of `dtype`. */
export function tensor(dtype: 'float32' | 'float64', dims: number[], values: number[]): HostTensor {
  return {
    dtype,
    dims,
    data: dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values),
  };
}

/** An int64 tensor. */
export const int64 = (dims: number[], values: number[]): HostTensor => ({
  dtype: 'int64',
  dims,
  data: BigInt64Array.from(values.map(BigInt)),
});

/** Checks the gradients of `options.build` against central differences; returns the worst errors. */
export async function gradcheck<K extends string>(options: GradcheckOptions<K>): Promise<GradcheckResult> {
  const inputs: Readonly<Record<string, CheckInput>> = options.inputs;
  const dtype = options.dtype ?? 'float64';
  const h = options.h ?? (dtype === 'float64' ? 1e-6 : 1);
  const tolerance = options.tolerance ?? (dtype === 'float64' ? 1e-6 : 1e-4);
  const wrt: readonly string[] = options.wrt ?? Object.keys(inputs).filter((k) => isFloat(inputs[k]!));

  // 1. Forward alone, to learn the output's shape for the weighting R.
  const forward = new GraphBuilder({ name: 'forward' });
  const fx: Record<string, Blob> = {};
  for (const [k, t] of Object.entries(inputs)) fx[k] = forward.input(k, t.dtype, t.dims);
  // Every input name K got a blob just above.
  forward.output(options.build(forward, fx as Record<K, Blob>), 'y', dtype);
  const fs = await ort.InferenceSession.create(forward.toModelProto());
  const feeds: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(inputs)) feeds[k] = toOrt(t);
  const y = (await fs.run(feeds)).y!;
  await fs.release();
  const r = randn(y.size, (options.seed ?? 1) * 7919 + 13);

  // 2. Forward + loss + backward.
  const g = new GraphBuilder({ name: 'gradcheck' });
  const x: Record<string, Blob> = {};
  for (const [k, t] of Object.entries(inputs)) x[k] = g.input(k, t.dtype, t.dims);
  const out = options.build(g, x as Record<K, Blob>);
  const weights = g.initializer('r', tensor(dtype, [...y.dims], r));
  const loss = g.op('ReduceSum', [g.op('Mul', [out, weights], {}, 'weighted')], { keepdims: 0 }, 'loss');
  const grads = buildGradients(g, { loss, wrt: wrt.map((k) => x[k]!), dtype });
  g.output(loss, 'loss', dtype);
  for (const k of wrt) g.output(grads.of(x[k]!), `grad.${k}`, dtype);
  const session = await ort.InferenceSession.create(g.toModelProto());
  const base = await session.run(feeds);

  const errors: Record<string, number> = {};
  const gradients: Record<string, Float64Array> = {};
  for (const k of wrt) {
    const t = inputs[k]!;
    const analytic = Float64Array.from(base[`grad.${k}`]!.data as Float64Array);
    assert.deepEqual([...base[`grad.${k}`]!.dims], [...t.dims], `gradient of ${k} has the input's shape`);
    gradients[k] = analytic;
    const n = t.data.length;
    let indices = Array.from({ length: n }, (_, i) => i);
    if (options.maxElements !== undefined && n > options.maxElements) {
      const rand = seededRandom(4242 + n);
      indices = indices.sort(() => rand() - 0.5).slice(0, options.maxElements);
    }
    const numeric = new Float64Array(indices.length);
    const data = t.data as Float32Array | Float64Array;
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j]!;
      const saved = data[i]!;
      const evalAt = async (v: number): Promise<number> => {
        const copy = (dtype === 'float64' ? Float64Array : Float32Array).from(data);
        copy[i] = v;
        const res = await session.run({ ...feeds, [k]: new ort.Tensor(dtype, copy, [...t.dims]) }, ['loss']);
        return Number(res.loss!.data[0]);
      };
      numeric[j] = ((await evalAt(saved + h)) - (await evalAt(saved - h))) / (2 * h);
    }
    let scale = 1;
    for (const v of numeric) scale = Math.max(scale, Math.abs(v));
    let worst = 0;
    for (let j = 0; j < indices.length; j++) worst = Math.max(worst, Math.abs(analytic[indices[j]!]! - numeric[j]!) / scale);
    errors[k] = worst;
    assert.ok(worst <= tolerance, `gradient of ${k}: worst |analytic - numeric| / scale = ${worst.toExponential(3)} > ${tolerance}`);
    // A check whose gradient is all zeros could pass trivially: every checked input must get some.
    assert.ok(
      analytic.some((v) => v !== 0),
      `gradient of ${k} is all zeros`,
    );
  }
  await session.release();
  return { errors, graph: g, gradients };
}
