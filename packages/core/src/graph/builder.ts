import { GraphError } from '../errors.js';
import { encodeModelProto } from '../onnx/proto.js';
import { type Float16Node, convertToFloat16 } from '../internal/float16.js';
import { type GraphPass, INFERENCE_PASSES, runGraphPasses } from '../internal/passes/index.js';
import { type DataType, type HostTensor, ONNX_DATA_TYPE, elementCount } from './dtypes.js';

/** ONNX opset every rcnn-node graph targets (RoiAlign has no ORT kernel at opset 22+). */
export const DEFAULT_OPSET = 17;
/** ONNX IR version written into every model (IR 8 goes with opset 17). */
export const IR_VERSION = 8;

/**
 * A named value in the graph: a graph input, an initializer or a node output. Blobs are only
 * created by a {@link GraphBuilder}, which checks on serialisation that every blob a node reads
 * was produced somewhere.
 */
export interface Blob {
  /** Fully scoped name, unique in its graph. */
  readonly name: string;
}

/**
 * A dimension of a declared input/output: a fixed size or a symbolic name such as `"N"` (the names
 * docs/serving.md uses: `N` images, `H`/`W` padded input size, `P` proposal slots per image, `R`
 * RoI rows, `D` detections, …). Every declared value has a rank: the ONNX checker rejects an output
 * without a shape, and tools that read a model's outputs (TensorRT's parser, Triton's config
 * auto-complete, viewers) need it.
 */
export type Dim = number | string;

/** An ONNX attribute value with its type made explicit (ONNX distinguishes INT from FLOAT). */
export type AttributeValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'strings'; readonly value: readonly string[] }
  | { readonly kind: 'tensor'; readonly value: HostTensor }
  | { readonly kind: 'graph'; readonly value: Subgraph };

/**
 * Attribute shorthand accepted by {@link GraphBuilder.node}: a plain integer is INT, an array of
 * integers INTS, a string STRING. Floats must be wrapped with {@link attr.float} / {@link attr.floats}
 * so that `1.0` is never silently written as an INT.
 */
export type AttributeInput = number | readonly number[] | string | AttributeValue;

/** Constructors for explicitly typed attribute values. */
export const attr = {
  /** An INT attribute. */
  int: (value: number): AttributeValue => ({ kind: 'int', value }),
  /** A FLOAT attribute. */
  float: (value: number): AttributeValue => ({ kind: 'float', value }),
  /** An INTS attribute. */
  ints: (value: readonly number[]): AttributeValue => ({ kind: 'ints', value }),
  /** A FLOATS attribute. */
  floats: (value: readonly number[]): AttributeValue => ({ kind: 'floats', value }),
  /** A STRING attribute. */
  string: (value: string): AttributeValue => ({ kind: 'string', value }),
  /** A STRINGS attribute. */
  strings: (value: readonly string[]): AttributeValue => ({ kind: 'strings', value }),
  /** A TENSOR attribute (e.g. the value of ConstantOfShape). */
  tensor: (value: HostTensor): AttributeValue => ({ kind: 'tensor', value }),
  /** A GRAPH attribute (the body of If / Loop). */
  graph: (value: Subgraph): AttributeValue => ({ kind: 'graph', value }),
} as const;

/** Options of {@link GraphBuilder.node}. */
export interface NodeOptions {
  /** Number of outputs (default 1). */
  readonly outputs?: number;
  /** Base name of the node and its outputs inside the current scope (default: the op type). */
  readonly name?: string;
  /** Operator domain (default: the ONNX domain). */
  readonly domain?: string;
}

/** Options of {@link GraphBuilder.initializer}. */
export interface InitializerOptions {
  /**
   * The tensor's memory was allocated for this graph and nothing else reads it (default false):
   * it may be freed once the graph is serialised (see {@link GraphBuilder.ownedInitializerBuffers}).
   */
  readonly owned?: boolean;
}

/**
 * The outputs of a node declared with `outputs: N`: a tuple of `N` blobs when `N` is a literal
 * (so `const [values, indices] = g.node(…, { outputs: 2 })` needs no index check), else an array.
 */
