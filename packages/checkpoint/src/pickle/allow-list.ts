/**
 * The allow-list of the restricted unpickler: the only globals a checkpoint may name, each
 * re-implemented here as a pure data constructor. Nothing from the file is ever looked up,
 * imported or executed: a GLOBAL outside this table fails on the spot, naming it; an allowed
 * global only ever builds one of the records below from already-parsed data.
 */
import { DATA_TYPE_SIZE } from '@rcnn/core';
import type { CheckpointErrorReason } from '../errors.js';
import { type PyKey, PyBytes, PyDict, PyGlobal, type PyRecord, PyTuple, type PyValue, asInt, asKey, asSequence, asText, describe } from './values.js';

/** Element types a torch storage can have in a checkpoint this reader accepts. */
export type TorchDType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

/** Bytes per element of each {@link TorchDType}. */
export const TORCH_DTYPE_SIZE: Readonly<Record<TorchDType, number>> = { ...DATA_TYPE_SIZE, bfloat16: 2 };

/** A torch storage named by a persistent id: `data/<key>` of the archive (or a legacy-format block). */
export interface StorageRecord extends PyRecord {
  readonly kind: 'torch.storage';
  readonly dtype: TorchDType;
  readonly key: string;
  /** Elements the pickle says the storage holds. */
  readonly numel: number;
  /** For legacy-format views of a root storage: element offset into the root. */
  readonly viewOffset?: number;
}

/** A tensor: a strided view of a storage (torch `_rebuild_tensor_v2`). */
export interface TensorRecord extends PyRecord {
  readonly kind: 'torch.tensor';
  readonly storage: StorageRecord;
  readonly offset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
}

/** A numpy dtype (`numpy.dtype('f4', False, True)` + its BUILD state for the byte order). */
export interface NpDTypeRecord extends PyRecord {
  readonly kind: 'numpy.dtype';
  /** Type code without byte order, e.g. `f4`, `i8`, `b1`, `O`. */
  readonly code: string;
  /** `<` little, `>` big, `|` not applicable, `=` native. */
  byteOrder: string;
  /** Structured dtypes (named fields) are recorded, not decoded. */
  structured: boolean;
}

/** A numpy array, filled by BUILD (`_reconstruct`) or built whole (`_frombuffer`). */
export interface NdArrayRecord extends PyRecord {
  readonly kind: 'numpy.ndarray';
  shape: readonly number[];
  dtype: NpDTypeRecord | undefined;
  fortran: boolean;
  /** Raw element bytes; undefined for object arrays (their data is a list of Python objects). */
  data: Uint8Array | undefined;
  built: boolean;
}

/** A numpy scalar (`numpy.core.multiarray.scalar`): kept only so a file holding one still loads. */
export interface NpScalarRecord extends PyRecord {
  readonly kind: 'numpy.scalar';
  readonly dtype: NpDTypeRecord;
  readonly bytes: Uint8Array;
}

/** Reports a violation; never returns. */
export type Fail = (reason: CheckpointErrorReason, message: string) => never;

/** One allow-listed global: what it is and the pure function standing in for it. */
export interface AllowedGlobal {
  readonly module: string;
  readonly name: string;
  /** What the stand-in builds (documentation and error messages). */
  readonly builds: string;
  /** REDUCE (`callable(*args)`); absent for globals that are only ever passed as data. */
  readonly call?: (args: readonly PyValue[], fail: Fail) => PyValue;
  /** NEWOBJ (`cls.__new__(cls, *args)`); absent when not allowed. */
  readonly newObject?: (args: readonly PyValue[], fail: Fail) => PyValue;
}

const STORAGE_TYPES: Readonly<Record<string, TorchDType>> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** The torch dtype of an allow-listed storage-type global, or undefined if `g` is not one. */
export function storageDType(g: PyValue): TorchDType | undefined {
  if (!(g instanceof PyGlobal)) return undefined;
  if (g.module === 'torch' && g.name in STORAGE_TYPES) return STORAGE_TYPES[g.name];
  if ((g.module === 'torch' || g.module === 'torch.storage') && g.name === 'UntypedStorage') return 'uint8';
  return undefined;
}

