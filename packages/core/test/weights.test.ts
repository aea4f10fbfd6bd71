import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setImmediate } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WeightStore, WeightsError, parseSafetensors, readSafetensorsFile, writeSafetensors } from '../src/index.js';
import { fixturesDir } from './helpers.js';

/** A safetensors file from a literal header and data section. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const rejects = (buffer: Uint8Array, pattern: RegExp, key?: string): void =>
  assert.throws(
    () => parseSafetensors(buffer, 'crafted.safetensors'),
    (e: unknown) => e instanceof WeightsError && e.file === 'crafted.safetensors' && pattern.test(e.message) && (key === undefined || e.key === key),
  );

describe('safetensors', () => {
  it('round-trips tensors of every supported dtype with 8-byte aligned data', () => {
    const bytes = writeSafetensors(
      [
        ['a', { dtype: 'float32', dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) }],
        ['b', { dtype: 'int64', dims: [3], data: BigInt64Array.of(-1n, 0n, 7n) }],
        ['c', { dtype: 'uint8', dims: [0, 1], data: new Uint8Array(0) }],
      ],
      { format: 'pt' },
    );
    const f = parseSafetensors(bytes);
    assert.deepEqual(f.metadata, { format: 'pt' });
    assert.deepEqual([...f.entries.keys()], ['a', 'b', 'c']);
    assert.equal(new DataView(bytes.buffer).getUint32(0, true) % 8, 0);
    const store = WeightStore.fromSafetensorsBuffer(bytes);
    assert.deepEqual(Array.from(store.take('a', [2, 2])), [1, 2, 3, 4]);
  });

  it('rejects a truncated file', () => {
    rejects(new Uint8Array(5), /truncated: 5 bytes/);
    const good = writeSafetensors([['a', { dtype: 'float32', dims: [4], data: new Float32Array(4) }]]);
    rejects(good.subarray(0, good.length - 3), /past the end of the data .*truncated/, 'a');
  });

  it('rejects a header length past EOF', () => {
    rejects(craft({}, new Uint8Array(0), 1000n), /header length 1000 runs past the end of the file/);
    rejects(craft({}, new Uint8Array(0), 2n ** 62n), /runs past the end/);
  });

  it('rejects invalid JSON and non-object headers', () => {
    const bad = new Uint8Array(8 + 3);
    new DataView(bad.buffer).setBigUint64(0, 3n, true);
    bad.set(new TextEncoder().encode('{"a'), 8);
    rejects(bad, /header is not valid UTF-8 JSON/);
    rejects(craft([1, 2]), /not a JSON object/);
  });

  it('rejects overlapping and out-of-range offsets', () => {
    const data = new Uint8Array(16);
    rejects(craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data), /"a" \[0, 8\) and "b" \[4, 12\) overlap/, 'b');
    rejects(craft({ a: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, data), /past the end of the data \(16 bytes\)/, 'a');
    rejects(craft({ a: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, data), /begin > end/, 'a');
    rejects(craft({ a: { dtype: 'F32', shape: [1], data_offsets: [-4, 0] } }, data), /invalid data_offsets/, 'a');
  });

  it('rejects unknown dtypes and shape/size mismatches', () => {
    const data = new Uint8Array(16);
    rejects(craft({ a: { dtype: 'F8', shape: [2], data_offsets: [0, 2] } }, data), /unknown dtype "F8"/, 'a');
    rejects(craft({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data), /needs 12 bytes but data_offsets span 8/, 'a');
    rejects(craft({ a: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, data), /invalid shape/, 'a');
    rejects(craft({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, data), /absurd shape/, 'a');
  });
});

describe('WeightStore', () => {
  const file = (): Uint8Array =>
    writeSafetensors([
      ['w', { dtype: 'float32', dims: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) }],
      ['h', { dtype: 'float16', dims: [2], data: Uint16Array.of(0x3c00, 0xc000) }],
      ['i', { dtype: 'int64', dims: [1], data: BigInt64Array.of(1n) }],
      ['nan', { dtype: 'float32', dims: [2], data: Float32Array.of(1, Number.NaN) }],
      ['extra', { dtype: 'float32', dims: [1], data: Float32Array.of(0) }],
    ]);

  it('names file, key, expected and actual shape on a mismatch', () => {
    const s = WeightStore.fromSafetensorsBuffer(file(), 'model.safetensors');
    assert.throws(() => s.take('w', [3, 2]), (e: unknown) => e instanceof WeightsError && e.message === 'model.safetensors: tensor "w" has shape [2, 3], expected [3, 2]' && e.key === 'w');
    assert.throws(() => s.take('missing.weight', [1]), (e: unknown) => e instanceof WeightsError && /missing tensor "missing.weight" \(expected shape \[1\]\)/.test(e.message));
    assert.throws(() => s.take('i', [1]), /dtype int64, expected a floating-point type/);
  });

  it('names the file when a tensor has a dtype it cannot decode (regression)', () => {
    const u16 = craft({ q: { dtype: 'U16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4));
    const s = WeightStore.fromSafetensorsBuffer(u16, 'model.safetensors');
    assert.throws(
      () => s.take('q', [2]),
      (e: unknown) => e instanceof WeightsError && e.file === 'model.safetensors' && e.key === 'q' && /^model\.safetensors: tensor "q" has dtype U16, which rcnn-node does not decode/.test(e.message),
    );
  });

  it('converts float16, refuses NaN by default and warns when asked', () => {
    const s = WeightStore.fromSafetensorsBuffer(file());
    assert.deepEqual(Array.from(s.take('h', [2])), [1, -2]);
    assert.throws(() => s.take('nan', [2]), /holds NaN at flat index 1/);
    const warnings: string[] = [];
    const w = WeightStore.fromSafetensorsBuffer(file(), 'f', { nonFinite: 'warn', onWarning: (m) => warnings.push(m) });
    w.take('nan', [2]);
    assert.equal(warnings.length, 1);
  });

  it('lists the buffers behind what it read: the file, converted and drawn arrays, shared with forks', () => {
    const bytes = file();
    const s = WeightStore.fromSafetensorsBuffer(bytes, 'model.safetensors');
    assert.deepEqual(s.backingBuffers(), [], 'nothing read yet');
    const w = s.take('w', [2, 3]);
    const h = s.fork().take('h', [2]);
    const listed = new Set(s.backingBuffers());
    assert.ok(listed.has(w.buffer), 'the float32 tensor (a view of the file, or its aligned copy)');
    assert.ok(listed.has(h.buffer), 'the float16 tensor converted to float32');
    assert.ok(listed.has(bytes.buffer), 'the file itself, behind the float16 tensor');
    assert.equal(listed.size, w.buffer === bytes.buffer ? 2 : 3);
    const random = WeightStore.random(3);
    const drawn = random.take('x', [4]);
    assert.deepEqual(random.backingBuffers(), [drawn.buffer]);
  });

  it('does not keep alive what it lists: a drawn array nobody holds is collected', async () => {
    setFlagsFromString('--expose-gc');
    const collectGarbage = runInNewContext('gc') as () => void;
    const random = WeightStore.random(3);
    const dropped = random.take('big', [1 << 20]).length;
    const kept = random.take('kept', [4]);
    assert.equal(dropped, 1 << 20);
    assert.equal(random.backingBuffers().length, 2);
    // A WeakRef keeps its target until the current job ends.
    await setImmediate();
    collectGarbage();
    assert.deepEqual(random.backingBuffers(), [kept.buffer]);
  });

  it('reports unused keys', () => {
    const s = WeightStore.fromSafetensorsBuffer(file(), 'model.safetensors');
    s.take('w', [2, 3]);
    s.take('h', [2]);
    assert.deepEqual(s.unusedKeys().sort(), ['extra', 'i', 'nan']);
    assert.throws(() => s.assertAllUsed(), /3 tensor\(s\) not used by the model: .*extra/);
    s.markUsed('i', 'nan', 'extra');
    s.assertAllUsed();
  });

  it('refuses an absurd random tensor before allocating it, naming the key (regression)', () => {
    const s = WeightStore.random(0);
    assert.throws(
      () => s.take('roi_heads.box_head.fc6.weight', [100_000_000, 1568]),
      (e: unknown) => e instanceof WeightsError && e.key === 'roi_heads.box_head.fc6.weight' && /shape \[100000000, 1568\] would hold 156800000000 values, more than 536870912/.test(e.message),
    );
  });

  it('draws deterministic random weights per key', () => {
    const a = WeightStore.random(3).take('x', [4, 2, 3, 3]);
    const b = WeightStore.random(3).take('x', [4, 2, 3, 3]);
    const c = WeightStore.random(4).take('x', [4, 2, 3, 3]);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const std = Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    assert.ok(std > 0.2 && std < 0.8, `He init std ${std} for fan_in 18`);
    assert.deepEqual(Array.from(WeightStore.random(0).take('b', [3], { kind: 'constant', value: 1 })), [1, 1, 1]);
  });

  it('loads the weights of every public fixture', () => {
    for (const name of readdirSync(fixturesDir()).filter((n) => !n.endsWith('.md'))) {
      const path = join(fixturesDir(), name, 'weights.safetensors');
      const f = readSafetensorsFile(path);
      assert.ok(f.entries.size > 100, `${name} has ${f.entries.size} tensors`);
      const store = WeightStore.fromSafetensors(f);
      for (const [key, entry] of f.entries) {
        const t = store.take(key, entry.shape);
        assert.equal(t.length, entry.shape.reduce((a, b) => a * b, 1));
      }
      store.assertAllUsed();
    }
  });
});
