/**
 * Hostile weights files: safetensors whose header lies (built byte by byte, so any lie can be
 * told), pickles that would run code if a Python unpickler read them, and a minimal zip writer to
 * put such pickles inside a `torch.save`-style archive with valid checksums.
 */
import { readFileSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { type HostTensor, decodeEntry, parseSafetensors } from '@rcnn/core';

/** The tensors of a safetensors file, decoded (in header order). */
export function readTensors(path: string): Map<string, HostTensor> {
  const file = parseSafetensors(readFileSync(path), path);
  return new Map([...file.entries].map(([k, e]) => [k, decodeEntry(e)] as const));
}

/** A safetensors file taken apart: its header object and its data bytes. */
export interface SafetensorsParts {
  header: Record<string, unknown>;
  data: Uint8Array;
}

/** Splits a (valid) safetensors buffer into its header object and data section. */
export function splitSafetensors(bytes: Uint8Array): SafetensorsParts {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  return { header, data: bytes.subarray(8 + n) };
}

/**
 * Assembles a safetensors buffer from any header (serialised as given, or raw header bytes) and
 * data, with an optional lying header length.
 */
export function joinSafetensors(header: Record<string, unknown> | Uint8Array, data: Uint8Array, headerLength?: bigint): Uint8Array {
  const json = header instanceof Uint8Array ? header : new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Pickle opcodes the crafted pickles use (names as in CPython's pickletools). */
const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  GLOBAL: 0x63,
  STACK_GLOBAL: 0x93,
  BINUNICODE: 0x58,
  SHORT_BINUNICODE: 0x8c,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  EMPTY_TUPLE: 0x29,
  REDUCE: 0x52,
  BINPUT: 0x71,
  BINGET: 0x68,
  EMPTY_DICT: 0x7d,
  SETITEM: 0x73,
  BININT1: 0x4b,
  NONE: 0x4e,
} as const;

/** A tiny pickle assembler (enough to write what an attacker would). */
export class PickleWriter {
  private readonly bytes: number[] = [];

  /** PROTO n. */
  proto(n: number): this {
    return this.op(OP.PROTO, n);
  }
  /** GLOBAL "module\nname\n". */
  global(module: string, name: string): this {
    this.bytes.push(OP.GLOBAL, ...new TextEncoder().encode(`${module}\n${name}\n`));
    return this;
  }
  /** The two strings, then STACK_GLOBAL (protocol 4). */
  stackGlobal(module: string, name: string): this {
    return this.shortUnicode(module).shortUnicode(name).op(OP.STACK_GLOBAL);
  }
  /** BINUNICODE (4-byte length). */
  unicode(s: string): this {
    const b = new TextEncoder().encode(s);
    this.bytes.push(OP.BINUNICODE, b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, (b.length >>> 24) & 0xff, ...b);
    return this;
  }
  /** SHORT_BINUNICODE (1-byte length). */
  shortUnicode(s: string): this {
    const b = new TextEncoder().encode(s);
    this.bytes.push(OP.SHORT_BINUNICODE, b.length, ...b);
    return this;
  }
  /** BININT1. */
  int(n: number): this {
    return this.op(OP.BININT1, n);
  }
  /** NONE. */
  none(): this {
    return this.op(OP.NONE);
  }
  /** TUPLE1. */
  tuple1(): this {
    return this.op(OP.TUPLE1);
  }
  /** TUPLE2. */
  tuple2(): this {
    return this.op(OP.TUPLE2);
  }
  /** EMPTY_TUPLE. */
  emptyTuple(): this {
    return this.op(OP.EMPTY_TUPLE);
  }
  /** REDUCE: call the callable below the argument tuple. */
  reduce(): this {
    return this.op(OP.REDUCE);
  }
  /** BINPUT n (memoize). */
  put(n: number): this {
    return this.op(OP.BINPUT, n);
  }
  /** BINGET n. */
  get(n: number): this {
    return this.op(OP.BINGET, n);
  }
  /** EMPTY_DICT. */
  emptyDict(): this {
    return this.op(OP.EMPTY_DICT);
  }
  /** SETITEM. */
  setItem(): this {
    return this.op(OP.SETITEM);
  }
  /** STOP. */
  stop(): this {
    return this.op(OP.STOP);
  }
  /** The assembled bytes. */
  toBytes(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }

  private op(code: number, ...args: number[]): this {
    this.bytes.push(code, ...args);
    return this;
  }
}

/**
 * A state-dict-shaped pickle that, under Python's `pickle.load`, runs
 * `open(target, "w").write("owned")`: it would write a file. A safe reader must refuse it at the
 * first GLOBAL and leave no file behind.
 */
export function fileWritingPickle(target: string): Uint8Array {
  return new PickleWriter()
    .proto(2)
    .emptyDict()
    .unicode('backbone.body.conv1.weight')
    .global('builtins', 'open')
    .unicode(target)
    .unicode('w')
    .tuple2()
    .reduce()
    .put(0)
    .global('builtins', 'getattr')
    .get(0)
    .unicode('write')
    .tuple2()
    .reduce()
    .unicode('owned')
    .tuple1()
    .reduce()
    .setItem()
    .stop()
    .toBytes();
}

/** A pickle that would run a shell command through `module.name` (e.g. `posix.system`), via STACK_GLOBAL (protocol 4). */
export function commandPickle(module: string, name: string, command: string): Uint8Array {
  return new PickleWriter().proto(4).stackGlobal(module, name).unicode(command).tuple1().reduce().stop().toBytes();
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

const nativeCrc32 = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;

/** CRC-32 (IEEE) of `data` (node's native implementation when it has one). */
export function crc32(data: Uint8Array): number {
  if (typeof nativeCrc32 === 'function') return nativeCrc32(data) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One zip entry to write; `crc` may be given when known (large storages rebuilt many times). */
export type ZipInput = readonly [name: string, data: Uint8Array, crc?: number];

/** A zip entry already encoded: `method` 0 (STORED) or 8 (DEFLATED), `data` as stored in the archive. */
export interface EncodedZipEntry {
  readonly name: string;
  readonly method: 0 | 8;
  readonly data: Uint8Array;
  readonly crc: number;
  readonly uncompressedSize: number;
}

/** A zip archive of STORED entries with correct sizes and CRCs (what `torch.save` writes, minus ZIP64 and padding). */
export function storedZip(entries: readonly ZipInput[]): Uint8Array {
  return encodedZip(entries.map(([name, data, known]) => ({ name, method: 0, data, crc: known ?? crc32(data), uncompressedSize: data.length })));
}

/** A zip archive of already-encoded entries (STORED or DEFLATED). */
export function encodedZip(entries: readonly EncodedZipEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const { name, method, data, crc, uncompressedSize } of entries) {
    const n = enc.encode(name);
    const local = new Uint8Array(30 + n.length + data.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, method, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, data.length, true);
    lv.setUint32(22, uncompressedSize, true);
    lv.setUint16(26, n.length, true);
    local.set(n, 30);
    local.set(data, 30 + n.length);
    const central = new Uint8Array(46 + n.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, data.length, true);
    cv.setUint32(24, uncompressedSize, true);
    cv.setUint16(28, n.length, true);
    cv.setUint32(42, offset, true);
    central.set(n, 46);
    locals.push(local);
    centrals.push(central);
    offset += local.length;
  }
  const cdSize = centrals.reduce((a, c) => a + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let p = 0;
  for (const part of [...locals, ...centrals, eocd]) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

/** A `torch.save`-shaped archive around `dataPkl` (`archive/data.pkl`, `archive/version`, extra storages). */
export function torchArchive(dataPkl: Uint8Array, storages: readonly (readonly [string, Uint8Array])[] = []): Uint8Array {
  return storedZip([['archive/data.pkl', dataPkl], ...storages.map(([k, b]) => [`archive/data/${k}`, b] as const), ['archive/version', new TextEncoder().encode('3\n')]]);
}
