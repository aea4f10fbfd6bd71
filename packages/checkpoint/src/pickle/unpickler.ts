/**
 * A restricted unpickler: a small stack machine for the subset of the pickle format (protocols
 * 2-5, and the binary protocol-1 opcodes they reuse) that state dicts and numpy weight files use.
 *
 * Security model (see docs/weights.md):
 * - GLOBAL / STACK_GLOBAL / INST name a global; only the allow-list in allow-list.ts is accepted,
 *   and the name is refused the moment it is read, before anything else happens.
 * - An allowed global is never resolved to real code: REDUCE / NEWOBJ / BUILD run the pure data
 *   constructors of the allow-list, and refuse globals that are only allowed as data.
 * - Every length is checked against the bytes that remain before anything is allocated; string,
 *   bytes and integer sizes, stack height, MARK depth and container nesting are bounded, so a
 *   hostile stream fails fast with a {@link CheckpointError} instead of hanging or exhausting memory.
 * - The machine is iterative (no recursion over the input), so nesting cannot overflow the JS stack.
 */
import { CheckpointError, type CheckpointErrorReason } from '../errors.js';
import { type Fail, allowedGlobal, applyBuild } from './allow-list.js';
import { PyBytes, PyDict, PyGlobal, PyList, PyTuple, type PyValue, asKey, depthOf, describe } from './values.js';

/** Limits of one run of the restricted unpickler (`readCheckpoint` / `convertCheckpointFile` take them as `limits`). */
export interface UnpickleLimits {
  /** Deepest container nesting accepted (default 1000). */
  readonly maxDepth: number;
  /** Most values on the stack at once (default 1,000,000). */
  readonly maxStack: number;
  /** Most nested MARKs (default 1000). */
  readonly maxMarks: number;
  /** Longest LONG1/LONG4 integer in bytes (default 64; int64 needs 8, torch's magic number 10). */
  readonly maxIntBytes: number;
}

/** Default {@link UnpickleLimits}: far above what any state dict needs. */
export const DEFAULT_UNPICKLE_LIMITS: UnpickleLimits = { maxDepth: 1000, maxStack: 1_000_000, maxMarks: 1000, maxIntBytes: 64 };

/** Options of {@link unpickle}. */
export interface UnpickleOptions {
  /** File (and member) name used in every error. */
  readonly source: string;
  /** Byte offset to start at (several pickles can follow each other, as in torch's legacy format). */
  readonly start?: number;
  /** Resolves BINPERSID ids (torch storages). Without it persistent ids are refused. */
  readonly persistentLoad?: (pid: PyValue, fail: Fail) => PyValue;
  readonly limits?: Partial<UnpickleLimits>;
}

/** The result of one pickle: its value and the offset just after its STOP opcode. */
export interface UnpickleResult {
  readonly value: PyValue;
  readonly end: number;
}