const isRecord = <K extends string>(v: PyValue, kind: K): v is PyRecord & { kind: K } =>
  typeof v === 'object' && v !== null && 'kind' in v && (v as PyRecord).kind === kind;

/** Checks `size`/`stride`/`offset` and that the view stays inside its storage (before any allocation). */
function tensorFrom(storage: PyValue, offsetV: PyValue, sizeV: PyValue, strideV: PyValue, fail: Fail): TensorRecord {
  if (!isRecord(storage, 'torch.storage')) fail('pickle-malformed', `_rebuild_tensor expects a storage, got ${describe(storage)}`);
  const st = storage as StorageRecord;
  const offset = asInt(offsetV);
  if (offset === undefined || offset < 0) fail('pickle-malformed', `tensor storage offset ${describe(offsetV)} is not a non-negative int`);
  const size = intList(sizeV, 'size', fail);
  const stride = intList(strideV, 'stride', fail);
  if (size.length !== stride.length) fail('pickle-malformed', `tensor size [${size.join(', ')}] and stride [${stride.join(', ')}] differ in length`);
  let numel = 1;
  let last = offset!;
  for (let i = 0; i < size.length; i++) {
    numel *= size[i]!;
    last += (size[i]! - 1) * stride[i]!;
  }
  // Float arithmetic is fine here: anything that loses precision is far past any real storage.
  if (numel > 0 && (last >= st.numel || !Number.isSafeInteger(last))) {
    fail(
      'view-out-of-bounds',
      `tensor view (offset ${offset}, size [${size.join(', ')}], stride [${stride.join(', ')}]) reaches element ${last} of storage "${st.key}", which has ${st.numel} elements`,
    );
  }
  return { kind: 'torch.tensor', storage: st, offset: offset!, size, stride };
}

function intList(v: PyValue, what: string, fail: Fail): number[] {
  const items = asSequence(v);
  if (!items) return fail('pickle-malformed', `tensor ${what} must be a tuple of ints, got ${describe(v)}`);
  if (items.length > 64) fail('pickle-limit', `tensor ${what} has ${items.length} dimensions (limit 64)`);
  return items.map((x) => {
    const n = asInt(x);
    if (n === undefined || n < 0) fail('pickle-malformed', `tensor ${what} holds ${describe(x)}, not a non-negative int`);
    return n!;
  });
}

/** `args` once {@link arity} has accepted it: at least the smallest allowed number of values. */
type Arguments<N extends number, Given extends PyValue[] = []> = Given['length'] extends N ? readonly [...Given, ...PyValue[]] : Arguments<N, [...Given, PyValue]>;

function arity<const N extends number>(args: readonly PyValue[], allowed: readonly N[], what: string, fail: Fail): asserts args is Arguments<N> {
  if (!(allowed as readonly number[]).includes(args.length)) fail('pickle-malformed', `${what} takes ${allowed.join(' or ')} arguments, got ${args.length}`);
}

function ndarrayShape(v: PyValue, fail: Fail): number[] {
  const items = asSequence(v);
  if (!items) return fail('pickle-malformed', `numpy array shape must be a tuple, got ${describe(v)}`);
  if (items.length > 64) fail('pickle-limit', `numpy array has ${items.length} dimensions (limit 64)`);
  return items.map((x) => {
    const n = asInt(x);
    if (n === undefined || n < 0) fail('pickle-malformed', `numpy array shape holds ${describe(x)}`);
    return n!;
  });
}

function bytesOf(v: PyValue): Uint8Array | undefined {
  return v instanceof PyBytes ? v.bytes : undefined;
}

