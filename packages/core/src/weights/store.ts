import { WeightsError } from '../errors.js';
import { printable } from '../io/printable.js';
import type { HostTensor } from '../graph/dtypes.js';
import { type WeightConventions, conventionsFromMetadata } from './conventions.js';
import { decodeEntry, parseSafetensors, readSafetensorsFile, type SafetensorsFile } from './safetensors.js';

/** Where a {@link WeightStore} gets tensors from. Importers (pth, Detectron pkl) implement this. */
export interface WeightSource {
  /** File path or description, used in every error message. */
  readonly description: string;
  /** All tensor keys. */
  keys(): Iterable<string>;
  /** The tensor of `key`, decoded; undefined if absent. */
  get(key: string): HostTensor | undefined;
  /** The convention and architecture the file brings, when it knows them (a Detectron2 checkpoint, a converted file). */
  readonly conventions?: WeightConventions;
}

/** How a random (untrained) weight is drawn when no weights file is given. */
export type RandomInit =
  /** N(0, std²). */
  | { readonly kind: 'normal'; readonly std: number }
  /** He/Kaiming normal: N(0, gain²/fan_in) with fan_in = shape[1] * prod(shape[2:]). */
  | { readonly kind: 'he'; readonly gain?: number }
  /** U(low, high). */
  | { readonly kind: 'uniform'; readonly low: number; readonly high: number }
  /** Every element = value. */
  | { readonly kind: 'constant'; readonly value: number };

/** What to do with NaN / Inf in a weight. */
export type NonFinitePolicy = 'error' | 'warn' | 'ignore';

/** Options of a {@link WeightStore}. */
export interface WeightStoreOptions {
  /** NaN/Inf in a weight: refuse (default), warn once per key, or ignore. */
  readonly nonFinite?: NonFinitePolicy;
  /** Receives warnings (default: `console.warn`). */
  readonly onWarning?: (message: string) => void;
}

/** Converts IEEE half-precision bits to float32. */
export function halfToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac === 0 ? sign * Infinity : NaN;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const fmt = (dims: readonly number[]): string => `[${dims.join(', ')}]`;

/** FNV-1a hash of a string (seeds the per-key random stream). */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: a small, fast, seedable PRNG in [0, 1), identical on every platform. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws from a uniform generator (Box-Muller). */
export function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
}

/**
 * Most values one random tensor may hold: 2^29 float32 = 2 GiB, the protobuf limit of an ONNX
 * ModelProto, so no buildable model needs more. Past it the config is absurd (a width of 1e8).
 */
export const MAX_RANDOM_TENSOR_ELEMENTS = 2 ** 29;

/** Draws a tensor of `dims` from `init`, deterministically from (seed, key). */
export function drawRandom(dims: readonly number[], init: RandomInit, seed: number, key: string): Float32Array {
  const n = dims.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_RANDOM_TENSOR_ELEMENTS) {
    // Without weights the config alone sets the shapes; refuse before allocating, naming the tensor.
    throw new WeightsError(`random weights: tensor "${printable(key)}" of shape ${fmt(dims)} would hold ${n} values, more than ${MAX_RANDOM_TENSOR_ELEMENTS} (2 GiB, the ONNX model size limit)`, {
      key,
      hint: 'a width or size in the config is far too large (FPN.DIM, FAST_RCNN.MLP_HEAD_DIM, MODEL.NUM_CLASSES, …)',
    });
  }
  const out = new Float32Array(n);
  const rand = seededRandom((seed * 0x9e3779b1) ^ hashKey(key));
  const gauss = gaussian(rand);
  switch (init.kind) {
    case 'constant':
      out.fill(init.value);
      break;
    case 'uniform':
      for (let i = 0; i < n; i++) out[i] = init.low + (init.high - init.low) * rand();
      break;
    case 'normal':
      for (let i = 0; i < n; i++) out[i] = init.std * gauss();
      break;
    case 'he': {
      const fanIn = dims.length >= 2 ? dims.slice(1).reduce((a, b) => a * b, 1) : Math.max(1, dims[0] ?? 1);
      const std = (init.gain ?? Math.SQRT2) / Math.sqrt(fanIn);
      for (let i = 0; i < n; i++) out[i] = std * gauss();
      break;
    }
  }
  return out;
}

