/**
 * Floating-point operations of a forward pass, counted from the built graph at the shapes of an
 * actual run: the weights' shapes come from the graph's initializers, the activations' from an
 * onnxruntime profile of a run with graph optimisations disabled (so node names and shapes are the
 * graph's own, before fusions rename them). A multiply-add counts as 2 FLOPs.
 */
import type { GraphBuilder } from '@rcnn/core';
import type { KernelEvent } from '@rcnn/runtime';

/** FLOPs by kind of kernel. */
export interface FlopCount {
  readonly conv: number;
  readonly deconv: number;
  readonly gemm: number;
  readonly matmul: number;
  readonly total: number;
  /** Nodes counted (and the heaviest ones, for the report). */
  readonly nodes: number;
  readonly top: readonly { readonly node: string; readonly op: string; readonly gflop: number }[];
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** FLOPs of one kernel (rcnn-node's Gemms have transA = 0), or undefined when it is not a Conv / ConvTranspose / Gemm / MatMul. */
export function kernelFlops(op: string, weightDims: readonly number[] | undefined, k: KernelEvent): number | undefined {
  const out = k.outputShapes[0];
  const w = weightDims ?? k.inputShapes[1];
  if (!out || !w) return undefined;
  switch (op) {
    case 'Conv':
      // 2 · N · C_out · H_out · W_out · (C_in / group) · kh · kw; the weight is [C_out, C_in/group, kh, kw].
      return 2 * product(out) * product(w.slice(1));
    case 'ConvTranspose': {
      // Every input pixel scatters (C_out / group) · kh · kw products: the weight is [C_in, C_out/group, kh, kw].
      const x = k.inputShapes[0];
      if (!x) return undefined;
      return 2 * product(x) * product(w.slice(1));
    }
    case 'Gemm': {
      // A is [M, K] or (transA) [K, M]: either way K = |A| / M.
      const a = k.inputShapes[0];
      if (!a || out[0] === 0) return undefined;
      return (2 * product(out) * product(a)) / out[0]!;
    }
    case 'MatMul': {
      const a = k.inputShapes[0];
      if (!a) return undefined;
      return 2 * product(out) * a[a.length - 1]!;
    }
    default:
      return undefined;
  }
}

/**
 * Counts the FLOPs of `kernels` (a run of the unoptimised model) with the weight shapes of `graph`.
 * Nodes are matched by name; a weight that is not an initializer (MatMul of two activations) is
 * read from the profile's input shapes.
 */
export function countFlops(graph: GraphBuilder, kernels: readonly KernelEvent[]): FlopCount {
  const nodes = new Map(graph.listNodes().map((n) => [n.name, n]));
  return countWith(kernels, (k) => {
    const node = nodes.get(k.node);
    return node?.inputs[1] ? graph.initializerOf({ name: node.inputs[1] })?.dims : undefined;
  });
}

/**
 * Counts the FLOPs of `kernels` (a run of an unoptimised model) from the profile's shapes alone —
 * for graphs whose weights are inputs (trainable parameters) and whose "weights" are activations
 * (a weight gradient's Conv takes the output gradient as its kernel).
 */
export function countKernelFlops(kernels: readonly KernelEvent[]): FlopCount {
  return countWith(kernels, () => undefined);
}

function countWith(kernels: readonly KernelEvent[], weightOf: (k: KernelEvent) => readonly number[] | undefined): FlopCount {
  const totals = { conv: 0, deconv: 0, gemm: 0, matmul: 0 };
  const counted: { node: string; op: string; gflop: number }[] = [];
  for (const k of kernels) {
    if (!['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(k.op)) continue;
    const flops = kernelFlops(k.op, weightOf(k), k);
    if (flops === undefined) continue;
    const kind = k.op === 'Conv' ? 'conv' : k.op === 'ConvTranspose' ? 'deconv' : k.op === 'Gemm' ? 'gemm' : 'matmul';
    totals[kind] += flops;
    counted.push({ node: k.node, op: k.op, gflop: flops / 1e9 });
  }
  const total = totals.conv + totals.deconv + totals.gemm + totals.matmul;
  return { ...totals, total, nodes: counted.length, top: counted.sort((a, b) => b.gflop - a.gflop).slice(0, 8) };
}
