/**
 * Writes zip archives laid out like torch's (`<archive>/data.pkl`, `<archive>/data/<key>`,
 * `version`, optional `byteorder`; ZIP64 end records as torch writes them), so tests can craft
 * well-formed and damaged checkpoints byte by byte.
 */
import * as zlib from 'node:zlib';

/** One entry to write. */
export interface ZipInput {
  readonly name: string;
  readonly data: Uint8Array;
  /** DEFLATE instead of STORE. */
  readonly deflate?: boolean;
  /** Central-directory sizes as 0xFFFFFFFF with the real ones in a ZIP64 extra field. */
  readonly zip64Extra?: boolean;
  /** Overrides the compression method recorded (to forge unsupported ones). */
  readonly method?: number;
  /** Extra general-purpose flag bits (bit 0 = encrypted). */
  readonly flags?: number;
}

function crc32(d: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of d) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip archive of `entries` (ZIP64 end records included unless `zip64` is false). */
export function writeZip(entries: readonly ZipInput[], options: { zip64?: boolean } = {}): Uint8Array {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const body = e.deflate ? zlib.deflateRawSync(e.data) : Buffer.from(e.data);
    const crc = crc32(e.data);
    const method = e.method ?? (e.deflate ? 8 : 0);
    const flags = 0x0800 | (e.flags ?? 0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    parts.push(local, name, body);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(flags, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(e.zip64Extra ? 0xffffffff : body.length, 20);
    c.writeUInt32LE(e.zip64Extra ? 0xffffffff : e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(offset, 42);
    if (e.zip64Extra) {
      const extra = Buffer.alloc(20);
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(16, 2);
      extra.writeBigUInt64LE(BigInt(e.data.length), 4);
      extra.writeBigUInt64LE(BigInt(body.length), 12);
      c.writeUInt16LE(extra.length, 30);
      central.push(c, name, extra);
    } else central.push(c, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(central);
  const tail: Buffer[] = [cd];
  if (options.zip64 !== false) {
    const z = Buffer.alloc(56);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeUInt16LE(45, 12);
    z.writeUInt16LE(45, 14);
    z.writeBigUInt64LE(BigInt(entries.length), 24);
    z.writeBigUInt64LE(BigInt(entries.length), 32);
    z.writeBigUInt64LE(BigInt(cd.length), 40);
    z.writeBigUInt64LE(BigInt(offset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(z, loc);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  tail.push(eocd);
  const out = Buffer.concat([...parts, ...tail]);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** A torch.save-style archive: `archive/data.pkl`, storages `archive/data/<key>`, `archive/version`. */
export function torchArchive(
  dataPkl: Uint8Array,
  storages: Readonly<Record<string, Uint8Array>>,
  options: { byteorder?: string; deflate?: boolean; prefix?: string } = {},
): Uint8Array {
  const prefix = options.prefix ?? 'archive';
  const entries: ZipInput[] = [{ name: `${prefix}/data.pkl`, data: dataPkl, deflate: options.deflate }];
  if (options.byteorder !== undefined) entries.push({ name: `${prefix}/byteorder`, data: new TextEncoder().encode(options.byteorder) });
  for (const [k, v] of Object.entries(storages)) entries.push({ name: `${prefix}/data/${k}`, data: v, deflate: options.deflate });
  entries.push({ name: `${prefix}/version`, data: new TextEncoder().encode('3\n') });
  return writeZip(entries);
}

/** Little-endian bytes of float32 values. */
export function f32bytes(values: readonly number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}