/** The buffers a store and its forks have read, each once, held weakly. */
interface ReadBuffers {
  readonly seen: WeakSet<ArrayBufferLike>;
  readonly refs: WeakRef<ArrayBufferLike>[];
}

/**
 * The weights a model is built from, queried by torchvision state-dict key with the expected shape.
 * Tracks which keys were used, so a build can report missing, unused ("extra") and mis-shaped
 * weights by name. With no file ({@link WeightStore.random}) it draws seeded random weights on
 * demand, and {@link isRandom} tells the runtime to warn that detections are meaningless.
 */
export class WeightStore {
  /** Describes where the weights come from (file path or "random (seed 0)"). */
  readonly description: string;
  /** True when weights are drawn at random rather than loaded. */
  readonly isRandom: boolean;

  private readonly source: WeightSource | undefined;
  private readonly seed: number;
  private readonly used = new Set<string>();
  private readonly options: Required<WeightStoreOptions>;
  /** Which key each array returned by {@link take} holds (traces trainable parameters into the graph). */
  private readonly takenData = new WeakMap<Float32Array, string>();
  private trainablePredicate: (key: string) => boolean = () => false;
  private readonly warned = new Set<string>();
  /**
   * Buffers behind every tensor read so far, shared with forks (they read the same source). Held
   * weakly: listing a drawn array must not keep it alive once its graph is gone.
   */
  private readonly readBuffers: ReadBuffers;

  private constructor(source: WeightSource | undefined, seed: number, options: WeightStoreOptions, readBuffers: ReadBuffers = { seen: new WeakSet(), refs: [] }) {
    this.source = source;
    this.readBuffers = readBuffers;
    this.seed = seed;
    this.isRandom = source === undefined;
    this.description = source ? source.description : `random weights (seed ${seed})`;
    this.options = { nonFinite: options.nonFinite ?? 'error', onWarning: options.onWarning ?? ((m) => console.warn(m)) };
  }

  /** Weights from any {@link WeightSource}. */
  static fromSource(source: WeightSource, options: WeightStoreOptions = {}): WeightStore {
    return new WeightStore(source, 0, options);
  }

  /** Weights from a parsed safetensors file. */
  static fromSafetensors(file: SafetensorsFile | string, options: WeightStoreOptions = {}): WeightStore {
    const parsed = typeof file === 'string' ? readSafetensorsFile(file) : file;
    return new WeightStore(safetensorsSource(parsed), 0, options);
  }

  /** Weights from a safetensors buffer already in memory. */
  static fromSafetensorsBuffer(buffer: Uint8Array, description = '<buffer>', options: WeightStoreOptions = {}): WeightStore {
    return WeightStore.fromSafetensors(parseSafetensors(buffer, description), options);
  }

  /** Weights from an in-memory map of tensors. */
  static fromTensors(tensors: ReadonlyMap<string, HostTensor>, description: string, options: WeightStoreOptions = {}): WeightStore {
    return new WeightStore({ description, keys: () => tensors.keys(), get: (k) => tensors.get(k) }, 0, options);
  }

  /** Seeded random weights, drawn on demand with each request's {@link RandomInit}. */
  static random(seed = 0, options: WeightStoreOptions = {}): WeightStore {
    return new WeightStore(undefined, seed, options);
  }

  /** The convention and architecture the weights bring (config layers), if their source knows them. */
  get conventions(): WeightConventions | undefined {
    return this.source?.conventions;
  }

  /** A store over the same weights with fresh usage tracking (e.g. to build the features-only net). */
  fork(): WeightStore {
    const forked = new WeightStore(this.source, this.seed, this.options, this.readBuffers);
    forked.trainablePredicate = this.trainablePredicate;
    return forked;
  }