/** numpy `_reconstruct(ndarray, (0,), b'b')`: an empty array that BUILD fills. */
function reconstruct(args: readonly PyValue[], fail: Fail): NdArrayRecord {
  arity(args, [3], 'numpy _reconstruct', fail);
  const cls = args[0];
  if (!(cls instanceof PyGlobal) || cls.module !== 'numpy' || cls.name !== 'ndarray') {
    fail('pickle-malformed', `numpy _reconstruct is only allowed for numpy.ndarray, got ${describe(cls)}`);
  }
  return { kind: 'numpy.ndarray', shape: [0], dtype: undefined, fortran: false, data: new Uint8Array(0), built: false };
}

function dtypeCtor(args: readonly PyValue[], fail: Fail): NpDTypeRecord {
  arity(args, [1, 2, 3], 'numpy.dtype', fail);
  const spec = asText(args[0]);
  if (spec === undefined) fail('pickle-malformed', `numpy.dtype expects a type code string, got ${describe(args[0])}`);
  const m = /^([<>|=]?)([a-zA-Z]\d*)$/.exec(spec!);
  if (!m) fail('pickle-malformed', `numpy.dtype code ${JSON.stringify(spec)} is not a simple type code`);
  return { kind: 'numpy.dtype', code: m![2]!, byteOrder: m![1] || '=', structured: false };
}

function frombuffer(args: readonly PyValue[], fail: Fail): NdArrayRecord {
  arity(args, [4], 'numpy _frombuffer', fail);
  const data = bytesOf(args[0]);
  if (!data) fail('pickle-malformed', `numpy _frombuffer expects a bytes buffer, got ${describe(args[0])}`);
  if (!isRecord(args[1], 'numpy.dtype')) fail('pickle-malformed', `numpy _frombuffer expects a dtype, got ${describe(args[1])}`);
  const order = asText(args[3]);
  if (order !== 'C' && order !== 'F') fail('pickle-malformed', `numpy _frombuffer order must be "C" or "F", got ${describe(args[3])}`);
  return { kind: 'numpy.ndarray', shape: ndarrayShape(args[2], fail), dtype: args[1] as NpDTypeRecord, fortran: order === 'F', data, built: true };
}

function scalar(args: readonly PyValue[], fail: Fail): NpScalarRecord {
  arity(args, [2], 'numpy scalar', fail);
  if (!isRecord(args[0], 'numpy.dtype')) fail('pickle-malformed', `numpy scalar expects a dtype, got ${describe(args[0])}`);
  const b = bytesOf(args[1]);
  if (!b) fail('pickle-malformed', `numpy scalar expects bytes, got ${describe(args[1])}`);
  return { kind: 'numpy.scalar', dtype: args[0] as NpDTypeRecord, bytes: b! };
}

function codecsEncode(args: readonly PyValue[], fail: Fail): PyBytes {
  arity(args, [1, 2], '_codecs.encode', fail);
  const text = asText(args[0]);
  if (text === undefined) fail('pickle-malformed', `_codecs.encode expects a str, got ${describe(args[0])}`);
  const encoding = args.length === 2 ? asText(args[1]!)?.toLowerCase().replace(/[-_]/g, '') : 'utf8';
  if (encoding !== 'latin1' && encoding !== 'iso88591') {
    fail('pickle-malformed', `_codecs.encode is only allowed with encoding "latin1" (how pickle protocol 2 stores bytes), got ${describe(args[1]!)}`);
  }
  const out = new Uint8Array(text!.length);
  for (let i = 0; i < text!.length; i++) {
    const c = text!.charCodeAt(i);
    if (c > 0xff) fail('pickle-malformed', `_codecs.encode(…, "latin1") on a character U+${c.toString(16)} outside latin-1`);
    out[i] = c;
  }
  return new PyBytes(out);
}