export type NodeOutputs<N extends number> = number extends N ? Blob[] : BlobTuple<N, []>;
type BlobTuple<N extends number, Acc extends Blob[]> = Acc['length'] extends N ? Acc : BlobTuple<N, [...Acc, Blob]>;

/** A declared graph input or output. */
export interface ValueInfo {
  readonly name: string;
  readonly dtype: DataType;
  /**
   * One entry per axis (a scalar has none). `undefined` only in ad-hoc graphs (tests, probes): such
   * an output has no shape, which the ONNX checker rejects, so models refuse it
   * ({@link ModelOptions.requireShapes}).
   */
  readonly dims: readonly Dim[] | undefined;
}

/** A subgraph (If / Loop body) output: the blob with its element type and shape. */
export interface SubgraphOutput {
  readonly blob: Blob;
  readonly dtype: DataType;
  /** One entry per axis, as for a graph output; names shared with the enclosing graph mean the same size. */
  readonly dims?: readonly Dim[];
}

/** A node as the builder records it (the float16 conversion reads and writes the same shape). */
type NodeRecord = Float16Node;

/**
 * A recorded node as {@link GraphBuilder.graphNodes} shows it (read-only; for graph transforms such
 * as autodiff): op type, domain (`""` is ONNX), name, input names (`""` = omitted optional input),
 * output names and attributes.
 */
export type GraphNode = Float16Node;

/** A finished subgraph (body of an If / Loop node), produced by {@link GraphBuilder.subgraph}. */
export interface Subgraph {
  readonly name: string;
  /** @internal serialised form */
  readonly proto: Record<string, unknown>;
  /** Names the body reads from the enclosing graph (checked by the parent on serialisation). */
  readonly outerReads: readonly string[];
  /** Outputs of this body (and of bodies nested in it) declared without a shape. */
  readonly unshaped: readonly string[];
}

/** Summary numbers of a built graph. */
export interface GraphStats {
  readonly nodes: number;
  readonly initializers: number;
  /** Total number of elements in all initializers. */
  readonly parameters: number;
  /** Node count per op type. */
  readonly opCounts: Readonly<Record<string, number>>;
}

/** Options of {@link GraphBuilder.toModelProto}. */
export interface ModelOptions {
  readonly producerName?: string;
  readonly producerVersion?: string;
  readonly docString?: string;
  /** String key/value pairs stored as ModelProto `metadata_props` (e.g. the config used). */
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * Serialise the conv stages (Conv, ConvTranspose, Gemm, MatMul and the element-wise ops that
   * continue them) in float16, with Casts at the boundaries and float16 weights; inputs and
   * outputs stay as declared (see internal/float16.ts). For GPUs.
   */
  readonly float16?: boolean;
  /**
   * Graph passes run on the pruned graph before serialisation (default {@link INFERENCE_PASSES}:
   * deconv as 1x1 conv + DepthToSpace, label-only class logits, row gathers sunk past fc layers;
   * see internal/passes/). `[]` serialises the graph as built.
   */
  readonly passes?: readonly GraphPass[];
  /**
   * Refuse (GraphError) to serialise a graph with an output, or an If/Loop body output, declared
   * without a shape. ONNX's checker requires one on every graph and subgraph output, and tools that
   * read a model's outputs (TensorRT's parser, Triton's config auto-complete) need the rank;
   * every model rcnn-node builds sets it.
   */
  readonly requireShapes?: boolean;
}

/**
 * Builds one ONNX graph: inputs, initializers, nodes and outputs, with name scopes in the style of
 * Caffe2's `core.NameScope` so that two heads, or two replicas of the model, never produce the
 * same blob name. Serialises to ModelProto bytes that `InferenceSession.create(bytes)` accepts.
 *
 * Graph inputs and outputs keep the public names given to {@link input} / {@link output}; every
 * other name (nodes, initializers, intermediate blobs) is prefixed with the scope active when it
 * was created, e.g. `gpu_0/rpn/conv`.
 */
export class GraphBuilder {
  /** Graph name written into the GraphProto. */
  readonly name: string;
  /** Opset version of the default ONNX domain. */
  readonly opset: number;

