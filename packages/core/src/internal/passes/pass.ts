/**
 * Graph passes: rewrites of the built node list at serialisation (next to dead-node pruning and
 * the float16 conversion), so heads are written like their torchvision modules and still run the
 * fastest onnxruntime formulation. A pass matches a pattern by operator, attributes and
 * initializer shapes, never by node name, so a plugin's layers get the same rewrite as the
 * built-in heads. Every rewrite computes the same values (bit-identical, or the same sums in
 * another order where said).
 */
import type { AttributeValue } from '../../graph/builder.js';
import type { HostTensor } from '../../graph/dtypes.js';
import type { Float16Node } from '../float16.js';

/** The node fields a pass reads and writes (the builder's record shape, as the float16 conversion sees it). */
export type PassNode = Float16Node;

/** One rewrite of a graph. */
export interface GraphPass {
  /** Short name (docs, `GraphPassOptions.disable`). */
  readonly name: string;
  /** Rewrites `graph` in place; returns how many matches it rewrote. */
  apply(graph: PassGraph): number;
}

/** The mutable graph a pass works on. */
export class PassGraph {
  /** Nodes in topological order. */
  nodes: PassNode[];
  /** Initializers added by passes. */
  readonly added = new Map<string, HostTensor>();
  private readonly initializers: ReadonlyMap<string, HostTensor>;
  /** Names read from outside the node list: graph outputs and subgraph reads. A pass never renames or drops them. */
  private readonly pinned: ReadonlySet<string>;
  private counter = 0;

  constructor(nodes: readonly PassNode[], initializers: ReadonlyMap<string, HostTensor>, pinned: ReadonlySet<string>) {
    this.nodes = [...nodes];
    this.initializers = initializers;
    this.pinned = pinned;
  }

  /** The initializer tensor named `name` (original or added). */
  initializer(name: string | undefined): HostTensor | undefined {
    return name === undefined || name === '' ? undefined : (this.added.get(name) ?? this.initializers.get(name));
  }

  /** Whether `name` is a graph output or read by a subgraph. */
  isPinned(name: string): boolean {
    return this.pinned.has(name);
  }

  /** The node producing `name`, if a node does. */
  producer(name: string): PassNode | undefined {
    return this.nodes.find((n) => n.outputs.includes(name));
  }

  /** The nodes reading `name`. */
  consumers(name: string): PassNode[] {
    return this.nodes.filter((n) => n.inputs.includes(name) || [...n.attributes.values()].some((a) => a.kind === 'graph' && a.value.outerReads.includes(name)));
  }

  /** Every value's readers as {@link consumers} gives them (each reading node once), in one pass over the nodes: for passes that look at many values. */
  consumerIndex(): Map<string, PassNode[]> {
    const index = new Map<string, PassNode[]>();
    for (const n of this.nodes) {
      const names = new Set([...n.inputs, ...[...n.attributes.values()].flatMap((a) => (a.kind === 'graph' ? a.value.outerReads : []))]);
      names.delete('');
      for (const name of names) {
        const list = index.get(name);
        if (list) list.push(n);
        else index.set(name, [n]);
      }
    }
    return index;
  }

  /** `name` has exactly one reader, `node`-independent, and nothing outside the node list reads it. */
  soleConsumer(name: string): PassNode | undefined {
    if (this.isPinned(name)) return undefined;
    const readers = this.consumers(name);
    return readers.length === 1 ? readers[0] : undefined;
  }

  /** A fresh blob / node name derived from `base`. */
  fresh(base: string): string {
    this.counter += 1;
    return `${base}::pass${this.counter}`;
  }

  /** Adds an initializer and returns its name. */
  addInitializer(base: string, tensor: HostTensor): string {
    const name = this.fresh(base);
    this.added.set(name, tensor);
    return name;
  }

  /** Replaces `old` by `replacement` (in order) at its position. */
  replace(old: PassNode, replacement: readonly PassNode[]): void {
    const i = this.nodes.indexOf(old);
    if (i < 0) throw new RangeError(`pass: node ${old.name} is not in the graph`);
    this.nodes.splice(i, 1, ...replacement);
  }

  /** Removes `node`. */
  remove(node: PassNode): void {
    this.replace(node, []);
  }
}

/** An int attribute of `node` (or `fallback`). */
export function intAttribute(node: PassNode, key: string, fallback: number): number {
  const a = node.attributes.get(key);
  return a?.kind === 'int' ? a.value : fallback;
}

/** An ints attribute of `node` (or undefined). */
export function intsAttribute(node: PassNode, key: string): readonly number[] | undefined {
  const a = node.attributes.get(key);
  return a?.kind === 'ints' ? a.value : undefined;
}

/** Whether every entry of the ints attribute `key` is `value` (an absent attribute counts as its default `value`). */
export function allInts(node: PassNode, key: string, value: number): boolean {
  return (intsAttribute(node, key) ?? []).every((v) => v === value);
}

/** A node record (no domain). */
export function makeNode(name: string, opType: string, inputs: readonly string[], outputs: readonly string[], attributes: Readonly<Record<string, AttributeValue>> = {}): PassNode {
  return { opType, domain: '', name, inputs, outputs, attributes: new Map(Object.entries(attributes)) };
}

/** An int64 1-D constant tensor. */
export function int64Vector(values: readonly number[]): HostTensor {
  return { dtype: 'int64', dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) };
}
