/**
 * A small, defensive zip reader for `torch.save` archives: end-of-central-directory record (with
 * ZIP64, which torch always writes), central directory, local headers, STORED and DEFLATED
 * entries, CRC-32 checks. Every offset and size is checked against the file before it is used, so
 * a truncated or forged archive fails with a {@link CheckpointError} naming the file and entry
 * instead of reading garbage or allocating what a header claims.
 */
import * as zlib from 'node:zlib';
import { CheckpointError } from './errors.js';

/** One file in the archive, as the central directory describes it. */
export interface ZipEntry {
  readonly name: string;
  /** 0 = STORED, 8 = DEFLATED. */
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
/** Deflate cannot expand more than ~1032:1; anything claiming more is a bomb or a lie. */
const MAX_DEFLATE_RATIO = 1100;

/** CRC-32 (IEEE), with node's native implementation when this node has it (>= 20.15). */
const crc32: (data: Uint8Array) => number = (() => {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  if (typeof native === 'function') return (d: Uint8Array) => native(d) >>> 0;
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return (d: Uint8Array) => {
    let c = 0xffffffff;
    for (let i = 0; i < d.length; i++) c = table[(c ^ d[i]!) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
})();

/** True when the buffer starts like a zip archive (a local header or an empty archive's EOCD). */
export function looksLikeZip(buffer: Uint8Array): boolean {
  return buffer.length >= 4 && buffer[0] === 0x50 && buffer[1] === 0x4b && ((buffer[2] === 3 && buffer[3] === 4) || (buffer[2] === 5 && buffer[3] === 6));
}

/** A parsed zip archive over an in-memory buffer. Entry data is read (and checked) on demand. */
export class ZipArchive {
  /** File path or description used in errors. */
  readonly source: string;
  /** Entries by name, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private readonly buffer: Uint8Array;

  private constructor(buffer: Uint8Array, source: string, entries: Map<string, ZipEntry>) {
    this.buffer = buffer;
    this.source = source;
    this.entries = entries;
  }

  /** Parses and validates the archive's directory (not the entries' data). */
  static parse(buffer: Uint8Array, source: string): ZipArchive {
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const fail = (message: string, entry?: string): never => {
      throw new CheckpointError('zip-corrupt', `${source}: ${message}`, { file: source, ...(entry === undefined ? {} : { key: entry }) });
    };
    const size = buffer.byteLength;
    const eocd = findEocd(view);
    if (eocd < 0) {
      fail(`not a complete zip archive: no end-of-central-directory record in the last ${Math.min(size, EOCD_SIZE + MAX_COMMENT)} bytes (truncated download?)`);
    }
    if (view.getUint16(eocd + 4, true) !== 0 || view.getUint16(eocd + 6, true) !== 0) fail('multi-disk zip archives are not supported');
    let count = view.getUint16(eocd + 10, true);
    let cdSize = view.getUint32(eocd + 12, true);
    let cdOffset = view.getUint32(eocd + 16, true);
    let cdLimit = eocd;
    // ZIP64: torch writes the locator and record on every archive; the plain EOCD then holds
    // copies (or 0xFFFF.. placeholders once the archive outgrows 32-bit fields).
    const locator = eocd - 20;
    if (locator >= 0 && view.getUint32(locator, true) === SIG_ZIP64_LOCATOR) {
      const z64 = readU64(view, locator + 8, () => fail('ZIP64 locator offset does not fit in 53 bits'));
      if (z64 + 56 > locator) fail(`ZIP64 end-of-central-directory offset ${z64} is past the locator at ${locator}`);
      if (view.getUint32(z64, true) !== SIG_ZIP64_EOCD) fail(`no ZIP64 end-of-central-directory record at offset ${z64}`);
      count = readU64(view, z64 + 32, () => fail('ZIP64 entry count is absurd'));
      cdSize = readU64(view, z64 + 40, () => fail('ZIP64 central directory size is absurd'));
      cdOffset = readU64(view, z64 + 48, () => fail('ZIP64 central directory offset is absurd'));
      cdLimit = z64;
    } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      fail('end-of-central-directory record needs ZIP64 data but the ZIP64 locator is missing');
    }
    if (cdOffset + cdSize > cdLimit) {
      fail(`central directory [${cdOffset}, ${cdOffset + cdSize}) overlaps the end records at ${cdLimit} or runs past the end of the file (${size} bytes)`);
    }
    // Each central header is at least 46 bytes, which bounds the entry count by the file size.
    if (count * 46 > cdSize) fail(`central directory of ${cdSize} bytes cannot hold the ${count} entries it declares`);
    const entries = new Map<string, ZipEntry>();
    const decoder = new TextDecoder('utf-8', { fatal: false });
    let p = cdOffset;
    const cdEnd = cdOffset + cdSize;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdEnd) fail(`central directory ends inside header ${i} of ${count}`);
      if (view.getUint32(p, true) !== SIG_CENTRAL) fail(`bad central directory header signature at offset ${p} (entry ${i})`);
      const flags = view.getUint16(p + 8, true);
      const method = view.getUint16(p + 10, true);
      const crc = view.getUint32(p + 16, true);
      let compressedSize = view.getUint32(p + 20, true);
      let uncompressedSize = view.getUint32(p + 24, true);
      const nameLength = view.getUint16(p + 28, true);
      const extraLength = view.getUint16(p + 30, true);
      const commentLength = view.getUint16(p + 32, true);
      let localHeaderOffset = view.getUint32(p + 42, true);
      const headerEnd = p + 46 + nameLength + extraLength + commentLength;
      if (headerEnd > cdEnd) fail(`central directory header ${i} runs past the central directory`);
      const name = decoder.decode(buffer.subarray(p + 46, p + 46 + nameLength));
      // ZIP64 extended information: present fields replace the saturated 32-bit ones, in order.
      let e = p + 46 + nameLength;
      const extraEnd = e + extraLength;
      while (e + 4 <= extraEnd) {
        const id = view.getUint16(e, true);
        const len = view.getUint16(e + 2, true);
        if (e + 4 + len > extraEnd) fail(`extra field of entry "${name}" runs past its header`, name);
        if (id === 0x0001) {
          let q = e + 4;
          const take = (): number => {
            if (q + 8 > e + 4 + len) fail(`ZIP64 extra field of entry "${name}" is too short`, name);
            const v = readU64(view, q, () => fail(`ZIP64 size of entry "${name}" is absurd`, name));
            q += 8;
            return v;
          };
          if (uncompressedSize === 0xffffffff) uncompressedSize = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
        }
        e += 4 + len;
      }
      if (entries.has(name)) fail(`duplicate entry "${name}"`, name);
      if (localHeaderOffset + 30 > cdOffset) {
        throw new CheckpointError(
          'zip-entry-out-of-bounds',
          `${source}: entry "${name}" has its local header at offset ${localHeaderOffset}, past the start of the central directory (${cdOffset})`,
          { file: source, key: name },
        );
      }
      entries.set(name, { name, method, flags, crc32: crc, compressedSize, uncompressedSize, localHeaderOffset });
      p = headerEnd;
    }
    return new ZipArchive(buffer, source, entries);
  }