  private readonly scopes: string[] = [];
  private readonly taken = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly nodes: NodeRecord[] = [];
  private readonly initializers = new Map<string, HostTensor>();
  private readonly ownedInitializers = new Set<string>();
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly constantCache = new Map<string, Blob>();
  private readonly parent: GraphBuilder | undefined;
  private readonly outerReads = new Set<string>();
  private readonly gradientStops = new Set<string>();
  /** Blobs declared to have equal shapes ({@link declareSameShape}): union-find parents by name. */
  private readonly shapeClasses = new Map<string, string>();

  constructor(options: { name?: string; opset?: number; scope?: string; parent?: GraphBuilder } = {}) {
    this.name = options.name ?? 'rcnn';
    this.opset = options.opset ?? options.parent?.opset ?? DEFAULT_OPSET;
    this.parent = options.parent;
    if (options.parent) {
      // A subgraph shares its parent's name space so that names never shadow outer ones.
      this.scopes.push(...options.parent.scopes);
    }
    if (options.scope) this.scopes.push(...options.scope.split('/').filter((s) => s.length > 0));
  }

  /** The active scope prefix including the trailing slash (`""` at the root). */
  get scope(): string {
    return this.scopes.length === 0 ? '' : `${this.scopes.join('/')}/`;
  }

