/**
 * Reverse-mode differentiation of a {@link GraphBuilder} graph: appends the backward of a loss
 * with respect to chosen blobs as ordinary ONNX (opset 17) nodes, built from the per-operator
 * rules of the gradient registry (registry.ts).
 */
import { GraphError, at } from '../errors.js';
import { type AttributeValue, type Blob, type GraphBuilder, type GraphNode, attr } from '../graph/builder.js';
import { type GradientContext, type GradientDataType, type GradientRule, gradientRuleFor, missingRule, selectSlots } from './registry.js';
import { installBuiltinGradientRules } from '../internal/autodiff-rules/index.js';

/** Options of {@link buildGradients}. */
export interface GradientOptions {
  /** The blob to differentiate (a scalar loss, or any tensor with {@link lossGradient}). */
  readonly loss: Blob;
  /** The blobs to differentiate with respect to (parameter inputs, initializers, activations). */
  readonly wrt: readonly Blob[];
  /** Float type of the forward's differentiated tensors (default float32). */
  readonly dtype?: GradientDataType;
  /** Gradient of the final objective with respect to `loss` (default: ones of the loss's shape). */
  readonly lossGradient?: Blob;
  /** Name scope of the backward nodes (default `grad`). */
  readonly scope?: string;
}

/** What {@link buildGradients} built. */
export interface Gradients {
  /** Gradient blob of each wrt blob, by the wrt blob's name (same shape as that blob). */
  readonly byName: ReadonlyMap<string, Blob>;
  /** Gradient of `blob`, which must be one of the wrt blobs. */
  of(blob: Blob): Blob;
  /** Names of wrt blobs the loss does not depend on: their gradient is zeros. */
  readonly unreached: readonly string[];
  /** Names of the forward nodes whose backward was built (every one lies on a path from a wrt blob to the loss). */
  readonly differentiatedNodes: readonly string[];
}

/** A scalar host tensor of `dtype`. */
function scalarTensor(
  dtype: GradientDataType,
  value: number,
): {
  dtype: GradientDataType;
  dims: number[];
  data: Float32Array | Float64Array;
} {
  return {
    dtype,
    dims: [],
    data: dtype === 'float64' ? Float64Array.of(value) : Float32Array.of(value),
  };
}

/** Zeros of `like`'s shape, in `dtype`. */
export function zerosLike(g: GraphBuilder, like: Blob, dtype: GradientDataType, name = 'zeros'): Blob {
  const t = scalarTensor(dtype, 0);
  return g.op('ConstantOfShape', [g.op('Shape', [like], {}, `${name}.shape`)], { value: attr.tensor({ ...t, dims: [1] }) }, name);
}

/** A gradient that is a scatter-add of `updates` into zeros shaped `zerosShape` (possibly seen through Reshapes). */
interface ScatterIntoZeros {
  readonly scatter: GraphNode;
  readonly zerosShape: string;
}

/** `grad` as a scatter-add into zeros (through Reshapes only), if it is one. */
function scatterIntoZeros(grad: Blob, producerOf: (name: string) => GraphNode | undefined): ScatterIntoZeros | undefined {
  let node = producerOf(grad.name);
  while (node && node.domain === '' && node.opType === 'Reshape') node = producerOf(node.inputs[0]!);
  if (!node || node.domain !== '' || (node.opType !== 'ScatterElements' && node.opType !== 'ScatterND')) return undefined;
  const reduction = node.attributes.get('reduction');
  if (reduction?.kind !== 'string' || reduction.value !== 'add') return undefined;
  const zeros = producerOf(node.inputs[0]!);
  if (!zeros || zeros.domain !== '' || zeros.opType !== 'ConstantOfShape') return undefined;
  const value = zeros.attributes.get('value');
  // ConstantOfShape without a value attribute fills with float32 zeros.
  if (value !== undefined && !(value.kind === 'tensor' && Array.from(value.value.data as ArrayLike<number | bigint>).every((v) => Number(v) === 0))) return undefined;
  return { scatter: node, zerosShape: zeros.inputs[0]! };
}

