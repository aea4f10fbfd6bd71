/**
 * Mixed precision at serialisation: the conv stages of a graph (every Conv, ConvTranspose, Gemm
 * and MatMul, and the element-wise ops that continue their outputs: Relu, Add, MaxPool, Resize,
 * DepthToSpace, Flatten, Reshape, Sigmoid) in float16, everything else (box arithmetic, RoiAlign,
 * NMS, TopK, …) in float32, with Cast nodes at the boundaries. Weights of the converted nodes are
 * stored as float16 (half the model size). This is for GPUs (tensor cores, half the memory
 * traffic); on CPU onnxruntime has few float16 kernels and inserts casts around the others.
 *
 * Names: a converted node writes `<output>/fp16`; wherever something outside the float16 region
 * (a float32 node, a subgraph, a graph output) reads `<output>`, a Cast back to float32 produces
 * `<output>` right after the node, so every original name still denotes a float32 tensor.
 */
import type { AttributeValue } from '../graph/builder.js';
import type { HostTensor } from '../graph/dtypes.js';
import { at } from '../errors.js';

/** The node fields the conversion reads and writes (the builder's own record shape). */
export interface Float16Node {
  readonly opType: string;
  readonly domain: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: ReadonlyMap<string, AttributeValue>;
}

/** Operators that start (or extend) the float16 region, with the input slots that carry float data. */
const SEEDS: Readonly<Record<string, readonly number[]>> = { Conv: [0, 1, 2], ConvTranspose: [0, 1, 2], Gemm: [0, 1, 2], MatMul: [0, 1] };
/** Operators that stay in float16 when their (first) data input is already float16. */
const FOLLOWERS: Readonly<Record<string, readonly number[]>> = {
  Relu: [0],
  Add: [0, 1],
  MaxPool: [0],
  Resize: [0],
  DepthToSpace: [0],
  Flatten: [0],
  Reshape: [0],
  Sigmoid: [0],
};

const ONNX_FLOAT = 1;
const ONNX_FLOAT16 = 10;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bits of a float32 value, rounded to nearest even (overflow → ±inf, NaN kept). */
export function toFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal: shift the implicit bit in, round to nearest even.
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  const rest = mant & 0x1fff;
  mant >>>= 13;
  if (rest > 0x1000 || (rest === 0x1000 && (mant & 1) === 1)) {
    mant++;
    if (mant === 0x400) {
      mant = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | mant;
}

/** A float32 tensor as float16. */
export function toFloat16Tensor(t: HostTensor): HostTensor<'float16'> {
  const src = t.data as Float32Array;
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = toFloat16Bits(src[i]!);
  return { dtype: 'float16', dims: [...t.dims], data: out };
}

const castNode = (name: string, input: string, output: string, to: number): Float16Node => ({
  opType: 'Cast',
  domain: '',
  name,
  inputs: [input],
  outputs: [output],
  attributes: new Map<string, AttributeValue>([['to', { kind: 'int', value: to }]]),
});

/**
 * Converts the conv stages of `nodes` (a graph's nodes in topological order) to float16. `reads`
 * are the names read from outside the node list (graph outputs, subgraph bodies). Returns the new
 * nodes and the float16 initializers to add; float32 initializers no longer read are the caller's
 * to drop.
 */
export function convertToFloat16(
  nodes: readonly Float16Node[],
  initializers: ReadonlyMap<string, HostTensor>,
  reads: ReadonlySet<string>,
): { nodes: Float16Node[]; initializers: Map<string, HostTensor> } {
  const half = new Map<string, string>(); // float32 name → its float16 twin
  const added = new Map<string, HostTensor>();
  const out: Float16Node[] = [];
  // Who reads each name in float32 after the conversion (filled as nodes are placed).
  const float32Readers = new Set<string>(reads);
  const regionNode: boolean[] = [];

  // Decide the region first, in order (a follower needs its producer's decision).
  const inRegion = new Set<string>();
  for (const n of nodes) {
    const seed = SEEDS[n.opType];
    const follower = FOLLOWERS[n.opType];
    const convert = n.domain === '' && (seed !== undefined || (follower !== undefined && inRegion.has(n.inputs[follower[0]!] ?? '')));
    regionNode.push(convert);
    if (convert) for (const o of n.outputs) inRegion.add(o);
  }
  nodes.forEach((n, i) => {
    const slots = SEEDS[n.opType] ?? FOLLOWERS[n.opType] ?? [];
    n.inputs.forEach((input, k) => {
      if (input !== '' && (!regionNode[i] || !slots.includes(k))) float32Readers.add(input);
    });
  });

  const toHalf = (name: string): string => {
    const hit = half.get(name);
    if (hit) return hit;
    const init = initializers.get(name);
    const twin = `${name}/fp16`;
    if (init && init.dtype === 'float32') added.set(twin, toFloat16Tensor(init));
    else out.push(castNode(`${name}/to_fp16`, name, twin, ONNX_FLOAT16));
    half.set(name, twin);
    return twin;
  };

  nodes.forEach((n, i) => {
    if (!regionNode[i]) {
      out.push(n);
      return;
    }
    const slots = SEEDS[n.opType] ?? FOLLOWERS[n.opType] ?? [];
    const inputs = n.inputs.map((input, k) => (input !== '' && slots.includes(k) ? toHalf(input) : input));
    const outputs = n.outputs.map((o) => `${o}/fp16`);
    out.push({ ...n, inputs, outputs });
    n.outputs.forEach((o, k) => {
      half.set(o, at(outputs, k, 'outputs'));
      if (float32Readers.has(o)) out.push(castNode(`${o}/to_fp32`, at(outputs, k, 'outputs'), o, ONNX_FLOAT));
    });
  });
  return { nodes: out, initializers: added };
}
