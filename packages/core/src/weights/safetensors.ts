/**
 * safetensors reader and writer (https://huggingface.co/docs/safetensors): an 8-byte little-endian
 * header length n, n bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}`,
 * then the tensor bytes. Every claim of the header is checked against the file before any tensor
 * is touched, so a corrupt or hostile file fails with a {@link WeightsError} naming the file and key.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { WeightsError } from '../errors.js';
import { printable } from '../io/printable.js';
import type { DataType, HostTensor, TensorArray } from '../graph/dtypes.js';

/** Element types of the safetensors format. */
export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U16' | 'U32' | 'U64' | 'BOOL';

/** Bytes per element of each safetensors dtype. */
export const SAFETENSORS_DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  U16: 2,
  U32: 4,
  U64: 8,
  BOOL: 1,
};

/** Largest header the reader accepts (the format's own limit is 100 MB). */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

/** One tensor of a safetensors file, not yet decoded. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** The tensor's raw little-endian bytes (a view into the file buffer). */
  readonly bytes: Uint8Array;
}

/** A parsed safetensors file. */
export interface SafetensorsFile {
  /** File path, or a description for in-memory buffers. */
  readonly source: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Entries by name, in header order. */
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
}

/** Parses and validates a safetensors buffer (zero-copy: entries view `buffer`). */
export function parseSafetensors(buffer: Uint8Array, source = '<buffer>'): SafetensorsFile {
  const fail = (message: string, key?: string): never => {
    throw new WeightsError(`${source}: ${message}`, { file: source, ...(key === undefined ? {} : { key }) });
  };
  if (endianness() !== 'LE') fail('big-endian hosts are not supported (safetensors data is little-endian)');
  if (buffer.byteLength < 8) fail(`truncated: ${buffer.byteLength} bytes, but a safetensors file starts with an 8-byte header length`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(buffer.byteLength - 8)) {
    fail(`header length ${headerLength} runs past the end of the file (${buffer.byteLength} bytes): truncated or not a safetensors file`);
  }
  if (headerLength > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) fail(`header length ${headerLength} exceeds the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit`);
  const n = Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(8, 8 + n)));
  } catch (cause) {
    return fail(`header is not valid UTF-8 JSON (${(cause as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  // JSON.parse keeps the last of two equal keys: a second entry could silently replace a tensor
  // another tool reads as the first. The safetensors format refuses duplicates; so do we.
  const duplicate = firstDuplicateKey(buffer.subarray(8, 8 + n));
  if (duplicate !== undefined) fail(`header has the key "${printable(duplicate)}" twice`, duplicate);
  const dataStart = 8 + n;
  const dataLength = buffer.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  const spans: { begin: number; end: number; name: string }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${printable(k)} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (typeof info !== 'object' || info === null) fail(`entry "${printable(name)}" is not an object`, name);
    const { dtype, shape, data_offsets: offsets } = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_SIZE)) {
      fail(`tensor "${printable(name)}" has unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(', ')})`, name);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor "${printable(name)}" has an invalid shape ${JSON.stringify(shape)}`, name);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor "${printable(name)}" has invalid data_offsets ${JSON.stringify(offsets)}`, name);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`tensor "${printable(name)}" has data_offsets [${begin}, ${end}] with begin > end`, name);
    if (end > dataLength) {
      fail(`tensor "${printable(name)}" has data_offsets [${begin}, ${end}] past the end of the data (${dataLength} bytes): truncated file`, name);
    }
    const dims = shape as number[];
    let count = 1;
    for (const d of dims) {
      count *= d;
      if (!Number.isSafeInteger(count)) fail(`tensor "${printable(name)}" has an absurd shape [${dims.join(', ')}]`, name);
    }
    const size = SAFETENSORS_DTYPE_SIZE[dtype as SafetensorsDType];
    if (count * size !== end - begin) {
      fail(`tensor "${printable(name)}" of shape [${dims.join(', ')}] and dtype ${dtype} needs ${count * size} bytes but data_offsets span ${end - begin}`, name);
    }
    spans.push({ begin, end, name });
    entries.set(name, { name, dtype: dtype as SafetensorsDType, shape: dims, bytes: buffer.subarray(dataStart + begin, dataStart + end) });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    const cur = spans[i]!;
    if (cur.begin < prev.end) {
      fail(`tensors "${printable(prev.name)}" [${prev.begin}, ${prev.end}) and "${printable(cur.name)}" [${cur.begin}, ${cur.end}) overlap`, cur.name);
    }
  }
  const dataEnd = spans.reduce((m, sp) => Math.max(m, sp.end), 0);
  if (dataEnd < dataLength) {
    // As the safetensors format: bytes no tensor claims are a truncated header or an appended payload.
    fail(`${dataLength - dataEnd} byte(s) after the last tensor's data (the tensors end at ${dataEnd} of ${dataLength} data bytes): not a valid safetensors file`);
  }
  return { source, metadata, entries };
}