function orderedDict(args: readonly PyValue[], fail: Fail): PyDict {
  arity(args, [0, 1], 'collections.OrderedDict', fail);
  const d = new PyDict(true);
  if (args.length === 1) {
    // Python 2.7 pickles OrderedDict as OrderedDict([[key, value], ...]).
    const items = asSequence(args[0]!);
    if (!items) fail('pickle-malformed', `collections.OrderedDict expects a list of pairs, got ${describe(args[0]!)}`);
    for (const item of items!) {
      const pair = asSequence(item);
      if (!pair || pair.length !== 2) fail('pickle-malformed', `collections.OrderedDict item is ${describe(item)}, not a pair`);
      const key = asKey(pair![0]!);
      if (key === undefined) fail('pickle-malformed', `collections.OrderedDict key ${describe(pair![0]!)} is not a hashable scalar`);
      d.map.set(key as PyKey, pair![1]!);
    }
  }
  return d;
}

const rebuildV2 = (args: readonly PyValue[], fail: Fail): TensorRecord => {
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  arity(args, [6, 7], 'torch._utils._rebuild_tensor_v2', fail);
  const hooks = args[5];
  if (hooks instanceof PyDict && hooks.map.size > 0) fail('pickle-malformed', 'tensor has backward hooks (functions cannot be loaded)');
  return tensorFrom(args[0], args[1], args[2], args[3], fail);
};

const storageGlobals: AllowedGlobal[] = [
  ...Object.entries(STORAGE_TYPES).map(([name, dtype]) => ({ module: 'torch', name, builds: `storage type tag (${dtype})` })),
  { module: 'torch', name: 'UntypedStorage', builds: 'storage type tag (raw bytes, uint8)' },
  { module: 'torch.storage', name: 'UntypedStorage', builds: 'storage type tag (raw bytes, uint8)' },
];

const numpyModules = (suffix: string): string[] => [`numpy.core.${suffix}`, `numpy._core.${suffix}`];

/** Every allow-listed global, in documentation order. */
export const ALLOWED_GLOBALS: readonly AllowedGlobal[] = [
  { module: 'collections', name: 'OrderedDict', builds: 'an ordered dict (state dicts)', call: orderedDict, newObject: orderedDict },
  { module: 'torch._utils', name: '_rebuild_tensor_v2', builds: 'a tensor view of a storage (checked against the storage size)', call: rebuildV2 },
  {
    module: 'torch._utils',
    name: '_rebuild_tensor',
    builds: 'a tensor view of a storage (old signature)',
    call: (args, fail) => {
      arity(args, [4], 'torch._utils._rebuild_tensor', fail);
      return tensorFrom(args[0], args[1], args[2], args[3], fail);
    },
  },
  {
    module: 'torch._utils',
    name: '_rebuild_parameter',
    builds: 'the tensor inside an nn.Parameter',
    call: (args, fail) => {
      arity(args, [3], 'torch._utils._rebuild_parameter', fail);
      if (!isRecord(args[0], 'torch.tensor')) fail('pickle-malformed', `_rebuild_parameter expects a tensor, got ${describe(args[0])}`);
      if (args[2] instanceof PyDict && args[2].map.size > 0) fail('pickle-malformed', 'parameter has backward hooks (functions cannot be loaded)');
      return args[0];
    },
  },
  ...storageGlobals,
  ...numpyModules('multiarray').map((module) => ({ module, name: '_reconstruct', builds: 'an empty numpy array for BUILD to fill', call: reconstruct })),
  ...numpyModules('multiarray').map((module) => ({ module, name: 'scalar', builds: 'a numpy scalar (kept as raw bytes)', call: scalar })),
  ...numpyModules('numeric').map((module) => ({ module, name: '_frombuffer', builds: 'a numpy array from an in-band buffer (protocol 5)', call: frombuffer })),
  { module: 'numpy', name: 'ndarray', builds: 'the class tag _reconstruct requires' },
  { module: 'numpy', name: 'dtype', builds: 'a numpy dtype (type code + byte order)', call: dtypeCtor },
  { module: '_codecs', name: 'encode', builds: 'bytes from a latin-1 str (protocol-2 pickles of bytes)', call: codecsEncode },
  ...['builtins', '__builtin__'].map((module) => ({
    module,
    name: 'bytes',
    builds: 'empty bytes (protocol-2 pickles of b"")',
    call: (args: readonly PyValue[], fail: Fail) => {
      if (args.length !== 0) fail('pickle-malformed', `${module}.bytes is only allowed with no arguments`);
      return new PyBytes(new Uint8Array(0));
    },
  })),
];