  /** Runs `fn` with `name` pushed onto the scope stack (names created inside get the prefix). */
  withScope<T>(name: string, fn: () => T): T {
    if (name.length === 0 || name.includes('/')) throw new GraphError(`invalid scope name "${name}"`);
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  /** Whether a blob of this exact name already exists in this graph (or an enclosing one). */
  has(name: string): boolean {
    return this.taken.has(name) || (this.parent?.has(name) ?? false);
  }

  /** Returns a fresh name `scope + base`, suffixed `_1`, `_2`, … if already used. */
  uniqueName(base: string): string {
    const full = `${this.scope}${base}`;
    if (!this.has(full)) {
      this.claim(full);
      return full;
    }
    let n = this.counters.get(full) ?? 0;
    let candidate: string;
    do {
      n += 1;
      candidate = `${full}_${n}`;
    } while (this.has(candidate));
    this.counters.set(full, n);
    this.claim(candidate);
    return candidate;
  }

  private claim(name: string): void {
    this.taken.add(name);
    // Reserve in enclosing graphs too, so siblings of a subgraph cannot reuse the name.
    let p = this.parent;
    while (p) {
      p.taken.add(name);
      p = p.parent;
    }
  }

  /** Declares a graph input with a public (unscoped) name. */
  input(name: string, dtype: DataType, dims: readonly Dim[]): Blob {
    if (this.has(name)) throw new GraphError(`graph input "${name}" is declared twice`);
    this.claim(name);
    this.inputs.push({ name, dtype, dims: [...dims] });
    return { name };
  }

  /**
   * Declares `blob` as a graph output named `name` (public, unscoped) of element type `dtype` and
   * shape `dims` (symbolic names for sizes known only at run time). If the blob has another name
   * an Identity node is added, so heads never need to know the public names. Every output of a
   * model that leaves the process needs `dims` (see {@link ModelOptions.requireShapes}).
   */
  output(blob: Blob, name: string, dtype: DataType, dims?: readonly Dim[]): void {
    if (this.outputs.some((o) => o.name === name)) throw new GraphError(`graph output "${name}" is declared twice`);
    if (dims) checkDims(`graph output "${name}"`, dims);
    if (blob.name !== name) {
      if (this.has(name)) throw new GraphError(`graph output name "${name}" is already used by another blob`);
      this.claim(name);
      this.nodes.push({
        opType: 'Identity',
        domain: '',
        name: `${this.scope}output/${name}`,
        inputs: [blob.name],
        outputs: [name],
        attributes: new Map(),
      });
    }
    this.outputs.push({ name, dtype, dims: dims ? [...dims] : undefined });
  }

  /** The declared outputs, in declaration order. */
  get declaredOutputs(): readonly ValueInfo[] {
    return this.outputs;
  }

  /** The declared inputs, in declaration order. */
  get declaredInputs(): readonly ValueInfo[] {
    return this.inputs;
  }

  /**
   * Adds a named initializer (a weight) under the current scope and returns its blob. `owned`:
   * the tensor's memory was made for this graph alone (a norm folded into a conv weight, say), so
   * {@link ownedInitializerBuffers} lists it for whoever frees the graph's memory after serialising.
   */
  initializer(base: string, tensor: HostTensor, options: InitializerOptions = {}): Blob {
    if (tensor.data.length !== elementCount(tensor.dims)) {
      throw new GraphError(`initializer "${base}": data length ${tensor.data.length} does not match dims [${tensor.dims.join(', ')}]`);
    }
    const name = this.uniqueName(base);
    this.initializers.set(name, tensor);
    if (options.owned) this.ownedInitializers.add(name);
    return { name };
  }

  /**
   * The buffers behind the initializers added as `owned` that are still in the graph: memory no
   * one else reads, which a caller may free once the graph is serialised (the graph cannot be
   * serialised again after that).
   */
  ownedInitializerBuffers(): ArrayBufferLike[] {
    const buffers = new Set<ArrayBufferLike>();
    for (const name of this.ownedInitializers) {
      const t = this.initializers.get(name);
      if (t) buffers.add(t.data.buffer);
    }
    return [...buffers];
  }

  /**
   * A small constant (shape, index, epsilon …). Identical constants are shared within the graph,
   * so helpers may ask for `constInt64([0])` freely.
   */
  constant(tensor: HostTensor, base = 'const'): Blob {
    const key = `${tensor.dtype}|${tensor.dims.join(',')}|${Array.from(tensor.data as ArrayLike<number | bigint>, String).join(',')}`;
    const cached = key.length < 512 ? this.constantCache.get(key) : undefined;
    if (cached) return cached;
    const blob = this.initializer(base, tensor);
    if (key.length < 512) this.constantCache.set(key, blob);
    return blob;
  }

  /** An int64 constant: a scalar when `dims` is `[]`, else a 1-D tensor by default. */
  constInt64(values: number | readonly number[], dims?: readonly number[]): Blob {
    const arr = typeof values === 'number' ? [values] : values;
    const shape = dims ?? (typeof values === 'number' ? [] : [arr.length]);
    return this.constant({ dtype: 'int64', dims: shape, data: BigInt64Array.from(arr, (v) => BigInt(v)) }, 'i64');
  }

  /** A float32 constant: a scalar when `values` is a number, else 1-D unless `dims` says otherwise. */
  constFloat32(values: number | readonly number[], dims?: readonly number[]): Blob {
    const arr = typeof values === 'number' ? [values] : values;
    const shape = dims ?? (typeof values === 'number' ? [] : [arr.length]);
    return this.constant({ dtype: 'float32', dims: shape, data: Float32Array.from(arr) }, 'f32');
  }

  /**
   * Adds a node. `null` inputs are ONNX's omitted optional inputs. Returns the output blobs, named
   * `scope + (options.name ?? opType)` (suffixed `:i` for the i-th output when there are several).
   */
  node<N extends number = 1>(
    opType: string,
    inputs: readonly (Blob | null)[],
    attributes: Readonly<Record<string, AttributeInput>> = {},
    options: NodeOptions & { readonly outputs?: N } = {},
  ): NodeOutputs<N> {
    const count = options.outputs ?? 1;
    const nodeName = this.uniqueName(options.name ?? opType);
    const outputs: string[] = [];
    for (let i = 0; i < count; i++) {
      const outName = count === 1 ? nodeName : `${nodeName}:${i}`;
      if (count > 1) this.claim(outName);
      outputs.push(outName);
    }
    const attrs = new Map<string, AttributeValue>();
    for (const [key, value] of Object.entries(attributes)) attrs.set(key, normaliseAttribute(opType, key, value));
    this.nodes.push({
      opType,
      domain: options.domain ?? '',
      name: nodeName,
      inputs: inputs.map((b) => (b === null ? '' : b.name)),
      outputs,
      attributes: attrs,
    });
    // One blob per declared output, so the tuple type of NodeOutputs<N> holds by construction.
    return outputs.map((name) => ({ name })) as NodeOutputs<N>;
  }

  /** {@link node} for the common single-output case. */
  op(opType: string, inputs: readonly (Blob | null)[], attributes?: Readonly<Record<string, AttributeInput>>, name?: string): Blob {
    const [out] = this.node(opType, inputs, attributes, name === undefined ? {} : { name });
    return out;
  }

  /**
   * Builds a subgraph (the body of an If or Loop node). `inputs` are the body's formal inputs;
   * `fn` returns the blobs to expose as its outputs, each with its element type and shape. The
   * body may read any blob of this graph.
   */
  subgraph(
    base: string,
    inputs: readonly { name: string; dtype: DataType; dims?: readonly Dim[] }[],
    fn: (body: GraphBuilder, inputs: Blob[]) => readonly SubgraphOutput[],
  ): Subgraph {
    const body = new GraphBuilder({ name: this.uniqueName(base), parent: this });
    const formal = inputs.map((i) => {
      const name = body.uniqueName(i.name);
      body.inputs.push({ name, dtype: i.dtype, dims: i.dims ? [...i.dims] : [] });
      return { name };
    });
    const results = fn(body, formal);
    results.forEach((r, i) => {
      // Subgraph outputs are always fresh Identity outputs: ONNX wants them produced in the body.
      if (r.dims) checkDims(`output ${i} of subgraph "${body.name}"`, r.dims);
      const out = body.op('Identity', [r.blob], {}, `out${i}`);
      body.outputs.push({ name: out.name, dtype: r.dtype, dims: r.dims ? [...r.dims] : undefined });
    });
    return { name: body.name, proto: body.graphProto(true), outerReads: [...body.outerReads], unshaped: body.unshapedOutputs() };
  }

  /** Counts of nodes, initializers and parameters. */
  stats(): GraphStats {
    const opCounts: Record<string, number> = {};
    for (const n of this.nodes) opCounts[n.opType] = (opCounts[n.opType] ?? 0) + 1;
    let parameters = 0;
    for (const t of this.initializers.values()) parameters += t.data.length;
    return { nodes: this.nodes.length, initializers: this.initializers.size, parameters, opCounts };
  }

  /** Every node name, blob name and initializer name created so far (for scope checks). */
  allNames(): string[] {
    const names = new Set<string>();
    for (const n of this.nodes) {
      names.add(n.name);
      for (const o of n.outputs) names.add(o);
    }
    for (const k of this.initializers.keys()) names.add(k);
    return [...names];
  }

  /** Node op types and names in insertion order, for inspection and tests. */
  listNodes(): readonly { readonly opType: string; readonly name: string; readonly inputs: readonly string[]; readonly outputs: readonly string[] }[] {
    return this.nodes;
  }

  /** The initializer tensor of a blob, if the blob is an initializer. */
  initializerOf(blob: Blob): HostTensor | undefined {
    return this.initializers.get(blob.name);
  }

  /** Every node with its attributes, in insertion (topological) order: what graph transforms such as autodiff read. */
  graphNodes(): readonly GraphNode[] {
    return this.nodes;
  }

  /** Every initializer blob name with its tensor, in creation order. */
  listInitializers(): readonly (readonly [string, HostTensor])[] {
    return [...this.initializers];
  }

  /**
   * Detectron's `StopGradient`: an Identity of `blob` through which {@link buildGradients} (autodiff)
   * never propagates, so everything computed before it is treated as a constant by the backward.
   */
  stopGradient(blob: Blob, name = 'stop_gradient'): Blob {
    const out = this.op('Identity', [blob], {}, name);
    this.gradientStops.add(out.name);
    return out;
  }

  /** Whether `name` is the output of a {@link stopGradient}. */
  isGradientStopped(name: string): boolean {
    return this.gradientStops.has(name);
  }

  /**
   * Declares that `blobs` have the same shape whatever the graph's inputs (a residual sum's two
   * operands and its result). Shapes are dynamic, so the builder cannot see this itself; the
   * backward uses it to hand an element-wise op's output gradient to such an input as is instead of
   * summing it back over broadcast axes at run time (a full copy of the gradient per input). A
   * wrong declaration gives gradients of the wrong shape: declare only what holds by construction.
   */
  declareSameShape(...blobs: readonly Blob[]): void {
    const [first, ...rest] = blobs.map((b) => this.shapeClassOf(b.name));
    for (const r of rest) if (r !== first) this.shapeClasses.set(r, first!);
  }

  /** Whether `a` and `b` were declared to have the same shape ({@link declareSameShape}); same name counts. */
  haveSameShape(a: string, b: string): boolean {
    return a === b || this.shapeClassOf(a) === this.shapeClassOf(b);
  }

  private shapeClassOf(name: string): string {
    let root = name;
    for (let next = this.shapeClasses.get(root); next !== undefined; next = this.shapeClasses.get(root)) root = next;
    return root;
  }

  /**
   * Turns the initializer `blob` into a graph input named `inputName` (public, unscoped) with the
   * initializer's dtype and dims, so that its value is fed at every run (trainable parameters:
   * one session serves every training step). Nodes keep reading the old blob name, produced by an
   * Identity of the new input placed before every other node. Returns the input blob.
   */
  promoteInitializerToInput(blob: Blob, inputName: string): Blob {
    const tensor = this.initializers.get(blob.name);
    if (!tensor) throw new GraphError(`promoteInitializerToInput: "${blob.name}" is not an initializer of graph "${this.name}"`);
    if (this.parent) throw new GraphError('promoteInitializerToInput() called on a subgraph');
    if (inputName === blob.name) throw new GraphError(`promoteInitializerToInput: input name "${inputName}" must differ from the initializer's`);
    const input = this.input(inputName, tensor.dtype, tensor.dims);
    this.replaceInitializerByIdentity(blob, input);
    return input;
  }

  /** Drops the initializer `blob` and makes its name an Identity of `input`, first in the node list (every reader stays valid). */
  private replaceInitializerByIdentity(blob: Blob, input: Blob): void {
    this.initializers.delete(blob.name);
    for (const [key, cached] of this.constantCache) if (cached.name === blob.name) this.constantCache.delete(key);
    this.nodes.unshift({
      opType: 'Identity',
      domain: '',
      name: this.uniqueName(`param/${blob.name.replace(/\//g, '.')}`),
      inputs: [input.name],
      outputs: [blob.name],
      attributes: new Map(),
    });
  }

  /**
   * Replaces the initializer `blob` by an Identity of the existing graph input `input` (same dtype
   * and dims): a second initializer of a trainable weight (the same parameter read by two parts of
   * the graph) becomes a second use of its input, so the backward sums the gradients of both uses.
   */
  aliasInitializerToInput(blob: Blob, input: Blob): void {
    const tensor = this.initializers.get(blob.name);
    if (!tensor) throw new GraphError(`aliasInitializerToInput: "${blob.name}" is not an initializer of graph "${this.name}"`);
    if (this.parent) throw new GraphError('aliasInitializerToInput() called on a subgraph');
    const declared = this.inputs.find((i) => i.name === input.name);
    if (!declared) throw new GraphError(`aliasInitializerToInput: "${input.name}" is not an input of graph "${this.name}"`);
    if (declared.dtype !== tensor.dtype || (declared.dims ?? []).join(',') !== tensor.dims.join(',')) {
      throw new GraphError(`aliasInitializerToInput: "${blob.name}" is ${tensor.dtype} [${tensor.dims.join(', ')}] but input "${input.name}" is ${declared.dtype} [${(declared.dims ?? []).join(', ')}]`);
    }
    this.replaceInitializerByIdentity(blob, input);
  }

  /** Serialises the graph to ModelProto bytes (opset {@link opset}, IR {@link IR_VERSION}). */
  toModelProto(options: ModelOptions = {}): Uint8Array {
    if (this.parent) throw new GraphError('toModelProto() called on a subgraph');
    if (this.outputs.length === 0) throw new GraphError(`graph "${this.name}" has no outputs`);
    if (options.requireShapes) {
      const unshaped = this.unshapedOutputs();
      if (unshaped.length > 0) {
        throw new GraphError(`graph "${this.name}" declares output(s) without a shape: ${unshaped.join(', ')}; every graph and subgraph output needs its dims (symbolic names for run-time sizes)`);
      }
    }
    const model: Record<string, unknown> = {
      ir_version: IR_VERSION,
      opset_import: [{ domain: '', version: this.opset }],
      producer_name: options.producerName ?? 'rcnn-node',
      producer_version: options.producerVersion ?? '0',
      doc_string: options.docString ?? '',
      graph: this.graphProto(false, options.float16 ?? false, options.passes ?? INFERENCE_PASSES),
      metadata_props: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    };
    return encodeModelProto(model);
  }

  /** Outputs without a declared shape: this graph's, then those of the bodies its nodes hold. */
  private unshapedOutputs(): string[] {
    // A body's outputs are named after the body (`then_branch` bodies are often shared with `else_branch`).
    const own = this.outputs.filter((o) => o.dims === undefined).map((o) => (this.parent ? `${this.name}:${o.name}` : o.name));
    // A model keeps only the nodes its outputs need (graphProto): a dead body is never written.
    const nodes = this.parent ? this.nodes : this.liveNodes();
    const nested = nodes.flatMap((n) => [...n.attributes.values()].flatMap((a) => (a.kind === 'graph' ? a.value.unshaped : [])));
    return [...new Set([...own, ...nested])];
  }

  private graphProto(isSubgraph: boolean, float16 = false, passes: readonly GraphPass[] = []): Record<string, unknown> {
    this.checkWiring(isSubgraph);
    // onnxruntime runs every node of a graph, needed or not, so a model's serialised graph keeps
    // only what its outputs depend on: taps that are not outputs (and the initializers only they
    // read) cost nothing. Subgraph bodies are kept whole (their outputs are all used).
    let nodes: readonly NodeRecord[] = isSubgraph ? this.nodes : this.liveNodes();
    let allInitializers: ReadonlyMap<string, HostTensor> = this.initializers;
    const subgraphReads = (list: readonly NodeRecord[]): string[] =>
      list.flatMap((n) => [...n.attributes.values()].flatMap((a) => (a.kind === 'graph' ? a.value.outerReads : [])));
    if (!isSubgraph && passes.length > 0) {
      const rewritten = runGraphPasses(nodes, this.initializers, new Set([...this.outputs.map((o) => o.name), ...subgraphReads(nodes)]), passes);
      nodes = rewritten.nodes;
      allInitializers = new Map([...allInitializers, ...rewritten.added]);
    }
    if (float16) {
      const converted = convertToFloat16(nodes, allInitializers, new Set([...this.outputs.map((o) => o.name), ...subgraphReads(nodes)]));
      nodes = converted.nodes;
      allInitializers = new Map([...allInitializers, ...converted.initializers]);
    }
    const read = new Set<string>([...this.outputs.map((o) => o.name), ...subgraphReads(nodes)]);
    for (const n of nodes) for (const i of n.inputs) read.add(i);
    const initializers = isSubgraph ? [...allInitializers] : [...allInitializers].filter(([name]) => read.has(name));
    return {
      name: this.name,
      node: nodes.map((n) => ({
        name: n.name,
        op_type: n.opType,
        domain: n.domain,
        input: n.inputs,
        output: n.outputs,
        attribute: [...n.attributes].map(([name, value]) => attributeProto(name, value)),
      })),
      initializer: initializers.map(([name, t]) => tensorProto(name, t)),
      input: this.inputs.map(valueInfoProto),
      output: this.outputs.map(valueInfoProto),
    };
  }

  /** The nodes the declared outputs depend on (directly, or through a subgraph that reads them), in order. */
  private liveNodes(): NodeRecord[] {
    const needed = new Set<string>(this.outputs.map((o) => o.name));
    const keep = new Array<boolean>(this.nodes.length).fill(false);
    // Nodes are in topological order, so one backward pass finds every producer.
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      if (!n.outputs.some((o) => needed.has(o))) continue;
      keep[i] = true;
      for (const input of n.inputs) if (input !== '') needed.add(input);
      for (const a of n.attributes.values()) if (a.kind === 'graph') for (const r of a.value.outerReads) needed.add(r);
    }
    return this.nodes.filter((_, i) => keep[i]);
  }