/**
 * The first key that occurs twice in one object of a JSON text (any depth), or undefined. A small
 * scanner over the already-validated text: strings are decoded with JSON.parse, everything else
 * only tracks nesting.
 */
export function firstDuplicateKey(json: Uint8Array | string): string | undefined {
  const text = typeof json === 'string' ? json : new TextDecoder().decode(json);
  const stack: (Set<string> | undefined)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(undefined);
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] !== undefined;
    }
  }
  return undefined;
}

/** Reads and validates a safetensors file from disk. */
export function readSafetensorsFile(path: string): SafetensorsFile {
  let buffer: Buffer;
  try {
    buffer = readFileSync(path);
  } catch (cause) {
    throw new WeightsError(`cannot read weights file ${path}: ${(cause as Error).message}`, { file: path, cause });
  }
  return parseSafetensors(buffer, path);
}

const DTYPE_TO_HOST: Partial<Record<SafetensorsDType, DataType>> = {
  F32: 'float32',
  F64: 'float64',
  F16: 'float16',
  I64: 'int64',
  I32: 'int32',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

const HOST_TO_DTYPE: Readonly<Record<DataType, SafetensorsDType>> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  int64: 'I64',
  int32: 'I32',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};

/** Typed view of an entry's bytes; copies only when the bytes are not aligned for the element type. */
function typedView<T extends TensorArray>(bytes: Uint8Array, ctor: { new (b: ArrayBufferLike, o: number, l: number): T; BYTES_PER_ELEMENT: number }): T {
  // `new Uint8Array(bytes)` always copies; `bytes.slice()` does not when `bytes` is a Node Buffer.
  const aligned = bytes.byteOffset % ctor.BYTES_PER_ELEMENT === 0 ? bytes : new Uint8Array(bytes);
  return new ctor(aligned.buffer, aligned.byteOffset, aligned.byteLength / ctor.BYTES_PER_ELEMENT);
}

/**
 * Decodes an entry to a host tensor. BF16 is widened to float32 (exactly); other types keep their
 * type. `source` (the file) goes into the error of a dtype that cannot be decoded.
 */
export function decodeEntry(entry: SafetensorsEntry, source?: string): HostTensor {
  const dims = entry.shape;
  switch (entry.dtype) {
    case 'F32':
      return { dtype: 'float32', dims, data: typedView(entry.bytes, Float32Array) };
    case 'F64':
      return { dtype: 'float64', dims, data: typedView(entry.bytes, Float64Array) };
    case 'F16':
      return { dtype: 'float16', dims, data: typedView(entry.bytes, Uint16Array) };
    case 'BF16': {
      const bits = typedView(entry.bytes, Uint16Array);
      const out = new Float32Array(bits.length);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < bits.length; i++) outBits[i] = bits[i]! << 16;
      return { dtype: 'float32', dims, data: out };
    }
    case 'I64':
      return { dtype: 'int64', dims, data: typedView(entry.bytes, BigInt64Array) };
    case 'I32':
      return { dtype: 'int32', dims, data: typedView(entry.bytes, Int32Array) };
    case 'I8':
      return { dtype: 'int8', dims, data: typedView(entry.bytes, Int8Array) };
    case 'U8':
      return { dtype: 'uint8', dims, data: entry.bytes };
    case 'BOOL':
      return { dtype: 'bool', dims, data: entry.bytes };
    default:
      throw new WeightsError(`${source === undefined ? '' : `${source}: `}tensor "${printable(entry.name)}" has dtype ${entry.dtype}, which rcnn-node does not decode (supported: ${Object.keys(DTYPE_TO_HOST).join(', ')}, BF16)`, {
        key: entry.name,
        ...(source === undefined ? {} : { file: source }),
      });
  }
}

/**
 * Serialises tensors to a safetensors buffer (header padded with spaces to a multiple of 8, so
 * every tensor starts 8-byte aligned). Tensor order is the iteration order of `tensors`.
 */
export function writeSafetensors(tensors: Iterable<readonly [string, HostTensor]>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const list = [...tensors];
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new WeightsError('a tensor cannot be named __metadata__');
    const byteLength = t.data.byteLength;
    header[name] = { dtype: HOST_TO_DTYPE[t.dtype], shape: [...t.dims], data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  let headerBytes = encoder.encode(json);
  const padded = Math.ceil(headerBytes.byteLength / 8) * 8;
  json += ' '.repeat(padded - headerBytes.byteLength);
  headerBytes = encoder.encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const [, t] of list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}
