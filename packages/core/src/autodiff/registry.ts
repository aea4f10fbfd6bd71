/**
 * The one registry of gradient rules: for each ONNX operator type, how the gradient of its inputs
 * is built from the gradient of its outputs. Built-in rules are installed by rules/*.ts; a plugin
 * that adds an operator adds its rule with {@link registerGradientRule}.
 */
import { GraphError } from '../errors.js';
import type { AttributeValue, Blob, GraphBuilder, GraphNode } from '../graph/builder.js';

/** Floating-point element types a backward can be built in. */
export type GradientDataType = 'float32' | 'float64';

/** What a {@link GradientRule} gets to build one node's backward. */
export interface GradientContext {
  /** The graph the backward nodes are appended to (inside the gradient's name scope). */
  readonly graph: GraphBuilder;
  /** The forward node. */
  readonly node: GraphNode;
  /** The forward node's inputs (`null` for omitted optional inputs). */
  readonly inputs: readonly (Blob | null)[];
  /** The forward node's outputs. */
  readonly outputs: readonly Blob[];
  /** Float type of the backward (the forward's floating-point tensors have this type). */
  readonly dtype: GradientDataType;
  /** Whether the gradient of input `i` is wanted (it lies on a path from a wrt blob). */
  needsInputGradient(i: number): boolean;
  /** Gradient of output `i`; zeros of the output's shape when no gradient reaches it. */
  outputGradient(i: number): Blob;
  /** Whether any gradient reaches output `i` (else {@link outputGradient} materialises zeros). */
  hasOutputGradient(i: number): boolean;
  /** An attribute of the forward node, or undefined. */
  attribute(name: string): AttributeValue | undefined;
  /** An INT attribute, or `fallback`. */
  intAttribute(name: string, fallback: number): number;
  /** An INTS attribute, or `fallback`. */
  intsAttribute(name: string, fallback: readonly number[] | undefined): readonly number[] | undefined;
  /** A FLOAT attribute, or `fallback`. */
  floatAttribute(name: string, fallback: number): number;
  /** A STRING attribute, or `fallback`. */
  stringAttribute(name: string, fallback: string): string;
  /** The forward node's attributes as a record (to build a node with the same attributes). */
  forwardAttributes(): Record<string, AttributeValue>;
  /** A scalar constant of {@link dtype}. */
  scalar(value: number): Blob;
  /** A 1-D constant of {@link dtype} holding `values`, reshaped to `dims` (default `[values.length]`). */
  constantOf(values: readonly number[], dims?: readonly number[]): Blob;
  /** A tensor of {@link dtype} of the (int64 [rank]) `shape`, every element `value`. */
  filled(shape: Blob, value: number, name?: string): Blob;
  /** Sums `gradient` over the axes that broadcasting added to `input` (dynamic shapes), then reshapes to `input`'s shape. */
  reduceToShapeOf(gradient: Blob, input: Blob): Blob;
  /** Zeros of `like`'s shape in {@link dtype}. */
  zerosLike(like: Blob): Blob;
  /** Whether the graph's builder was told that `a` and `b` always have the same shape ({@link GraphBuilder.declareSameShape}). */
  sameShape(a: Blob, b: Blob): boolean;
  /** Fails with a GraphError naming the node. */
  fail(message: string): never;
}

/** Input or output slots, as a list or decided per node. */
export type SlotSelector = readonly number[] | ((node: GraphNode) => readonly number[]);

/**
 * How one operator type is differentiated. `backward` returns, for each forward input, its
 * gradient blob, or `null`/`undefined` for none (non-differentiable input, or not needed).
 */
export interface GradientRule {
  /** Input slots through which a gradient flows (default: every input). */
  readonly differentiableInputs?: SlotSelector;
  /** Output slots that carry a gradient (default: every output). */
  readonly differentiableOutputs?: SlotSelector;
  /** Builds the input gradients; called only when some output has a gradient and some differentiable input needs one. */
  backward(ctx: GradientContext): readonly (Blob | null | undefined)[];
}

const RULES = new Map<string, GradientRule>();

/** Key of an operator in the registry: `opType` for the ONNX domain, `domain::opType` else. */
const ruleKey = (opType: string, domain = ''): string => (domain === '' || domain === 'ai.onnx' ? opType : `${domain}::${opType}`);

/**
 * Registers (or replaces) the gradient rule of `opType` (in `domain`, default the ONNX domain).
 * The one place every operator's backward comes from: built-in rules and plugins' rules alike.
 */
export function registerGradientRule(opType: string, rule: GradientRule, domain = ''): void {
  RULES.set(ruleKey(opType, domain), rule);
}

/** A rule for operators whose outputs never carry a gradient (shape arithmetic, comparisons, NMS, …). */
export const NON_DIFFERENTIABLE: GradientRule = {
  differentiableInputs: [],
  differentiableOutputs: [],
  backward: () => [],
};

/** Registers each op type as non-differentiable (its outputs are constants to the backward). */
export function registerNonDifferentiable(...opTypes: string[]): void {
  for (const op of opTypes) registerGradientRule(op, NON_DIFFERENTIABLE);
}

/** The rule of an operator, or undefined when none is registered. */
export function gradientRuleFor(opType: string, domain = ''): GradientRule | undefined {
  return RULES.get(ruleKey(opType, domain));
}

/** Every operator type with a registered rule (sorted), for error messages and docs. */
export function knownGradientOps(): string[] {
  return [...RULES.keys()].sort();
}

/** Resolves a {@link SlotSelector} for a node (default: all `count` slots). */
export function selectSlots(selector: SlotSelector | undefined, node: GraphNode, count: number): readonly number[] {
  if (selector === undefined) return Array.from({ length: count }, (_, i) => i);
  return typeof selector === 'function' ? selector(node) : selector;
}

/** Throws the "no gradient rule" error for a node on a differentiated path. */
export function missingRule(node: GraphNode): never {
  throw new GraphError(
    `no gradient rule for ${node.domain ? `${node.domain}::` : ''}${node.opType} (node "${
      node.name
    }") on the path from the differentiated blobs to the loss; known: ${knownGradientOps().join(', ')}`,
    {
      hint: 'register one with registerGradientRule(opType, rule), or cut the path with graph.stopGradient(blob)',
    },
  );
}
