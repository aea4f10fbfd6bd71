import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WeightsError } from '@rcnn/core';
import { CheckpointError, type CheckpointErrorReason, readCheckpoint } from '../src/index.js';
import { unpickle } from '../src/pickle/unpickler.js';
import { PickleBuilder, torchStateDictPickle } from './helpers/pickle-builder.js';
import { f32bytes, torchArchive } from './helpers/zip-writer.js';

const load = (bytes: Uint8Array) => readCheckpoint(bytes, { source: 'crafted.pkl' });

/** Asserts a typed refusal: a WeightsError subclass with the given reason, message pattern and (optionally) global. */
function refused(fn: () => unknown, reason: CheckpointErrorReason, pattern: RegExp, global?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    assert.ok(e instanceof WeightsError);
    assert.equal(e.code, 'E_WEIGHTS');
    assert.equal(e.reason, reason, e.message);
    assert.match(e.message, pattern);
    if (global !== undefined) assert.equal(e.global, global);
    return true;
  });
}

/**
 * Runs a refusal and checks that it stopped before doing what the hostile input asked for: the
 * memory outside the JS heap (buffers) and the heap itself grow by less than `maxBytes`. A loader
 * that first allocated the declared gigabytes, or built the 128 MiB of views, would exceed it. (A
 * wall-clock bound would say the same on a quiet machine but fails under load.)
 */
function fast(fn: () => void, maxBytes = 64 * 2 ** 20): void {
  const before = process.memoryUsage();
  fn();
  const after = process.memoryUsage();
  const grew = Math.max(after.arrayBuffers - before.arrayBuffers, after.external - before.external, after.heapUsed - before.heapUsed);
  assert.ok(grew < maxBytes, `memory grew by ${(grew / 2 ** 20).toFixed(1)} MiB`);
}

const tmp = mkdtempSync(join(tmpdir(), 'rcnn-checkpoint-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('restricted unpickler: globals', () => {
  const calls: [string, string, (p: PickleBuilder) => PickleBuilder][] = [
    ['os', 'system', (p) => p.unicode('touch /tmp/rcnn-pwned').tuple1()],
    ['posix', 'system', (p) => p.unicode('touch /tmp/rcnn-pwned').tuple1()],
    ['nt', 'system', (p) => p.unicode('calc.exe').tuple1()],
    ['builtins', 'eval', (p) => p.unicode('__import__("os").system("id")').tuple1()],
    ['__builtin__', 'eval', (p) => p.binstring('1+1').tuple1()],
    ['builtins', 'exec', (p) => p.unicode('import os').tuple1()],
    ['subprocess', 'Popen', (p) => p.emptyList().unicode('sh').append().tuple1()],
    ['torch', 'load', (p) => p.unicode('other.pth').tuple1()],
  ];
  for (const [module, name, args] of calls) {
    it(`refuses GLOBAL ${module} ${name} and names it`, () => {
      const bytes = args(new PickleBuilder().proto(2).global(module, name)).reduce().stop().toBytes();
      refused(() => load(bytes), 'pickle-global', new RegExp(`"${module}\\.${name}".*not on the allow-list`), `${module}.${name}`);
    });
  }

  it('refuses STACK_GLOBAL (protocol 4) and INST (protocol 0) the same way', () => {
    const stack = new PickleBuilder().proto(4).stackGlobal('posix', 'system').shortUnicode('id').tuple1().reduce().stop().toBytes();
    refused(() => load(stack), 'pickle-global', /posix\.system/, 'posix.system');
    const inst = new PickleBuilder().mark().unicode('id').inst('os', 'system').stop().toBytes();
    refused(() => load(inst), 'pickle-global', /os\.system.*INST/, 'os.system');
  });

  it('never executes a pickle that would write a file: the error names builtins.open and no file appears', () => {
    const target = join(tmp, 'pwned.txt');
    // open(target, "w").write("owned") spelled as Python's pickle would spell it.
    const bytes = new PickleBuilder()
      .proto(2)
      .global('builtins', 'open')
      .unicode(target)
      .unicode('w')
      .tuple2()
      .reduce()
      .binput(0)
      .global('builtins', 'getattr')
      .binget(0)
      .unicode('write')
      .tuple2()
      .reduce()
      .unicode('owned')
      .tuple1()
      .reduce()
      .stop()
      .toBytes();
    refused(() => load(bytes), 'pickle-global', /"builtins\.open"/, 'builtins.open');
    assert.equal(existsSync(target), false);
    // The same program as the data.pkl of a torch archive, and inside an otherwise valid state dict.
    refused(() => readCheckpoint(torchArchive(bytes, {}), { source: 'evil.pth' }), 'pickle-global', /builtins\.open/, 'builtins.open');
    const inDict = new PickleBuilder()
      .proto(2)
      .emptyDict()
      .unicode('w')
      .global('builtins', 'open')
      .unicode(target)
      .unicode('w')
      .tuple2()
      .reduce()
      .setitem()
      .stop()
      .toBytes();
    refused(() => load(inDict), 'pickle-global', /builtins\.open/, 'builtins.open');
    assert.equal(existsSync(target), false);
  });

  it('refuses REDUCE / NEWOBJ on globals that are allowed only as data, and on non-callables', () => {
    const ndarray = new PickleBuilder().proto(2).global('numpy', 'ndarray').emptyTuple().reduce().stop().toBytes();
    refused(() => load(ndarray), 'pickle-global', /numpy\.ndarray.*only as data/, 'numpy.ndarray');
    const storage = new PickleBuilder().proto(2).global('torch', 'FloatStorage').int(4).tuple1().reduce().stop().toBytes();
    refused(() => load(storage), 'pickle-global', /torch\.FloatStorage/, 'torch.FloatStorage');
    const newobj = new PickleBuilder().proto(2).global('torch._utils', '_rebuild_tensor_v2').emptyTuple().newobj().stop().toBytes();
    refused(() => load(newobj), 'pickle-global', /_rebuild_tensor_v2.*instantiated/, 'torch._utils._rebuild_tensor_v2');
    const str = new PickleBuilder().proto(2).unicode('os.system').emptyTuple().reduce().stop().toBytes();
    refused(() => load(str), 'pickle-malformed', /REDUCE on str .* not callable/);
  });

  it('keeps allow-listed constructors to their data contracts', () => {
    const notNdarray = new PickleBuilder()
      .proto(2)
      .global('numpy.core.multiarray', '_reconstruct')
      .global('collections', 'OrderedDict')
      .int(0)
      .tuple1()
      .binstring('b')
      .raw(0x87)
      .reduce()
      .stop()
      .toBytes();
    refused(() => load(notNdarray), 'pickle-malformed', /only allowed for numpy\.ndarray/);
    const codec = new PickleBuilder().proto(2).global('_codecs', 'encode').unicode('x').unicode('rot13').tuple2().reduce().stop().toBytes();
    refused(() => load(codec), 'pickle-malformed', /latin1/);
    const bytesArgs = new PickleBuilder().proto(2).global('builtins', 'bytes').int(10).tuple1().reduce().stop().toBytes();
    refused(() => load(bytesArgs), 'pickle-malformed', /builtins\.bytes is only allowed with no arguments/);
    const build = new PickleBuilder().proto(2).unicode('s').emptyDict().build().stop().toBytes();
    refused(() => load(build), 'pickle-malformed', /BUILD on str/);
  });
});