/**
 * `partial + c` where `c` is a scatter-add into zeros: the same scatter, into `partial` seen in the
 * zeros' shape, then back in `partial`'s shape (both Reshapes are aliases in onnxruntime). The same
 * sums, except where the scatter hits an element more than once: `(p + u1) + u2` instead of `p + (u1 + u2)`.
 */
function addScatteredInto(g: GraphBuilder, partial: Blob, c: ScatterIntoZeros, name: string): Blob {
  return g.withScope(name, () => {
    const view = g.op('Reshape', [partial, { name: c.zerosShape }], { allowzero: 1 }, 'view');
    const attributes = Object.fromEntries(c.scatter.attributes);
    const scattered = g.op(c.scatter.opType, [view, { name: c.scatter.inputs[1]! }, { name: c.scatter.inputs[2]! }], attributes, 'scatter');
    return g.op('Reshape', [scattered, g.op('Shape', [partial], {}, 'shape')], { allowzero: 1 }, 'sum');
  });
}

/**
 * Sums `gradient` (the shape of a broadcast result) back to `input`'s shape: over the leading axes
 * broadcasting added and the axes where `input` has size 1. Shapes are read in the graph (Shape,
 * NonZero, ReduceSum with an axes input, noop when there is nothing to reduce), so it is exact for
 * dynamic shapes.
 */
export function reduceToShapeOf(g: GraphBuilder, gradient: Blob, input: Blob, name = 'unbroadcast'): Blob {
  return g.withScope(name, () => {
    const inShape = g.op('Shape', [input], {}, 'in_shape');
    const gradShape = g.op('Shape', [gradient], {}, 'grad_shape');
    const missing = g.op('Sub', [g.op('Shape', [gradShape], {}, 'grad_rank'), g.op('Shape', [inShape], {}, 'in_rank')], {}, 'missing');
    const ones = g.op(
      'ConstantOfShape',
      [missing],
      {
        value: attr.tensor({
          dtype: 'int64',
          dims: [1],
          data: BigInt64Array.of(1n),
        }),
      },
      'ones',
    );
    const padded = g.op('Concat', [ones, inShape], { axis: 0 }, 'padded');
    const differs = g.op('Not', [g.op('Equal', [padded, gradShape], {}, 'same')], {}, 'differs');
    const axes = g.op('Reshape', [g.op('NonZero', [differs], {}, 'nz'), g.constInt64([-1])], {}, 'axes');
    const summed = g.op('ReduceSum', [gradient, axes], { keepdims: 1, noop_with_empty_axes: 1 }, 'sum');
    return g.op('Reshape', [summed, inShape], { allowzero: 1 }, 'reshape');
  });
}

/**
 * Appends to `graph` the gradient of `options.loss` with respect to each blob of `options.wrt`
 * (reverse mode). Only nodes on a path from a wrt blob to the loss are differentiated: a path is
 * cut by {@link GraphBuilder.stopGradient}, by operators registered as non-differentiable (shape
 * arithmetic, comparisons, NMS, TopK indices, If/Loop …) and by the non-differentiable inputs of a
 * rule (RoiAlign's boxes, Gather's indices …). Gradients of blobs with several consumers are summed
 * (one Sum node for two, a chain of Adds for more). Fails with a {@link GraphError} naming the node
 * when an operator on a path has no rule (see {@link registerGradientRule}).
 */