/** Opcodes this reader knows by name but refuses (for precise messages). */
const REFUSED_OPCODES: Readonly<Record<number, string>> = {
  0x49: 'INT (protocol 0 text)',
  0x4c: 'LONG (protocol 0 text)',
  0x53: 'STRING (protocol 0 text)',
  0x56: 'UNICODE (protocol 0 text)',
  0x46: 'FLOAT (protocol 0 text)',
  0x70: 'PUT (protocol 0 text)',
  0x67: 'GET (protocol 0 text)',
  0x50: 'PERSID (protocol 0 text)',
  0x6f: 'OBJ (instantiates a class)',
  0x82: 'EXT1 (extension registry)',
  0x83: 'EXT2 (extension registry)',
  0x84: 'EXT4 (extension registry)',
  0x92: 'NEWOBJ_EX (instantiates a class with keyword arguments)',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x97: 'NEXT_BUFFER (out-of-band buffer)',
  0x98: 'READONLY_BUFFER',
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Runs one pickle from `bytes` (starting at `options.start`) through the restricted machine.
 * Throws a {@link CheckpointError} on anything outside the supported subset or the allow-list.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  const limits = { ...DEFAULT_UNPICKLE_LIMITS, ...options.limits };
  const source = options.source;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength;
  let pos = options.start ?? 0;
  let opAt = pos;
  let opName = '';
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();

  const error = (reason: CheckpointErrorReason, message: string, global?: string): never => {
    throw new CheckpointError(reason, `${source}: pickle ${opName ? `opcode ${opName} ` : ''}at byte ${opAt}: ${message}`, {
      file: source,
      ...(global === undefined ? {} : { global }),
      hint:
        reason === 'pickle-global'
          ? 'only plain tensors/arrays in dicts can be loaded; in Python, re-save with torch.save(model.state_dict(), path)'
          : undefined,
    });
  };
  const fail: Fail = (reason, message) => error(reason, message);

  const need = (count: number | bigint, what: string): number => {
    const remaining = n - pos;
    if (typeof count === 'bigint' ? count > BigInt(remaining) : count > remaining) {
      error('pickle-truncated', `${what} declares ${String(count)} bytes but only ${remaining} remain`);
    }
    return Number(count);
  };
  const take = (count: number | bigint, what: string): Uint8Array => {
    const len = need(count, what);
    const out = bytes.subarray(pos, pos + len);
    pos += len;
    return out;
  };
  const u8 = (): number => {
    need(1, 'argument');
    return bytes[pos++]!;
  };
  const u16 = (): number => {
    need(2, 'argument');
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4, 'argument');
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = (): number => {
    need(4, 'argument');
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): bigint => {
    need(8, 'argument');
    const v = view.getBigUint64(pos, true);
    pos += 8;
    return v;
  };
  const line = (what: string): string => {
    // GLOBAL/INST arguments: newline-terminated ASCII names (bounded, so a missing newline fails fast).
    const limit = Math.min(n, pos + 1024);
    let end = pos;
    while (end < limit && bytes[end] !== 0x0a) end++;
    if (end >= limit) error(end >= n ? 'pickle-truncated' : 'pickle-limit', `${what} is not a newline-terminated name of at most 1024 bytes`);
    const text = decodeUtf8(bytes.subarray(pos, end), what);
    pos = end + 1;
    return text;
  };
  const decodeUtf8 = (b: Uint8Array, what: string): string => {
    try {
      return utf8.decode(b);
    } catch {
      return error('pickle-malformed', `${what} is not valid UTF-8`);
    }
  };

  const floor = (): number => (marks.length > 0 ? marks[marks.length - 1]! : 0);
  const push = (v: PyValue): void => {
    if (stack.length >= limits.maxStack) error('pickle-limit', `stack holds more than ${limits.maxStack} values`);
    stack.push(v);
  };
  const pop = (): PyValue => {
    if (stack.length <= floor()) error('pickle-malformed', 'stack underflow');
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length <= floor()) error('pickle-malformed', 'stack underflow (no object to update)');
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    const at = marks.pop();
    if (at === undefined) return error('pickle-malformed', 'no MARK to pop to');
    return stack.splice(at);
  };
  const nest = (parent: PyList | PyDict, child: PyValue): void => {
    const d = depthOf(child) + 1;
    if (d > parent.depth) {
      if (d > limits.maxDepth) error('pickle-limit', `containers nested more than ${limits.maxDepth} deep`);
      parent.depth = d;
    }
  };
  const tuple = (items: PyValue[]): PyTuple => {
    let d = 0;
    for (const it of items) d = Math.max(d, depthOf(it));
    if (d + 1 > limits.maxDepth) error('pickle-limit', `containers nested more than ${limits.maxDepth} deep`);
    return new PyTuple(items, d + 1);
  };
  const setItem = (dict: PyValue, k: PyValue, v: PyValue): void => {
    if (!(dict instanceof PyDict)) error('pickle-malformed', `SETITEM on ${describe(dict)}, not a dict`);
    const key = asKey(k);
    if (key === undefined) error('pickle-malformed', `dict key ${describe(k)} is not a hashable scalar`);
    (dict as PyDict).map.set(key!, v);
    nest(dict as PyDict, v);
  };
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const allowed = allowedGlobal(module, name);
    if (!allowed) {
      return error(
        'pickle-global',
        `refers to global "${module}.${name}", which is not on the allow-list of a weights file; refusing to load (nothing was executed or imported)`,
        `${module}.${name}`,
      );
    }
    return new PyGlobal(module, name);
  };
  const callable = (g: PyValue, how: 'call' | 'newObject'): ((args: readonly PyValue[], f: Fail) => PyValue) => {
    if (!(g instanceof PyGlobal)) return error('pickle-malformed', `${how === 'call' ? 'REDUCE' : 'NEWOBJ'} on ${describe(g)}, which is not callable`);
    const impl = allowedGlobal(g.module, g.name)?.[how];
    if (!impl) {
      return error('pickle-global', `global "${g.qualifiedName}" is allowed only as data, not to be ${how === 'call' ? 'called' : 'instantiated'}`, g.qualifiedName);
    }
    return impl;
  };

  for (;;) {
    opAt = pos;
    opName = '';
    if (pos >= n) error('pickle-truncated', 'stream ends before the STOP opcode');
    const op = bytes[pos++]!;
    switch (op) {
      case 0x80: {
        opName = 'PROTO';
        const proto = u8();
        if (proto > 5) error('pickle-opcode', `pickle protocol ${proto} is newer than 5`);
        break;
      }
      case 0x95:
        opName = 'FRAME';
        need(u64(), 'frame');
        break;
      case 0x2e:
        opName = 'STOP';
        return { value: pop(), end: pos };
      case 0x28:
        opName = 'MARK';
        if (marks.length >= limits.maxMarks) error('pickle-limit', `MARKs nested more than ${limits.maxMarks} deep`);
        marks.push(stack.length);
        break;
      case 0x7d:
        push(new PyDict(false));
        break;
      case 0x5d:
        push(new PyList());
        break;
      case 0x29:
        push(new PyTuple([], 1));
        break;
      case 0x74:
        opName = 'TUPLE';
        push(tuple(popMark()));
        break;
      case 0x85:
        opName = 'TUPLE1';
        push(tuple([pop()]));
        break;
      case 0x86: {
        opName = 'TUPLE2';
        const b = pop();
        push(tuple([pop(), b]));
        break;
      }
      case 0x87: {
        opName = 'TUPLE3';
        const c = pop();
        const b = pop();
        push(tuple([pop(), b, c]));
        break;
      }
      case 0x6c: {
        opName = 'LIST';
        const list = new PyList();
        for (const it of popMark()) {
          list.items.push(it);
          nest(list, it);
        }
        push(list);
        break;
      }
      case 0x64: {
        opName = 'DICT';
        const items = popMark();
        if (items.length % 2 !== 0) error('pickle-malformed', 'odd number of items for a dict');
        const dict = new PyDict(false);
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i]!, items[i + 1]!);
        push(dict);
        break;
      }
      case 0x73: {
        opName = 'SETITEM';
        const v = pop();
        const k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: {
        opName = 'SETITEMS';
        const items = popMark();
        if (items.length % 2 !== 0) error('pickle-malformed', 'odd number of items for SETITEMS');
        const dict = top();
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i]!, items[i + 1]!);
        break;
      }
      case 0x61: {
        opName = 'APPEND';
        const v = pop();
        const list = top();
        if (!(list instanceof PyList)) error('pickle-malformed', `APPEND to ${describe(list)}, not a list`);
        (list as PyList).items.push(v);
        nest(list as PyList, v);
        break;
      }
      case 0x65: {
        opName = 'APPENDS';
        const items = popMark();
        const list = top();
        if (!(list instanceof PyList)) error('pickle-malformed', `APPENDS to ${describe(list)}, not a list`);
        for (const it of items) {
          (list as PyList).items.push(it);
          nest(list as PyList, it);
        }
        break;
      }
      case 0x30:
        opName = 'POP';
        if (stack.length > floor()) stack.pop();
        else popMark();
        break;
      case 0x31:
        opName = 'POP_MARK';
        popMark();
        break;
      case 0x32:
        opName = 'DUP';
        push(top());
        break;
      case 0x71:
        opName = 'BINPUT';
        memo.set(u8(), top());
        break;
      case 0x72:
        opName = 'LONG_BINPUT';
        memo.set(u32(), top());
        break;
      case 0x94:
        opName = 'MEMOIZE';
        memo.set(memo.size, top());
        break;
      case 0x68:
      case 0x6a: {
        opName = op === 0x68 ? 'BINGET' : 'LONG_BINGET';
        const idx = op === 0x68 ? u8() : u32();
        if (!memo.has(idx)) error('pickle-malformed', `memo entry ${idx} was never stored`);
        push(memo.get(idx) as PyValue);
        break;
      }
      case 0x4a:
        opName = 'BININT';
        push(i32());
        break;
      case 0x4b:
        opName = 'BININT1';
        push(u8());
        break;
      case 0x4d:
        opName = 'BININT2';
        push(u16());
        break;
      case 0x8a:
      case 0x8b: {
        opName = op === 0x8a ? 'LONG1' : 'LONG4';
        const len = op === 0x8a ? u8() : i32();
        if (len < 0) error('pickle-malformed', `negative integer length ${len}`);
        need(len, 'integer');
        if (len > limits.maxIntBytes) error('pickle-limit', `integer of ${len} bytes (limit ${limits.maxIntBytes})`);
        push(decodeLong(take(len, 'integer')));
        break;
      }
      case 0x47: {
        opName = 'BINFLOAT';
        need(8, 'argument');
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x4e:
        push(null);
        break;
      case 0x88:
        push(true);
        break;
      case 0x89:
        push(false);
        break;
      case 0x58:
      case 0x8c:
      case 0x8d: {
        opName = op === 0x58 ? 'BINUNICODE' : op === 0x8c ? 'SHORT_BINUNICODE' : 'BINUNICODE8';
        const len = op === 0x58 ? u32() : op === 0x8c ? u8() : u64();
        push(decodeUtf8(take(len, 'string'), 'string'));
        break;
      }
      case 0x54:
      case 0x55: {
        opName = op === 0x54 ? 'BINSTRING' : 'SHORT_BINSTRING';
        const len = op === 0x54 ? i32() : u8();
        if (len < 0) error('pickle-malformed', `negative string length ${len}`);
        push(new PyBytes(take(len, 'string'), true));
        break;
      }
      case 0x42:
      case 0x43:
      case 0x8e:
      case 0x96: {
        opName = op === 0x42 ? 'BINBYTES' : op === 0x43 ? 'SHORT_BINBYTES' : op === 0x8e ? 'BINBYTES8' : 'BYTEARRAY8';
        const len = op === 0x42 ? u32() : op === 0x43 ? u8() : u64();
        push(new PyBytes(take(len, 'bytes')));
        break;
      }
      case 0x63: {
        opName = 'GLOBAL';
        const module = line('module name');
        const name = line('global name');
        push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        opName = 'STACK_GLOBAL';
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') error('pickle-malformed', 'STACK_GLOBAL needs two str on the stack');
        push(resolveGlobal(module as string, name as string));
        break;
      }
      case 0x69: {
        // INST: protocol-0 class instantiation. Never allowed; the global is named for the report.
        opName = 'INST';
        const module = line('module name');
        const name = line('class name');
        error('pickle-global', `instantiates "${module}.${name}" (INST is never allowed in a weights file; nothing was executed)`, `${module}.${name}`);
        break;
      }
      case 0x52: {
        opName = 'REDUCE';
        const args = pop();
        const fn = callable(pop(), 'call');
        if (!(args instanceof PyTuple)) error('pickle-malformed', `REDUCE arguments are ${describe(args)}, not a tuple`);
        push(fn((args as PyTuple).items, fail));
        break;
      }
      case 0x81: {
        opName = 'NEWOBJ';
        const args = pop();
        const fn = callable(pop(), 'newObject');
        if (!(args instanceof PyTuple)) error('pickle-malformed', `NEWOBJ arguments are ${describe(args)}, not a tuple`);
        push(fn((args as PyTuple).items, fail));
        break;
      }
      case 0x62: {
        opName = 'BUILD';
        const state = pop();
        applyBuild(top(), state, fail);
        break;
      }
      case 0x51: {
        opName = 'BINPERSID';
        const pid = pop();
        if (!options.persistentLoad) error('pickle-malformed', 'persistent id in a plain pickle (only torch archives have them)');
        push(options.persistentLoad!(pid, fail));
        break;
      }
      default: {
        const known = REFUSED_OPCODES[op];
        error(
          'pickle-opcode',
          known
            ? `opcode 0x${op.toString(16)} ${known} is not supported by the restricted unpickler`
            : `unknown opcode 0x${op.toString(16).padStart(2, '0')} (not a pickle, or corrupt)`,
        );
      }
    }
  }
}

/** Little-endian two's-complement integer bytes (LONG1/LONG4) as a number when safe, else a bigint. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