  /** Whether the source has `key` (always true for random weights). */
  has(key: string): boolean {
    return this.source ? this.source.get(key) !== undefined : true;
  }

  /** The shape of `key` in the source, or undefined when absent (and for random weights, which have no shapes). */
  shapeOf(key: string): readonly number[] | undefined {
    return this.source?.get(key)?.dims;
  }

  /** Every key of the source (empty for random weights). */
  keys(): string[] {
    return this.source ? [...this.source.keys()] : [];
  }

  /**
   * The float32 data of `key`, which must have exactly `shape`. float16/float64/bfloat16 are
   * converted. Marks the key used. Fails naming the file, key, expected and actual shape.
   */
  take(key: string, shape: readonly number[], init: RandomInit = { kind: 'he' }): Float32Array {
    const data = this.read(key, shape, init);
    this.takenData.set(data, key);
    return data;
  }

  /**
   * Declares which parameters train (torchvision state-dict keys, or a predicate): stages that
   * fold a parameter into another for inference (the backbone's conv + frozen norm) keep a
   * trainable one separate, and {@link exposeTrainableParameters} turns them into graph inputs.
   * Default: none.
   */
  setTrainable(keys: Iterable<string> | ((key: string) => boolean)): void {
    if (typeof keys === 'function') {
      this.trainablePredicate = keys;
      return;
    }
    const set = new Set(keys);
    this.trainablePredicate = (key) => set.has(key);
  }

  /** Whether `key` was declared trainable with {@link setTrainable}. */
  isTrainable(key: string): boolean {
    return this.trainablePredicate(key);
  }

  /**
   * The key whose {@link take} returned exactly this array, if any: how a graph initializer holding
   * a weight unchanged is traced back to its state-dict key.
   */
  keyOfData(data: Float32Array): string | undefined {
    return this.takenData.get(data);
  }

  /**
   * The buffers behind every tensor read so far by this store and its forks: the file's own buffer
   * (a safetensors tensor is a view into it), and each converted or drawn array. Whoever owns the
   * store (e.g. a detector that loaded the file itself) may free them once the model is serialised
   * rather than wait for a garbage collection; the tensors read become empty then.
   */
  backingBuffers(): ArrayBufferLike[] {
    return this.readBuffers.refs.map((r) => r.deref()).filter((b): b is ArrayBufferLike => b !== undefined);
  }

  private noteRead(buffer: ArrayBufferLike): void {
    if (this.readBuffers.seen.has(buffer)) return;
    this.readBuffers.seen.add(buffer);
    this.readBuffers.refs.push(new WeakRef(buffer));
  }

  private read(key: string, shape: readonly number[], init: RandomInit): Float32Array {
    const data = this.readUntracked(key, shape, init);
    this.noteRead(data.buffer);
    return data;
  }

  private readUntracked(key: string, shape: readonly number[], init: RandomInit): Float32Array {
    this.used.add(key);
    if (!this.source) return drawRandom(shape, init, this.seed, key);
    const t = this.source.get(key);
    if (!t) {
      throw new WeightsError(`${this.description}: missing tensor "${printable(key)}" (expected shape ${fmt(shape)})${this.nearby(key)}`, {
        file: this.description,
        key,
        hint: 'the weights may be for another architecture or use another naming (see `rcnn convert --from`)',
      });
    }
    if (!sameShape(t.dims, shape)) {
      throw new WeightsError(`${this.description}: tensor "${printable(key)}" has shape ${fmt(t.dims)}, expected ${fmt(shape)}`, {
        file: this.description,
        key,
        hint: 'the config (classes, widths, depths) does not match the weights',
      });
    }
    // The source's own buffer too: a converted (float16, float64) tensor's file stays behind it.
    this.noteRead(t.data.buffer);
    const data = toFloat32(t, key, this.description);
    this.checkFinite(key, data, t.dtype === 'float64' ? (t.data as Float64Array) : undefined);
    return data;
  }