  /** Every node input must be produced earlier (ONNX requires topological order). */
  private checkWiring(isSubgraph: boolean): void {
    const known = new Set<string>([...this.inputs.map((i) => i.name), ...this.initializers.keys()]);
    for (const n of this.nodes) {
      for (const input of n.inputs) {
        if (input === '' || known.has(input)) continue;
        if (isSubgraph && this.parent?.has(input)) {
          this.outerReads.add(input);
          continue;
        }
        throw new GraphError(`node "${n.name}" (${n.opType}) reads "${input}", which no earlier node, input or initializer produces`);
      }
      for (const a of n.attributes.values()) {
        if (a.kind !== 'graph') continue;
        for (const r of a.value.outerReads) {
          if (known.has(r)) continue;
          // A nested body reading further out: this body reads it from its parent too (so that
          // the top graph keeps its producer when it prunes dead nodes).
          if (isSubgraph && this.parent?.has(r)) this.outerReads.add(r);
          else throw new GraphError(`subgraph "${a.value.name}" of node "${n.name}" reads "${r}", which is not produced before the node`);
        }
      }
      for (const o of n.outputs) {
        if (known.has(o)) throw new GraphError(`blob "${o}" is produced twice`);
        known.add(o);
      }
    }
    for (const o of this.outputs) {
      if (!known.has(o.name)) throw new GraphError(`graph output "${o.name}" is never produced`);
    }
  }
}