describe('restricted unpickler: malformed and hostile streams', () => {
  it('refuses unknown and unsupported opcodes', () => {
    refused(() => load(Uint8Array.of(0x80, 0x02, 0xff)), 'pickle-opcode', /unknown opcode 0xff/);
    refused(() => load(Uint8Array.of(0x80, 0x02, 0x28, 0x6f, 0x2e)), 'pickle-opcode', /OBJ \(instantiates a class\)/);
    refused(() => load(Uint8Array.of(0x80, 0x02, 0x49, 0x31, 0x0a, 0x2e)), 'pickle-opcode', /INT \(protocol 0 text\)/);
    refused(() => load(Uint8Array.of(0x80, 0x06, 0x4e, 0x2e)), 'pickle-opcode', /protocol 6/);
    refused(() => load(Uint8Array.of(0x80, 0x02, 0x97, 0x2e)), 'pickle-opcode', /NEXT_BUFFER/);
  });

  it('refuses truncated streams and lengths past the end without allocating them', () => {
    refused(() => load(new PickleBuilder().proto(2).emptyDict().toBytes()), 'pickle-truncated', /ends before the STOP/);
    fast(() => refused(() => load(Uint8Array.of(0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0xff, 0x41)), 'pickle-truncated', /declares 4294967295 bytes but only 1 remain/));
    const huge8 = Uint8Array.of(0x80, 0x04, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x2e);
    fast(() => refused(() => load(huge8), 'pickle-truncated', /declares 4611686018427387904 bytes/));
    const frame = Uint8Array.of(0x80, 0x04, 0x95, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x4e, 0x2e);
    refused(() => load(frame), 'pickle-truncated', /frame declares/);
    refused(() => load(Uint8Array.of(0x80, 0x02, 0x8b, 0xff, 0xff, 0xff, 0x7f, 0x2e)), 'pickle-truncated', /integer declares 2147483647 bytes/);
    refused(() => load(Uint8Array.of(0x80, 0x02, 0x8b, 0xff, 0xff, 0xff, 0xff, 0x2e)), 'pickle-malformed', /negative integer length/);
    refused(() => load(Uint8Array.of(0x80, 0x02, 0x4a, 0x01)), 'pickle-truncated', /declares 4 bytes but only 1 remain/);
    refused(() => load(new PickleBuilder().proto(2).raw(0x63, 0x6f, 0x73).toBytes()), 'pickle-truncated', /module name/);
  });

  it('bounds integer size, nesting depth, MARK depth and stack height, refusing before it allocates what the input declares', () => {
    const long = new PickleBuilder().proto(2).raw(0x8a, 100, ...new Array<number>(100).fill(1)).stop().toBytes();
    refused(() => load(long), 'pickle-limit', /integer of 100 bytes/);
    // 100k nested lists: EMPTY_LIST x N, APPEND x (N-1).
    const n = 100_000;
    const lists = new Uint8Array(2 + 2 * n + 1);
    lists.set([0x80, 0x02]);
    lists.fill(0x5d, 2, 2 + n);
    lists.fill(0x61, 2 + n, 2 + 2 * n - 1);
    lists[2 + 2 * n - 1] = 0x2e;
    fast(() => refused(() => load(lists), 'pickle-limit', /nested more than 1000 deep/));
    const tuples = new Uint8Array(3 + 5000 + 1).fill(0x85);
    tuples.set([0x80, 0x02, 0x29]);
    tuples[tuples.length - 1] = 0x2e;
    fast(() => refused(() => load(tuples), 'pickle-limit', /nested more than 1000 deep/));
    const marks = new Uint8Array(2 + 100_000).fill(0x28);
    marks.set([0x80, 0x02]);
    fast(() => refused(() => load(marks), 'pickle-limit', /MARKs nested more than 1000 deep/));
    const nones = new Uint8Array(2 + 1_100_000).fill(0x4e);
    nones.set([0x80, 0x02]);
    fast(() => refused(() => load(nones), 'pickle-limit', /stack holds more than 1000000 values/));
    // A self-containing list (cycle through the memo) is harmless: nothing walks it recursively.
    const cycle = new PickleBuilder().proto(2).emptyList().binput(0).binget(0).append().stop().toBytes();
    refused(() => load(cycle), 'structure', /holds list of 1, not a dict/);
  });

  it('refuses ill-formed programs with specific messages', () => {
    refused(() => load(Uint8Array.of(0x80, 0x02, 0x52, 0x2e)), 'pickle-malformed', /stack underflow/);
    refused(() => load(Uint8Array.of(0x80, 0x02, 0x74, 0x2e)), 'pickle-malformed', /no MARK/);
    refused(() => load(new PickleBuilder().proto(2).binget(7).stop().toBytes()), 'pickle-malformed', /memo entry 7 was never stored/);
    refused(() => load(new PickleBuilder().proto(2).none().persid().stop().toBytes()), 'pickle-malformed', /persistent id in a plain pickle/);
    refused(() => load(new PickleBuilder().proto(2).emptyDict().emptyList().int(1).setitem().stop().toBytes()), 'pickle-malformed', /dict key list of 0 is not a hashable scalar/);
    refused(() => load(Uint8Array.of(0x80, 0x02, 0x58, 2, 0, 0, 0, 0xc3, 0x28, 0x2e)), 'pickle-malformed', /not valid UTF-8/);
  });

  it('refuses files that are not a state dict', () => {
    refused(() => load(new PickleBuilder().proto(2).none().stop().toBytes()), 'structure', /holds None, not a dict/);
    refused(() => load(new PickleBuilder().proto(2).emptyDict().unicode('epoch').int(3).setitem().stop().toBytes()), 'structure', /no state dict found/);
    refused(() => load(new TextEncoder().encode('hello world, not a checkpoint')), 'unrecognized-file', /not a checkpoint this reader knows/);
  });

  it('checks tensor views against their storage before allocating', () => {
    const pkl = torchStateDictPickle([{ name: 'w', storageType: 'FloatStorage', key: '0', numel: 4, offset: 0, size: [1_000_000_000, 1_000_000_000], stride: [1, 1] }]);
    fast(() => refused(() => readCheckpoint(torchArchive(pkl, { '0': f32bytes([1, 2, 3, 4]) })), 'view-out-of-bounds', /reaches element 1999999998 of storage "0", which has 4 elements/));
  });

  it('caps the memory many views of one storage can ask for', () => {
    // 2000 transposed (copying) views of one 64 KiB storage would be 128 MiB from a ~300 KB file.
    const views = Array.from({ length: 2000 }, (_, i) => ({ name: `w${i}`, storageType: 'FloatStorage', key: '0', numel: 16384, offset: 0, size: [128, 128], stride: [1, 128] }));
    const zip = torchArchive(torchStateDictPickle(views), { '0': new Uint8Array(65536) });
    fast(() => refused(() => readCheckpoint(zip, { from: 'torchvision' }), 'pickle-limit', /decode to more than \d+ bytes \(4x the file\)/));
  });

  it('exposes the unpickler for other containers, with the same limits', () => {
    const r = unpickle(new PickleBuilder().proto(2).int(5).stop().toBytes(), { source: 'x' });
    assert.equal(r.value, 5);
    const deep = new Uint8Array(2 + 20).fill(0x28);
    deep.set([0x80, 0x02]);
    refused(() => unpickle(deep, { source: 'x', limits: { maxMarks: 10 } }), 'pickle-limit', /MARKs nested more than 10 deep/);
  });
});
