import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WeightStore, readSafetensorsFile } from '@rcnn/core';
import { publicCaseDir } from '@rcnn/testing';
import { CheckpointError, type CheckpointErrorReason, openCheckpoint, readCheckpoint } from '../src/index.js';
import { type CraftedTensor, PickleBuilder, torchStateDictPickle } from './helpers/pickle-builder.js';
import { f32bytes, torchArchive, writeZip } from './helpers/zip-writer.js';

const bytesOf = (t: { data: ArrayBufferView }): Buffer => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

function refused(fn: () => unknown, reason: CheckpointErrorReason, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof CheckpointError && e.reason === reason && pattern.test(e.message));
}

const T = (name: string, key: string, numel: number, size: number[], stride: number[], offset = 0, storageType = 'FloatStorage'): CraftedTensor => ({
  name,
  storageType,
  key,
  numel,
  offset,
  size,
  stride,
});

describe('torch.save zip checkpoints', () => {
  it('loads fixtures/parity/keypointrcnn_tiny/weights.pth bit-identical to weights.safetensors', () => {
    const dir = publicCaseDir('keypointrcnn_tiny');
    const result = readCheckpoint(join(dir, 'weights.pth'));
    const ref = readSafetensorsFile(join(dir, 'weights.safetensors'));
    assert.deepEqual([...result.tensors.keys()], [...ref.entries.keys()]);
    for (const [key, entry] of ref.entries) {
      const t = result.tensors.get(key)!;
      assert.equal(t.dtype, 'float32', key);
      assert.equal(entry.dtype, 'F32', key);
      assert.deepEqual(t.dims, entry.shape, key);
      assert.ok(bytesOf(t).equals(Buffer.from(entry.bytes)), `${key}: bytes differ`);
    }
    assert.equal(result.format, 'torchvision');
    assert.equal(result.report.container, 'torch-zip');
    assert.deepEqual(result.report.unmapped, []);
    assert.deepEqual(result.report.ignored, []);
    assert.deepEqual(result.report.renamed, []);
    assert.equal(result.report.tensorCount, 143);
  });

  it('plugs into WeightStore.fromSource', () => {
    const dir = publicCaseDir('keypointrcnn_tiny');
    const { store, result } = openCheckpoint(join(dir, 'weights.pth'));
    const ref = WeightStore.fromSafetensors(join(dir, 'weights.safetensors'));
    assert.equal(store.description, join(dir, 'weights.pth'));
    assert.deepEqual(store.take('backbone.body.conv1.weight', [64, 3, 7, 7]), ref.take('backbone.body.conv1.weight', [64, 3, 7, 7]));
    assert.throws(() => store.take('backbone.body.conv1.weight', [64, 3, 3, 3]), /has shape \[64, 3, 7, 7\], expected \[64, 3, 3, 3\]/);
    assert.equal(store.unusedKeys().length, result.tensors.size - 1);
  });

  it('reads float16, bfloat16, float64 and int64 storages', () => {
    const pkl = torchStateDictPickle([
      T('h', '0', 2, [2], [1], 0, 'HalfStorage'),
      T('bf', '1', 2, [2], [1], 0, 'BFloat16Storage'),
      T('d', '2', 1, [1], [1], 0, 'DoubleStorage'),
      T('l', '3', 2, [2], [1], 0, 'LongStorage'),
      T('b', '4', 3, [3], [1], 0, 'BoolStorage'),
    ]);
    const r = readCheckpoint(
      torchArchive(pkl, {
        '0': new Uint8Array(Uint16Array.of(0x3c00, 0xc000).buffer), // 1.0, -2.0
        '1': new Uint8Array(Uint16Array.of(0x3fc0, 0xc0a0).buffer), // 1.5, -5.0
        '2': new Uint8Array(Float64Array.of(Math.PI).buffer),
        '3': new Uint8Array(BigInt64Array.of(-7n, 1n << 40n).buffer),
        '4': Uint8Array.of(1, 0, 1),
      }),
      { from: 'torchvision' },
    );
    assert.equal(r.tensors.get('h')!.dtype, 'float16');
    assert.deepEqual([...(r.tensors.get('h')!.data as Uint16Array)], [0x3c00, 0xc000]);
    assert.equal(r.tensors.get('bf')!.dtype, 'float32');
    assert.deepEqual([...(r.tensors.get('bf')!.data as Float32Array)], [1.5, -5]);
    assert.deepEqual([...(r.tensors.get('d')!.data as Float64Array)], [Math.PI]);
    assert.deepEqual([...(r.tensors.get('l')!.data as BigInt64Array)], [-7n, 1n << 40n]);
    assert.deepEqual([...(r.tensors.get('b')!.data as Uint8Array)], [1, 0, 1]);
    // Unknown names are kept and reported, never dropped.
    assert.deepEqual(r.report.unmapped, ['h', 'bf', 'd', 'l', 'b']);
  });

  it('materialises views (offsets, transposes, shared storages) row-major', () => {
    const storage = f32bytes([0, 1, 2, 3, 4, 5, 6, 7]);
    const pkl = torchStateDictPickle([
      T('whole', '0', 8, [2, 4], [4, 1]),
      T('tail', '0', 8, [3], [1], 5),
      T('transposed', '0', 8, [4, 2], [1, 4]),
      T('strided', '0', 8, [2, 2], [4, 2], 1),
      T('scalar', '0', 8, [], [], 3),
      T('empty', '0', 8, [0, 3], [3, 1]),
      { ...T('param', '0', 8, [2], [1], 6), parameter: true },
    ]);
    const r = readCheckpoint(torchArchive(pkl, { '0': storage }), { from: 'torchvision' });
    const v = (k: string): number[] => [...(r.tensors.get(k)!.data as Float32Array)];
    assert.deepEqual(v('whole'), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(v('tail'), [5, 6, 7]);
    assert.deepEqual(v('transposed'), [0, 4, 1, 5, 2, 6, 3, 7]);
    assert.deepEqual(r.tensors.get('transposed')!.dims, [4, 2]);
    assert.deepEqual(v('strided'), [1, 3, 5, 7]);
    assert.deepEqual(v('scalar'), [3]);
    assert.deepEqual(r.tensors.get('scalar')!.dims, []);
    assert.deepEqual(v('empty'), []);
    assert.deepEqual(v('param'), [6, 7]);
  });

  it('reads DEFLATED entries, an explicit little byteorder, and unwraps {"model": …} / {"state_dict": …} and module. prefixes', () => {
    const tensors = [T('module.backbone.body.conv1.weight', '0', 2, [2], [1])];
    for (const wrapper of ['model', 'state_dict']) {
      const r = readCheckpoint(torchArchive(torchStateDictPickle(tensors, { wrapper }), { '0': f32bytes([1, 2]) }, { deflate: true, byteorder: 'little' }));
      assert.deepEqual([...r.tensors.keys()], ['backbone.body.conv1.weight']);
      assert.deepEqual(r.report.stateDictPath, [wrapper]);
      assert.ok(r.report.notes.some((n) => /module\./.test(n)));
    }
  });

  it('refuses big-endian archives, missing or mis-sized storages and views past their storage', () => {
    const pkl = torchStateDictPickle([T('w', '0', 4, [4], [1])]);
    refused(() => readCheckpoint(torchArchive(pkl, { '0': f32bytes([1, 2, 3, 4]) }, { byteorder: 'big' })), 'byte-order', /byteorder is "big"/);
    refused(() => readCheckpoint(torchArchive(pkl, {}), { source: 'm.pth' }), 'storage-missing', /m\.pth: storage "0" .* no entry "archive\/data\/0"/);
    refused(() => readCheckpoint(torchArchive(pkl, { '0': f32bytes([1, 2, 3]) })), 'storage-size', /4 float32 elements \(16 bytes\) but entry "archive\/data\/0" has 12 bytes/);
    const past = torchStateDictPickle([T('w', '0', 4, [3], [1], 2)]);
    refused(() => readCheckpoint(torchArchive(past, { '0': f32bytes([1, 2, 3, 4]) })), 'view-out-of-bounds', /reaches element 4 of storage "0", which has 4 elements/);
    const negative = new PickleBuilder().proto(2).global('torch', 'ComplexFloatStorage').stop().toBytes();
    refused(() => readCheckpoint(torchArchive(negative, {})), 'pickle-global', /torch\.ComplexFloatStorage/);
  });

  it('recognises TorchScript archives and zips without data.pkl', () => {
    const script = writeZip([
      { name: 'm/constants.pkl', data: Uint8Array.of(0x80, 2, 0x29, 0x2e) },
      { name: 'm/code/__torch__.py', data: new Uint8Array(1) },
    ]);
    refused(() => readCheckpoint(script), 'unrecognized-file', /TorchScript/);
    refused(() => readCheckpoint(writeZip([{ name: 'a.txt', data: new Uint8Array(3) }])), 'unrecognized-file', /no "<archive>\/data\.pkl"/);
  });
});

/** The pre-zip torch.save format: magic, protocol, sys info, data pickle, storage keys, raw storages. */
function legacyCheckpoint(tensors: readonly CraftedTensor[], storages: Readonly<Record<string, Uint8Array>>, options: { littleEndian?: boolean; count?: bigint } = {}): Uint8Array {
  const magic = new PickleBuilder().proto(2).raw(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).stop().toBytes();
  const version = new PickleBuilder().proto(2).int(1001).stop().toBytes();
  const sys = new PickleBuilder()
    .proto(2)
    .emptyDict()
    .mark()
    .unicode('protocol_version')
    .int(1001)
    .unicode('little_endian')
    .bool(options.littleEndian ?? true)
    .setitems()
    .stop()
    .toBytes();
  const main = torchStateDictPickle(tensors, { legacy: true });
  const keys = new PickleBuilder().proto(2).emptyList().mark();
  for (const k of Object.keys(storages)) keys.unicode(k);
  const parts: Uint8Array[] = [magic, version, sys, main, keys.raw(0x65).stop().toBytes()];
  for (const data of Object.values(storages)) {
    const count = new Uint8Array(8);
    new DataView(count.buffer).setBigInt64(0, options.count ?? BigInt(data.byteLength / 4), true);
    parts.push(count, data);
  }
  return Uint8Array.from(Buffer.concat(parts));
}

describe('legacy (pre-zip) torch.save checkpoints', () => {
  it('reads tensors and their views', () => {
    const r = readCheckpoint(legacyCheckpoint([T('rpn.head.conv.weight', 'root', 6, [2, 3], [3, 1]), T('rpn.head.conv.bias', 'root', 6, [2], [1], 4)], { root: f32bytes([1, 2, 3, 4, 5, 6]) }));
    assert.equal(r.report.container, 'torch-legacy');
    // torchvision's RPNHead version-1 names are upgraded.
    assert.deepEqual([...(r.tensors.get('rpn.head.conv.0.0.weight')!.data as Float32Array)], [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...(r.tensors.get('rpn.head.conv.0.0.bias')!.data as Float32Array)], [5, 6]);
  });

  it('refuses mismatched storage blocks and big-endian files', () => {
    const t = [T('w', 'root', 2, [2], [1])];
    refused(() => readCheckpoint(legacyCheckpoint(t, { root: f32bytes([1, 2]) }, { count: 3n })), 'storage-size', /declared with 2 elements but its data block says 3/);
    refused(() => readCheckpoint(legacyCheckpoint(t, { root: f32bytes([1, 2]) }).subarray(0, -4)), 'storage-size', /past the end of the file/);
    refused(() => readCheckpoint(legacyCheckpoint(t, { root: f32bytes([1, 2]) }, { littleEndian: false })), 'byte-order', /big-endian/);
    refused(() => readCheckpoint(legacyCheckpoint(t, {})), 'storage-missing', /"root" is referenced but has no data block/);
  });
});

describe('damaged zip archives', () => {
  const fixture = (): Uint8Array => new Uint8Array(readFileSync(join(publicCaseDir('keypointrcnn_tiny'), 'weights.pth')));

  it('refuses truncated archives', () => {
    const full = fixture();
    for (const keep of [100, full.length >> 1, full.length - 30]) {
      refused(() => readCheckpoint(full.subarray(0, keep), { source: 'cut.pth' }), 'zip-corrupt', /cut\.pth: not a complete zip archive: no end-of-central-directory record/);
    }
  });

  it('refuses an entry whose data runs past the end of the file, naming it', () => {
    // The pickle agrees with the (forged) directory: 250000 elements.
    const zip = Buffer.from(torchArchive(torchStateDictPickle([T('w', '0', 250_000, [4], [1])]), { '0': f32bytes([1, 2, 3, 4]) }));
    // Grow the declared size of archive/data/0 in the central directory (and nothing else).
    const name = Buffer.from('archive/data/0');
    const at = zip.indexOf(name, zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])));
    const header = at - 46;
    assert.equal(zip.readUInt32LE(header), 0x02014b50);
    zip.writeUInt32LE(1_000_000, header + 20);
    zip.writeUInt32LE(1_000_000, header + 24);
    refused(() => readCheckpoint(zip, { source: 'z.pth' }), 'zip-entry-out-of-bounds', /entry "archive\/data\/0": data \[\d+, \d+\) runs past the end of the file/);
  });

  it('reads ZIP64 extra fields and refuses unsupported methods, encryption and duplicate names', () => {
    const pkl = torchStateDictPickle([T('w', '0', 2, [2], [1])]);
    const z64 = writeZip([
      { name: 'a/data.pkl', data: pkl, zip64Extra: true },
      { name: 'a/data/0', data: f32bytes([3, 4]), zip64Extra: true, deflate: true },
    ]);
    assert.deepEqual([...(readCheckpoint(z64, { from: 'torchvision' }).tensors.get('w')!.data as Float32Array)], [3, 4]);
    refused(() => readCheckpoint(writeZip([{ name: 'a/data.pkl', data: pkl, method: 12 }])), 'zip-unsupported', /entry "a\/data\.pkl" uses compression method 12/);
    refused(() => readCheckpoint(writeZip([{ name: 'a/data.pkl', data: pkl, flags: 1 }])), 'zip-unsupported', /entry "a\/data\.pkl" is encrypted/);
    refused(() => readCheckpoint(writeZip([{ name: 'a/data.pkl', data: pkl }, { name: 'a/data.pkl', data: pkl }])), 'zip-corrupt', /duplicate entry "a\/data\.pkl"/);
  });

  it('refuses corrupt data (CRC), bad offsets and bytes removed from the middle', () => {
    const zip = Buffer.from(torchArchive(torchStateDictPickle([T('w', '0', 4, [4], [1])]), { '0': f32bytes([1, 2, 3, 4]) }));
    const flipped = Buffer.from(zip);
    flipped[flipped.indexOf(Buffer.from(f32bytes([1, 2, 3, 4])))]! ^= 0xff;
    refused(() => readCheckpoint(flipped), 'zip-checksum', /entry "archive\/data\/0" fails its CRC-32 check/);
    const badOffset = Buffer.from(zip);
    const eocd = badOffset.length - 22;
    // The ZIP64 record holds the authoritative offsets: point its central directory past the end.
    badOffset.writeBigUInt64LE(10_000_000n, eocd - 20 - 56 + 48);
    refused(() => readCheckpoint(badOffset), 'zip-corrupt', /central directory .* runs past the end of the file/);
    const full = fixture();
    const holed = Buffer.concat([full.subarray(0, 20_000), full.subarray(21_000)]);
    assert.throws(() => readCheckpoint(holed), (e: unknown) => e instanceof CheckpointError && /^zip-/.test(e.reason));
  });
});