/** A declared shape must be a list of non-negative integers and non-empty names (an ONNX `dim_value` / `dim_param`). */
function checkDims(what: string, dims: readonly Dim[] | undefined): void {
  if (!Array.isArray(dims)) throw new GraphError(`${what} declares no shape: pass its dims (symbolic names for run-time sizes)`);
  for (const d of dims) {
    const ok = typeof d === 'number' ? Number.isInteger(d) && d >= 0 : typeof d === 'string' && d.length > 0;
    if (!ok) throw new GraphError(`${what} has an invalid dim ${String(d)} in [${dims.join(', ')}]: dims are non-negative integers or non-empty names`);
  }
}

function normaliseAttribute(opType: string, key: string, value: AttributeInput): AttributeValue {
  if (typeof value === 'string') return { kind: 'string', value };
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) {
      throw new GraphError(`attribute "${key}" of ${opType} is ${value}, not an integer: wrap float attributes with attr.float()`);
    }
    return { kind: 'int', value };
  }
  if (Array.isArray(value)) {
    const list = value as readonly number[];
    if (!list.every((v) => Number.isInteger(v))) {
      throw new GraphError(`attribute "${key}" of ${opType} has non-integer entries: wrap float lists with attr.floats()`);
    }
    return { kind: 'ints', value: list };
  }
  return value as AttributeValue;
}

