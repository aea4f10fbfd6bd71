/**
 * The values the restricted unpickler builds. They are plain data: nothing here can call code,
 * and the only "objects" are the few records the allow-listed constructors produce (tensors,
 * storages, numpy arrays and dtypes), defined in allow-list.ts.
 */

/** Python `bytes` (or a Python-2 `str`, which is bytes that may also be read as a latin-1 string). */
export class PyBytes {
  constructor(
    readonly bytes: Uint8Array,
    /** True for Python 2 `str` (SHORT_BINSTRING/BINSTRING): usable as a dict key or dtype code too. */
    readonly legacyString = false,
  ) {}
}

/** A Python tuple. */
export class PyTuple {
  constructor(
    readonly items: readonly PyValue[],
    /** Nesting depth (1 + deepest child), tracked to refuse absurdly deep structures. */
    readonly depth: number,
  ) {}
}

/** A Python list. */
export class PyList {
  readonly items: PyValue[] = [];
  depth = 1;
}

/** Keys a {@link PyDict} accepts: the hashable scalars state dicts use. */
export type PyKey = string | number | bigint | boolean | null;

/** A Python dict or `collections.OrderedDict` (insertion order is kept either way). */
export class PyDict {
  readonly map = new Map<PyKey, PyValue>();
  /** Instance attributes set by BUILD (a state dict's `_metadata`). */
  readonly attributes = new Map<string, PyValue>();
  depth = 1;
  constructor(readonly ordered: boolean) {}
}

/**
 * A reference to an allow-listed global (`torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`, …).
 * Only allow-list.ts creates these; the unpickler never resolves anything else.
 */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  /** `module.name`, as Python would print it. */
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Any object the allow-listed constructors produce (see allow-list.ts). */
export interface PyRecord {
  /** Discriminator of the record kind. */
  readonly kind: string;
}

/** Every value the unpickler can hold. */
export type PyValue = null | boolean | number | bigint | string | PyBytes | PyTuple | PyList | PyDict | PyGlobal | PyRecord;

/** Depth of a value for nesting limits (scalars 0). */
export function depthOf(v: PyValue): number {
  return v instanceof PyTuple || v instanceof PyList || v instanceof PyDict ? v.depth : 0;
}

/** A short, non-recursive description of a value for error messages. */
export function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number' || typeof v === 'bigint') return `int/float ${String(v)}`;
  if (typeof v === 'string') return `str ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (v instanceof PyBytes) return `${v.legacyString ? 'py2 str' : 'bytes'} of length ${v.bytes.length}`;
  if (v instanceof PyTuple) return `tuple of ${v.items.length}`;
  if (v instanceof PyList) return `list of ${v.items.length}`;
  if (v instanceof PyDict) return `${v.ordered ? 'OrderedDict' : 'dict'} of ${v.map.size}`;
  if (v instanceof PyGlobal) return `global ${v.qualifiedName}`;
  return v.kind;
}

/** A value as a dict key, or undefined if Python would not hash it the way a state dict needs. */
export function asKey(v: PyValue): PyKey | undefined {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return v;
  // Python 2 pickles store `str` keys as bytes; Python 3 reads them with encoding="latin1".
  if (v instanceof PyBytes && v.legacyString) return latin1(v.bytes);
  return undefined;
}

/** Decodes bytes as latin-1 (every byte is one code point). */
export function latin1(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return out;
}

/** A value as text: `str`, or a Python-2 `str` read as latin-1. */
export function asText(v: PyValue): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof PyBytes && v.legacyString) return latin1(v.bytes);
  return undefined;
}

/** A value as a safe integer (Python int or bool), else undefined. */
export function asInt(v: PyValue): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return undefined;
}

/** A value as the items of a tuple or list, else undefined. */
export function asSequence(v: PyValue): readonly PyValue[] | undefined {
  return v instanceof PyTuple || v instanceof PyList ? v.items : undefined;
}