const byName = new Map(ALLOWED_GLOBALS.map((g) => [`${g.module}.${g.name}`, g]));

/** The allow-list entry of `module.name`, or undefined when the global is not allowed. */
export function allowedGlobal(module: string, name: string): AllowedGlobal | undefined {
  return byName.get(`${module}.${name}`);
}

/**
 * BUILD (`obj.__setstate__(state)`) for the objects that need it: numpy arrays and dtypes, and
 * dict attributes (a torch state dict's `_metadata`). Anything else is refused.
 */
export function applyBuild(obj: PyValue, state: PyValue, fail: Fail): void {
  if (obj instanceof PyDict) {
    // `OrderedDict` with instance attributes: state is {attr: value} (or (state, slotstate)).
    const attrs = state instanceof PyTuple && state.items.length === 2 ? state.items[0] : state;
    if (attrs === null) return;
    if (!(attrs instanceof PyDict)) fail('pickle-malformed', `BUILD on a dict with state ${describe(state)}`);
    for (const [k, v] of (attrs as PyDict).map) {
      if (typeof k !== 'string') fail('pickle-malformed', `BUILD attribute name ${String(k)} is not a str`);
      (obj as PyDict).attributes.set(k as string, v);
    }
    return;
  }
  if (isRecord(obj, 'numpy.dtype')) {
    const items = asSequence(state);
    if (!items || items.length < 8) fail('pickle-malformed', `numpy dtype state ${describe(state)} is not the 8/9-tuple numpy writes`);
    const dt = obj as NpDTypeRecord;
    const order = asText(items![1]!);
    if (order === undefined || !/^[<>|=]$/.test(order)) fail('pickle-malformed', `numpy dtype byte order ${describe(items![1]!)}`);
    dt.byteOrder = order!;
    dt.structured = items![3] !== null || items![2] !== null;
    return;
  }
  if (isRecord(obj, 'numpy.ndarray')) {
    const arr = obj as NdArrayRecord;
    if (arr.built) fail('pickle-malformed', 'BUILD applied twice to one numpy array');
    let items = asSequence(state);
    if (items && items.length === 5) items = items.slice(1); // (version, shape, dtype, is_fortran, data)
    if (!items || items.length !== 4) fail('pickle-malformed', `numpy array state ${describe(state)} is not (shape, dtype, is_fortran, data)`);
    const [shape, dtype, fortran, data] = items as readonly [PyValue, PyValue, PyValue, PyValue]; // length checked just above
    if (!isRecord(dtype, 'numpy.dtype')) fail('pickle-malformed', `numpy array dtype is ${describe(dtype)}`);
    arr.shape = ndarrayShape(shape, fail);
    arr.dtype = dtype as NpDTypeRecord;
    arr.fortran = fortran === true || fortran === 1;
    if (data instanceof PyBytes) arr.data = data.bytes;
    else if (typeof data === 'string') {
      // Python 3 reading a Python 2 pickle with encoding="latin1" sees the data as str.
      const out = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) {
        const c = data.charCodeAt(i);
        if (c > 0xff) fail('pickle-malformed', 'numpy array data string holds a non-latin-1 character');
        out[i] = c;
      }
      arr.data = out;
    } else arr.data = undefined; // object array: a list of Python objects, never decoded
    arr.built = true;
    return;
  }
  fail('pickle-malformed', `BUILD on ${describe(obj)} is not allowed (only numpy arrays/dtypes and dict attributes)`);
}
