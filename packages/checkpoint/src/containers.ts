/**
 * File containers a checkpoint comes in, each read to a tree of plain values plus a way to turn
 * its tensor records into host tensors:
 * - `torch-zip`: `torch.save` since torch 1.6 (`<archive>/data.pkl`, `<archive>/data/<key>`, `version`, `byteorder`);
 * - `torch-legacy`: `torch.save(..., _use_new_zipfile_serialization=False)` / torch < 1.6 (magic number,
 *   protocol version, sys info, data pickle, storage keys, then raw storages);
 * - `pickle`: a plain pickle (Detectron / Detectron2 `.pkl` with numpy arrays);
 * - `safetensors`: already safe; read so `rcnn convert` can rename a safetensors file too.
 */
import { type HostTensor, type SafetensorsEntry, decodeEntry, elementCount, parseSafetensors } from '@rcnn/core';
import { CheckpointError } from './errors.js';
import { type Fail, type NdArrayRecord, type StorageRecord, type TensorRecord, type TorchDType, TORCH_DTYPE_SIZE, storageDType } from './pickle/allow-list.js';
import { type UnpickleLimits, unpickle } from './pickle/unpickler.js';
import { PyDict, type PyRecord, type PyValue, asInt, asSequence, asText, describe } from './pickle/values.js';
import { gatherStrided, hostFromNdArray, hostFromTorch } from './tensors.js';
import { ZipArchive, looksLikeZip } from './zip.js';

/** Which container a checkpoint was read from (`memory`: tensors handed over in memory, e.g. exports). */
export type ContainerKind = 'torch-zip' | 'torch-legacy' | 'pickle' | 'safetensors' | 'memory';

/** A tensor that cannot be represented, with the reason (reported, never silently dropped). */
export interface Unsupported {
  readonly unsupported: string;
}

/** A container read to values. */
export interface LoadedContainer {
  readonly kind: ContainerKind;
  /** The top-level pickled value (for safetensors: a dict of entry records). */
  readonly root: PyValue;
  /** Facts worth reporting (torch archive version, pickle protocol…). */
  readonly notes: readonly string[];
  /** The host tensor of a value, the reason it is not representable, or undefined if it is not a tensor at all. */
  decode(value: PyValue, key: string): HostTensor | Unsupported | undefined;
}

/** torch's legacy-format magic number (first pickle of the file). */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

interface SafetensorsRecord extends PyRecord {
  readonly kind: 'safetensors.entry';
  readonly entry: SafetensorsEntry;
}

const isKind = <K extends string>(v: PyValue, kind: K): boolean => typeof v === 'object' && v !== null && 'kind' in v && (v as PyRecord).kind === kind;

const TENSOR_KINDS = new Set(['torch.tensor', 'numpy.ndarray', 'safetensors.entry']);

/** Whether a value is a tensor-like record (without decoding it). */
export function isTensorRecord(v: PyValue): boolean {
  return typeof v === 'object' && v !== null && 'kind' in v && TENSOR_KINDS.has((v as PyRecord).kind);
}

/** Sniffs the container and reads it. */
export function readContainer(buffer: Uint8Array, source: string, limits?: Partial<UnpickleLimits>): LoadedContainer {
  if (looksLikeZip(buffer)) return readTorchZip(buffer, source, limits);
  if (isSafetensors(buffer)) return readSafetensorsContainer(buffer, source);
  if (buffer.length > 262 && new TextDecoder().decode(buffer.subarray(257, 262)) === 'ustar') {
    throw new CheckpointError('unrecognized-file', `${source}: a tar archive: the torch < 0.4 tar checkpoint format is not supported`, {
      file: source,
      hint: 'load it with an old torch and re-save with torch.save(state_dict, path)',
    });
  }
  if (buffer.length > 0 && [0x80, 0x28, 0x7d, 0x5d].includes(buffer[0]!)) return readPickles(buffer, source, limits);
  throw new CheckpointError(
    'unrecognized-file',
    `${source}: not a checkpoint this reader knows (expected a torch.save zip archive, a pickle, or safetensors; first bytes ${[...buffer.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`,
    { file: source },
  );
}

function isSafetensors(buffer: Uint8Array): boolean {
  if (buffer.length < 10) return false;
  const n = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength).getBigUint64(0, true);
  return n > 1n && n <= BigInt(buffer.length - 8) && buffer[8] === 0x7b; // '{'
}