export function buildGradients(graph: GraphBuilder, options: GradientOptions): Gradients {
  installBuiltinGradientRules();
  const dtype = options.dtype ?? 'float32';
  const nodes = [...graph.graphNodes()];
  const wrtNames = new Set(options.wrt.map((b) => b.name));

  // 1. Forward sweep: blobs that depend differentiably on a wrt blob.
  const active = new Set<string>(wrtNames);
  const activeNodes: {
    node: GraphNode;
    rule: GradientRule | undefined;
    diffIn: readonly number[];
    diffOut: readonly number[];
  }[] = [];
  for (const node of nodes) {
    if (node.outputs.some((o) => graph.isGradientStopped(o))) continue;
    const rule = gradientRuleFor(node.opType, node.domain);
    const diffIn = rule ? selectSlots(rule.differentiableInputs, node, node.inputs.length) : node.inputs.map((_, i) => i);
    const diffOut = rule ? selectSlots(rule.differentiableOutputs, node, node.outputs.length) : node.outputs.map((_, i) => i);
    if (!diffIn.some((i) => node.inputs[i] !== undefined && active.has(node.inputs[i]))) continue;
    if (diffOut.length === 0) continue;
    for (const o of diffOut) active.add(node.outputs[o]!);
    activeNodes.push({ node, rule, diffIn, diffOut });
  }

  // 2. Backward sweep: the active nodes the loss depends on.
  const needed = new Set<string>();
  if (active.has(options.loss.name)) needed.add(options.loss.name);
  const path: typeof activeNodes = [];
  for (let k = activeNodes.length - 1; k >= 0; k--) {
    const entry = activeNodes[k]!;
    if (!entry.diffOut.some((o) => needed.has(entry.node.outputs[o]!))) continue;
    if (!entry.rule) missingRule(entry.node);
    path.push(entry);
    for (const i of entry.diffIn) {
      const input = entry.node.inputs[i];
      if (input && active.has(input)) needed.add(input);
    }
  }

  // 3. Emit the backward, last node first; a blob's gradient is complete once its producer is reached.
  const contributions = new Map<string, Blob[]>();
  const addContribution = (name: string, grad: Blob): void => {
    const list = contributions.get(name);
    if (list) list.push(grad);
    else contributions.set(name, [grad]);
  };
  const total = new Map<string, Blob>();
  const producers = new Map<string, GraphNode>();
  let indexed = 0;
  const producerOf = (name: string): GraphNode | undefined => {
    const all = graph.graphNodes();
    for (; indexed < all.length; indexed++) for (const o of all[indexed]!.outputs) producers.set(o, all[indexed]!);
    return producers.get(name);
  };
  const gradientOf = (name: string): Blob | undefined => {
    const done = total.get(name);
    if (done) return done;
    const all = contributions.get(name) ?? [];
    if (all.length <= 1) {
      if (all[0]) total.set(name, all[0]);
      return all[0];
    }
    // A contribution that is a scatter-add into zeros (the backward of a Gather: a few rows of a
    // feature map) is added by scattering its updates into the sum of the others instead: no
    // map-sized zeros, copy and Add (for the RPN's sampled anchors, 2 x 53 MB at P2 of an R-50-FPN).
    const sparse = all.map((c) => scatterIntoZeros(c, producerOf));
    const dense = all.filter((_, i) => !sparse[i]);
    const rows = sparse.filter((s): s is ScatterIntoZeros => s !== undefined);
    // All sparse: the first one stays as it is and the others scatter into it.
    if (dense.length === 0) {
      dense.push(all[0]!);
      rows.shift();
    }
    // Three or more dense contributions are added one at a time, in the order they were written:
    // the Adds come after every contribution in the node list, so onnxruntime's depth-first order
    // completes each partial sum before it computes the next contribution, and at most two are
    // alive at once — a Sum of n needs all n together (the P2 level's box and mask/keypoint
    // RoiAlign gradients, 53 MB each at 800 px, at the step's memory peak). Same association as Sum.
    const [first, ...others] = dense;
    const denseSum =
      others.length === 0
        ? first!
        : others.length === 1
          ? graph.op('Sum', dense, {}, 'accumulate')
          : others.reduce((partial, c, i) => graph.op('Add', [partial, c], {}, `accumulate${i}`), first!);
    const sum = rows.reduce((partial, c, i) => addScatteredInto(graph, partial, c, `accumulate_rows${i}`), denseSum);
    total.set(name, sum);
    return sum;
  };

  const scope = options.scope ?? 'grad';
  const result = graph.withScope(scope, () => {
    const seed = options.lossGradient ?? onesLike(graph, options.loss, dtype);
    if (needed.has(options.loss.name)) addContribution(options.loss.name, seed);
    for (const { node, rule } of path) {
      const ctx = makeContext(graph, node, dtype, gradientOf, (i) => {
        const input = node.inputs[i];
        return input !== undefined && input !== '' && needed.has(input);
      });
      const inputGrads = graph.withScope(safeScope(node.name), () => rule!.backward(ctx));
      node.inputs.forEach((input, i) => {
        const grad = inputGrads[i];
        if (grad && input !== '' && needed.has(input)) addContribution(input, grad);
      });
    }
    const byName = new Map<string, Blob>();
    const unreached: string[] = [];
    for (const w of options.wrt) {
      if (byName.has(w.name)) continue;
      let grad = gradientOf(w.name);
      if (!grad) {
        unreached.push(w.name);
        grad = zerosLike(graph, w, dtype, 'unreached');
      }
      byName.set(w.name, grad);
    }
    return { byName, unreached };
  });

  return {
    byName: result.byName,
    unreached: result.unreached,
    differentiatedNodes: path.map((p) => p.node.name),
    of(blob: Blob): Blob {
      const grad = result.byName.get(blob.name);
      if (!grad) throw new GraphError(`no gradient was built for "${blob.name}": it is not one of the wrt blobs`);
      return grad;
    },
  };
}