  /** Like {@link take} but returns undefined when the key is absent (optional parameters such as biases). */
  takeOptional(key: string, shape: readonly number[], init: RandomInit = { kind: 'constant', value: 0 }): Float32Array | undefined {
    if (this.source && this.source.get(key) === undefined) return undefined;
    return this.take(key, shape, init);
  }

  /** Marks keys as used without reading them (buffers a model does not need, e.g. `num_batches_tracked`). */
  markUsed(...keys: string[]): void {
    for (const k of keys) this.used.add(k);
  }

  /** Keys read so far. */
  usedKeys(): ReadonlySet<string> {
    return this.used;
  }

  /** Keys of the source never read, optionally only those under `prefixes`. */
  unusedKeys(prefixes?: readonly string[]): string[] {
    return this.keys().filter((k) => !this.used.has(k) && (!prefixes || prefixes.some((p) => k.startsWith(p))));
  }

  /** Throws a {@link WeightsError} listing every key under `prefixes` that the build did not use. */
  assertAllUsed(prefixes?: readonly string[]): void {
    const unused = this.unusedKeys(prefixes);
    if (unused.length > 0) {
      const shown = unused.slice(0, 20).map((k) => printable(k)).join(', ');
      throw new WeightsError(
        `${this.description}: ${unused.length} tensor(s) not used by the model${prefixes ? ` under ${prefixes.join(', ')}` : ''}: ${shown}${unused.length > 20 ? ', …' : ''}`,
        { file: this.description, key: unused[0], hint: 'the weights have layers this config does not build: check the config against the checkpoint' },
      );
    }
  }

  /** `wide`: the float64 values `data` was narrowed from (a finite 1e300 becomes Inf in float32: say so). */
  private checkFinite(key: string, data: Float32Array, wide?: Float64Array): void {
    if (this.options.nonFinite === 'ignore') return;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        const what =
          wide !== undefined && Number.isFinite(wide[i])
            ? `${wide[i]}, out of float32 range (±3.4e38),`
            : Number.isNaN(data[i])
              ? 'NaN'
              : 'Inf';
        const message = `${this.description}: tensor "${printable(key)}" holds ${what} at flat index ${i}`;
        if (this.options.nonFinite === 'error') {
          throw new WeightsError(message, { file: this.description, key, hint: 'the checkpoint is corrupt; load with nonFinite: "warn" to proceed anyway' });
        }
        if (!this.warned.has(key)) {
          this.warned.add(key);
          this.options.onWarning(`warning: ${message}`);
        }
        return;
      }
    }
  }

  private nearby(key: string): string {
    const prefix = key.split('.').slice(0, -1).join('.');
    const near = this.keys().filter((k) => prefix.length > 0 && k.startsWith(prefix)).slice(0, 5);
    return near.length > 0 ? `; keys under "${printable(prefix)}": ${near.map((k) => printable(k)).join(', ')}` : '';
  }
}

function toFloat32(t: HostTensor, key: string, file: string): Float32Array {
  switch (t.dtype) {
    case 'float32':
      return t.data as Float32Array;
    case 'float64':
      return Float32Array.from(t.data as Float64Array);
    case 'float16':
      return halfToFloat32(t.data as Uint16Array);
    default:
      throw new WeightsError(`${file}: tensor "${printable(key)}" has dtype ${t.dtype}, expected a floating-point type (F32, F16, BF16, F64)`, { file, key });
  }
}

function safetensorsSource(file: SafetensorsFile): WeightSource {
  const cache = new Map<string, HostTensor>();
  const conventions = conventionsFromMetadata(file.metadata, file.source);
  return {
    description: file.source,
    ...(conventions ? { conventions } : {}),
    keys: () => file.entries.keys(),
    get(key) {
      const hit = cache.get(key);
      if (hit) return hit;
      const entry = file.entries.get(key);
      if (!entry) return undefined;
      const t = decodeEntry(entry, file.source);
      cache.set(key, t);
      return t;
    },
  };
}