function readSafetensorsContainer(buffer: Uint8Array, source: string): LoadedContainer {
  const file = parseSafetensors(buffer, source);
  const root = new PyDict(true);
  for (const [name, entry] of file.entries) root.map.set(name, { kind: 'safetensors.entry', entry } as SafetensorsRecord);
  return {
    kind: 'safetensors',
    root,
    notes: Object.keys(file.metadata).length > 0 ? [`safetensors metadata: ${JSON.stringify(file.metadata)}`] : [],
    decode(value, key) {
      if (!isKind(value, 'safetensors.entry')) return undefined;
      try {
        return decodeEntry((value as SafetensorsRecord).entry);
      } catch (cause) {
        return { unsupported: `${key}: ${(cause as Error).message}` };
      }
    },
  };
}

/**
 * Decoder shared by the pickle containers: storage bytes come from `bytesOf(storage)`. Many
 * tensors may view one storage, so a forged file could ask for far more memory than it holds;
 * the total decoded size is capped at 4x the file plus 16 MiB (real checkpoints stay near 1x).
 */
function pickleDecoder(bytesOf: (s: StorageRecord, charge: Charge) => Uint8Array, source: string, fileBytes: number): LoadedContainer['decode'] {
  const charge = decodeBudget(source, fileBytes);
  return (value, key) => {
    if (isKind(value, 'numpy.ndarray')) {
      const t = hostFromNdArray(value as NdArrayRecord, `${source}: "${key}"`);
      if (!('unsupported' in t)) charge(t.data.byteLength, key);
      return t;
    }
    if (!isKind(value, 'torch.tensor')) return undefined;
    const t = value as TensorRecord;
    const size = TORCH_DTYPE_SIZE[t.storage.dtype];
    charge(elementCount(t.size) * (t.storage.dtype === 'bfloat16' ? 4 : size), key);
    const bytes = gatherStrided(bytesOf(t.storage, (n, what) => charge(n, key, what)), size, t.offset, t.size, t.stride, `${source}: tensor "${key}"`);
    return hostFromTorch(t.storage.dtype, t.size, bytes);
  };
}

/** Charges `bytes` of memory for tensor `key` to the decode budget (throws once it is spent). */
type Charge = (bytes: number, what?: string) => void;

/**
 * The memory budget of decoding one file: 4x the file plus 16 MiB (real checkpoints stay near 1x).
 * Tensor copies and inflated zip entries both count, and are charged before the memory is taken,
 * so a refusal costs nothing.
 */
function decodeBudget(source: string, fileBytes: number): (bytes: number, key: string, what?: string) => void {
  const budget = 4 * fileBytes + 16 * 2 ** 20;
  let decoded = 0;
  return (bytes, key, what) => {
    decoded += bytes;
    if (decoded > budget) {
      throw new CheckpointError(
        'pickle-limit',
        what === undefined
          ? `${source}: tensors up to "${key}" decode to more than ${budget} bytes (4x the file): overlapping views of shared storages`
          : `${source}: ${what} for tensor "${key}" would take the decoded size past ${budget} bytes (4x the file plus 16 MiB): refused before inflating (a compressed-size bomb)`,
        { file: source, key },
      );
    }
  };
}

function parsePersistentId(pid: PyValue, fail: Fail, legacy: boolean): { dtype: TorchDType; key: string; numel: number; view?: readonly PyValue[] } {
  const items = asSequence(pid);
  const tag = items && items.length > 0 ? asText(items[0]!) : undefined;
  if (tag === 'module') fail('structure', 'the file pickles a whole nn.Module (legacy format); only state dicts can be loaded');
  if (!items || tag !== 'storage' || items.length !== (legacy ? 6 : 5)) {
    fail('pickle-malformed', `persistent id ${describe(pid)} is not a torch storage reference`);
  }
  const dtype = storageDType(items![1]!);
  if (!dtype) fail('pickle-malformed', `persistent id names storage type ${describe(items![1]!)}`);
  const key = asText(items![2]!);
  if (key === undefined) fail('pickle-malformed', `storage key ${describe(items![2]!)} is not a str`);
  if (asText(items![3]!) === undefined) fail('pickle-malformed', `storage location ${describe(items![3]!)} is not a str`);
  const numel = asInt(items![4]!);
  if (numel === undefined || numel < 0) fail('pickle-malformed', `storage size ${describe(items![4]!)} is not a non-negative int`);
  let view: readonly PyValue[] | undefined;
  if (legacy && items![5] !== null) {
    view = asSequence(items![5]!);
    if (!view || view.length !== 3) fail('pickle-malformed', `storage view metadata ${describe(items![5]!)} is not (key, offset, size)`);
  }
  return { dtype: dtype!, key: key!, numel: numel!, view };
}