/** A node name usable as one scope segment. */
const safeScope = (name: string): string => name.replace(/\//g, '.');

function onesLike(g: GraphBuilder, like: Blob, dtype: GradientDataType): Blob {
  const t = scalarTensor(dtype, 1);
  return g.op('ConstantOfShape', [g.op('Shape', [like], {}, 'loss_shape')], { value: attr.tensor({ ...t, dims: [1] }) }, 'seed');
}

/** The value type of each attribute kind the rules read. */
interface ScalarAttributeValues {
  int: number;
  ints: readonly number[];
  float: number;
  string: string;
}

function makeContext(
  g: GraphBuilder,
  node: GraphNode,
  dtype: GradientDataType,
  gradientOf: (name: string) => Blob | undefined,
  needs: (i: number) => boolean,
): GradientContext {
  const attribute = (name: string): AttributeValue | undefined => node.attributes.get(name);
  const fail = (message: string): never => {
    throw new GraphError(`gradient of ${node.opType} node "${node.name}": ${message}`);
  };
  /** An attribute of the given kind, `fallback` when absent; a GraphError when of another kind. */
  function typed<K extends keyof ScalarAttributeValues, F>(name: string, kind: K, fallback: F): ScalarAttributeValues[K] | F {
    const a = attribute(name);
    if (a === undefined) return fallback;
    if (a.kind !== kind) return fail(`attribute ${name} is ${a.kind}, expected ${kind}`);
    return a.value as ScalarAttributeValues[K];
  }
  return {
    graph: g,
    node,
    inputs: node.inputs.map((n) => (n === '' ? null : { name: n })),
    outputs: node.outputs.map((n) => ({ name: n })),
    dtype,
    needsInputGradient: needs,
    hasOutputGradient: (i) => gradientOf(at(node.outputs, i, 'node.outputs')) !== undefined,
    outputGradient(i) {
      return gradientOf(at(node.outputs, i, 'node.outputs')) ?? zerosLike(g, { name: at(node.outputs, i, 'node.outputs') }, dtype, `zero_grad_${i}`);
    },
    attribute,
    intAttribute: (name, fallback) => typed(name, 'int', fallback),
    intsAttribute: (name, fallback) => typed(name, 'ints', fallback),
    floatAttribute: (name, fallback) => typed(name, 'float', fallback),
    stringAttribute: (name, fallback) => typed(name, 'string', fallback),
    forwardAttributes: () => Object.fromEntries(node.attributes),
    constantOf: (values, dims) =>
      g.constant({ dtype, dims: dims ?? [values.length], data: dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values) }, 'c'),
    filled: (shape, value, name = 'filled') => g.op('ConstantOfShape', [shape], { value: attr.tensor({ ...scalarTensor(dtype, value), dims: [1] }) }, name),
    scalar: (value) => g.constant(scalarTensor(dtype, value), 'c'),
    reduceToShapeOf: (gradient, input) => reduceToShapeOf(g, gradient, input),
    zerosLike: (like) => zerosLike(g, like, dtype),
    sameShape: (a, b) => g.haveSameShape(a.name, b.name),
    fail,
  };
}