  /** Whether the archive has an entry of this name. */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * The entry's uncompressed bytes, checked against the local header, the file size, the declared
   * size and the CRC-32. STORED entries are views into the archive buffer (no copy).
   */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) throw new CheckpointError('zip-corrupt', `${this.source}: no entry "${name}" in the archive`, { file: this.source, key: name });
    const src = this.source;
    const buf = this.buffer;
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const at = entry.localHeaderOffset;
    const bounds = (message: string): never => {
      throw new CheckpointError('zip-entry-out-of-bounds', `${src}: entry "${name}": ${message}`, { file: src, key: name });
    };
    if (at + 30 > buf.byteLength) bounds(`local header at offset ${at} is past the end of the file (${buf.byteLength} bytes)`);
    if (view.getUint32(at, true) !== SIG_LOCAL) {
      throw new CheckpointError('zip-corrupt', `${src}: entry "${name}": no local header signature at offset ${at}`, { file: src, key: name });
    }
    if (entry.flags & 0x1) {
      throw new CheckpointError('zip-unsupported', `${src}: entry "${name}" is encrypted`, { file: src, key: name });
    }
    const nameLength = view.getUint16(at + 26, true);
    const extraLength = view.getUint16(at + 28, true);
    const localName = new TextDecoder().decode(buf.subarray(at + 30, Math.min(buf.byteLength, at + 30 + nameLength)));
    if (localName !== name) {
      throw new CheckpointError('zip-corrupt', `${src}: entry "${name}": local header names "${localName}"`, { file: src, key: name });
    }
    const start = at + 30 + nameLength + extraLength;
    const end = start + entry.compressedSize;
    if (end > buf.byteLength) {
      bounds(`data [${start}, ${end}) runs past the end of the file (${buf.byteLength} bytes): truncated archive`);
    }
    const raw = buf.subarray(start, end);
    let data: Uint8Array;
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.uncompressedSize) {
        throw new CheckpointError('zip-corrupt', `${src}: STORED entry "${name}" has compressed size ${entry.compressedSize} != size ${entry.uncompressedSize}`, {
          file: src,
          key: name,
        });
      }
      data = raw;
    } else if (entry.method === 8) {
      if (entry.uncompressedSize > Math.max(1024, entry.compressedSize * MAX_DEFLATE_RATIO)) {
        throw new CheckpointError(
          'zip-checksum',
          `${src}: DEFLATED entry "${name}" claims ${entry.uncompressedSize} bytes from ${entry.compressedSize} compressed: beyond deflate's maximum ratio`,
          { file: src, key: name },
        );
      }
      try {
        data = entry.uncompressedSize === 0 ? new Uint8Array(0) : zlib.inflateRawSync(raw, { maxOutputLength: entry.uncompressedSize });
      } catch (cause) {
        throw new CheckpointError('zip-checksum', `${src}: entry "${name}" does not inflate to its declared ${entry.uncompressedSize} bytes (${(cause as Error).message})`, {
          file: src,
          key: name,
          cause,
        });
      }
      if (data.byteLength !== entry.uncompressedSize) {
        throw new CheckpointError('zip-checksum', `${src}: entry "${name}" inflates to ${data.byteLength} bytes, header says ${entry.uncompressedSize}`, {
          file: src,
          key: name,
        });
      }
    } else {
      throw new CheckpointError('zip-unsupported', `${src}: entry "${name}" uses compression method ${entry.method} (supported: 0 STORED, 8 DEFLATED)`, {
        file: src,
        key: name,
      });
    }
    const actual = crc32(data);
    if (actual !== entry.crc32) {
      throw new CheckpointError('zip-checksum', `${src}: entry "${name}" fails its CRC-32 check (stored ${hex(entry.crc32)}, computed ${hex(actual)}): corrupt file`, {
        file: src,
        key: name,
      });
    }
    return data;
  }
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

function readU64(view: DataView, at: number, onOverflow: () => never): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) onOverflow();
  return Number(v);
}

/** Offset of the end-of-central-directory record, scanning back over a possible comment; -1 if none. */
function findEocd(view: DataView): number {
  const size = view.byteLength;
  const lowest = Math.max(0, size - EOCD_SIZE - MAX_COMMENT);
  for (let p = size - EOCD_SIZE; p >= lowest; p--) {
    if (view.getUint32(p, true) === SIG_EOCD && p + EOCD_SIZE + view.getUint16(p + 20, true) <= size) return p;
  }
  return -1;
}