function readTorchZip(buffer: Uint8Array, source: string, limits?: Partial<UnpickleLimits>): LoadedContainer {
  const zip = ZipArchive.parse(buffer, source);
  const names = [...zip.entries.keys()];
  const pkls = names.filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    const script = names.some((n) => /(^|\/)constants\.pkl$/.test(n) || /(^|\/)code\//.test(n));
    throw new CheckpointError(
      'unrecognized-file',
      script
        ? `${source}: a TorchScript archive (torch.jit.save), not a state dict`
        : `${source}: zip archive with ${pkls.length === 0 ? 'no' : 'several'} "<archive>/data.pkl" entries: not a torch.save checkpoint`,
      { file: source, hint: 'save the weights with torch.save(model.state_dict(), path)' },
    );
  }
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  const notes: string[] = [`torch zip archive "${prefix.slice(0, -1)}"`];
  if (zip.has(`${prefix}byteorder`)) {
    const order = new TextDecoder().decode(zip.read(`${prefix}byteorder`)).trim();
    if (order !== 'little') {
      throw new CheckpointError('byte-order', `${source}: archive byteorder is "${order}"; only little-endian checkpoints are read`, {
        file: source,
        key: `${prefix}byteorder`,
        hint: 'load and re-save it on a little-endian machine',
      });
    }
  }
  if (zip.has(`${prefix}version`)) notes.push(`archive format version ${new TextDecoder().decode(zip.read(`${prefix}version`)).trim()}`);
  const storages = new Map<string, StorageRecord>();
  const pklEntry = zip.entries.get(pkls[0]!)!;
  const budget = 4 * buffer.length + 16 * 2 ** 20;
  if (pklEntry.method !== 0 && pklEntry.uncompressedSize > budget) {
    throw new CheckpointError('pickle-limit', `${source}: "${pkls[0]}" inflates to ${pklEntry.uncompressedSize} bytes, more than ${budget} (4x the file plus 16 MiB): refused before inflating`, {
      file: source,
      key: pkls[0],
    });
  }
  const { value } = unpickle(zip.read(pkls[0]!), {
    source: `${source}:${pkls[0]}`,
    ...(limits === undefined ? {} : { limits }),
    persistentLoad(pid, fail) {
      const { dtype, key, numel } = parsePersistentId(pid, fail, false);
      const cacheKey = `${key}\u0000${dtype}`;
      const hit = storages.get(cacheKey);
      if (hit) return hit;
      const entry = zip.entries.get(`${prefix}data/${key}`);
      if (!entry) {
        throw new CheckpointError('storage-missing', `${source}: storage "${key}" is referenced by the pickle but the archive has no entry "${prefix}data/${key}"`, {
          file: source,
          key: `${prefix}data/${key}`,
        });
      }
      const expected = numel * TORCH_DTYPE_SIZE[dtype];
      if (entry.uncompressedSize !== expected) {
        throw new CheckpointError(
          'storage-size',
          `${source}: storage "${key}" should hold ${numel} ${dtype} elements (${expected} bytes) but entry "${entry.name}" has ${entry.uncompressedSize} bytes`,
          { file: source, key: entry.name },
        );
      }
      const record: StorageRecord = { kind: 'torch.storage', dtype, key, numel };
      storages.set(cacheKey, record);
      return record;
    },
  });
  const cache = new Map<string, Uint8Array>();
  return {
    kind: 'torch-zip',
    root: value,
    notes,
    decode: pickleDecoder((s, charge) => {
      let bytes = cache.get(s.key);
      if (!bytes) {
        const name = `${prefix}data/${s.key}`;
        const entry = zip.entries.get(name);
        // A DEFLATED storage is inflated whole (its CRC covers all of it): its inflated size counts
        // against the decode budget before inflating, however little of it a tensor views.
        if (entry && entry.method !== 0) charge(entry.uncompressedSize, `inflating the ${entry.uncompressedSize}-byte storage entry "${name}"`);
        bytes = zip.read(name);
        cache.set(s.key, bytes);
      }
      return bytes;
    }, source, buffer.length),
  };
}