const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, graph: 5, floats: 6, ints: 7, strings: 8 } as const;

function attributeProto(name: string, a: AttributeValue): Record<string, unknown> {
  const base = { name, type: ATTRIBUTE_TYPE[a.kind] };
  switch (a.kind) {
    case 'int':
      return { ...base, i: a.value };
    case 'float':
      return { ...base, f: a.value };
    case 'string':
      return { ...base, s: new TextEncoder().encode(a.value) };
    case 'ints':
      return { ...base, ints: [...a.value] };
    case 'floats':
      return { ...base, floats: [...a.value] };
    case 'strings':
      return { ...base, strings: a.value.map((s) => new TextEncoder().encode(s)) };
    case 'tensor':
      return { ...base, t: tensorProto('', a.value) };
    case 'graph':
      return { ...base, g: a.value.proto };
  }
}

/** Raw little-endian bytes of a host tensor (a view, no copy, on little-endian hosts). */
function rawBytes(t: HostTensor): Uint8Array {
  const d = t.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function tensorProto(name: string, t: HostTensor): Record<string, unknown> {
  return { name, dims: [...t.dims], data_type: ONNX_DATA_TYPE[t.dtype], raw_data: rawBytes(t) };
}

function valueInfoProto(v: ValueInfo): Record<string, unknown> {
  const tensorType: Record<string, unknown> = { elem_type: ONNX_DATA_TYPE[v.dtype] };
  // A declared shape is written even for a scalar (an empty dim list): the ONNX checker requires a
  // shape on every graph input and output, and an absent one would read as "rank unknown".
  if (v.dims) tensorType.shape = { dim: v.dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) };
  return { name: v.name, type: { tensor_type: tensorType } };
}