/** A plain pickle, or torch's legacy format (which starts with a pickled magic number). */
function readPickles(buffer: Uint8Array, source: string, limits?: Partial<UnpickleLimits>): LoadedContainer {
  const opts = { source, ...(limits === undefined ? {} : { limits }) };
  const first = unpickle(buffer, opts);
  if (first.value !== LEGACY_MAGIC) {
    const notes = first.end < buffer.length ? [`${buffer.length - first.end} bytes after the pickle were ignored`] : [];
    return { kind: 'pickle', root: first.value, notes, decode: pickleDecoder(() => new Uint8Array(0), source, buffer.length) };
  }
  const protocol = unpickle(buffer, { ...opts, start: first.end });
  if (protocol.value !== LEGACY_PROTOCOL) {
    throw new CheckpointError('unrecognized-file', `${source}: legacy torch checkpoint with protocol version ${describe(protocol.value)} (expected ${LEGACY_PROTOCOL})`, {
      file: source,
    });
  }
  const sysInfo = unpickle(buffer, { ...opts, start: protocol.end });
  if (sysInfo.value instanceof PyDict && sysInfo.value.map.get('little_endian') === false) {
    throw new CheckpointError('byte-order', `${source}: legacy checkpoint written on a big-endian machine; only little-endian checkpoints are read`, { file: source });
  }
  const roots = new Map<string, { dtype: TorchDType; numel: number }>();
  const views: StorageRecord[] = [];
  const main = unpickle(buffer, {
    ...opts,
    start: sysInfo.end,
    persistentLoad(pid, fail) {
      const { dtype, key, numel, view } = parsePersistentId(pid, fail, true);
      const root = roots.get(key);
      if (root && (root.dtype !== dtype || root.numel !== numel)) fail('pickle-malformed', `storage "${key}" is declared twice with different types or sizes`);
      roots.set(key, { dtype, numel });
      if (!view) return { kind: 'torch.storage', dtype, key, numel } as StorageRecord;
      const offset = asInt(view[1]!);
      const size = asInt(view[2]!);
      if (offset === undefined || size === undefined || offset < 0 || size < 0 || offset + size > numel) {
        fail('view-out-of-bounds', `storage view (offset ${describe(view[1]!)}, size ${describe(view[2]!)}) of "${key}" is outside its ${numel} elements`);
      }
      const record: StorageRecord = { kind: 'torch.storage', dtype, key, numel: size!, viewOffset: offset! };
      views.push(record);
      return record;
    },
  });
  const keys = unpickle(buffer, { ...opts, start: main.end });
  const keyList = asSequence(keys.value);
  if (!keyList) throw new CheckpointError('pickle-malformed', `${source}: legacy checkpoint storage key list is ${describe(keys.value)}`, { file: source });
  const blocks = new Map<string, Uint8Array>();
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let pos = keys.end;
  for (const k of keyList) {
    const key = asText(k);
    const root = key === undefined ? undefined : roots.get(key);
    if (key === undefined || !root) {
      throw new CheckpointError('storage-missing', `${source}: legacy storage list names ${describe(k)}, which the pickle never referenced`, { file: source });
    }
    if (pos + 8 > buffer.length) throw new CheckpointError('storage-size', `${source}: file ends before the size of storage "${key}"`, { file: source, key });
    const count = view.getBigInt64(pos, true);
    if (count !== BigInt(root.numel)) {
      throw new CheckpointError('storage-size', `${source}: storage "${key}" is declared with ${root.numel} elements but its data block says ${count}`, { file: source, key });
    }
    const bytes = root.numel * TORCH_DTYPE_SIZE[root.dtype];
    if (pos + 8 + bytes > buffer.length) {
      throw new CheckpointError('storage-size', `${source}: storage "${key}" needs ${bytes} bytes at offset ${pos + 8}, past the end of the file (${buffer.length} bytes)`, {
        file: source,
        key,
      });
    }
    blocks.set(key, buffer.subarray(pos + 8, pos + 8 + bytes));
    pos += 8 + bytes;
  }
  for (const key of roots.keys()) {
    if (!blocks.has(key)) throw new CheckpointError('storage-missing', `${source}: storage "${key}" is referenced but has no data block`, { file: source, key });
  }
  return {
    kind: 'torch-legacy',
    root: main.value,
    notes: ['legacy (pre-zip) torch.save format'],
    decode: pickleDecoder((s) => {
      const block = blocks.get(s.key)!;
      if (s.viewOffset === undefined) return block;
      const size = TORCH_DTYPE_SIZE[s.dtype];
      return block.subarray(s.viewOffset * size, (s.viewOffset + s.numel) * size);
    }, source, buffer.length),
  };
}
