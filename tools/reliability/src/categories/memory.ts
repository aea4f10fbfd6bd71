/**
 * Memory a config or a file can ask for without being large itself. `config-memory`: every
 * size-like key has an upper bound, and the memory of a build is estimated from the config (RoIs
 * x channels x resolution², RoIAlign sampling grids, paste buffers) and refused before anything is
 * built. `bombs`: a small `.pth` whose DEFLATE storage inflates to gigabytes is refused before
 * inflating, and a legitimately compressed checkpoint still loads.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { CheckpointError, ZipArchive, readCheckpoint } from '@rcnn/checkpoint';
import { CORE_SECTIONS, ConfigError, type IntField, LIMITS_SECTION, checkModelMemory, estimateModelMemory, loadConfig } from '@rcnn/core';
import { PRESET_NAMES, resolveConfig } from '@rcnn/runtime';
import { type CaseContext, type ReliabilityCase, assertTyped, thrown } from '../cases.js';
import { FIXTURES, REPO_ROOT, caseFiles, tinyDetector } from '../common.js';
import { type EncodedZipEntry, crc32, encodedZip } from '../craft/weights.js';
import { assertCliError, rcnnInProcess } from './cli.js';

const MASK = caseFiles('maskrcnn_tiny');
const MODEL = ['--config', MASK.config, '--weights', MASK.weights];

/** RSS growth (MB) from before to after `fn` (sampled every 20 ms, peak). */
async function rssGrowthMb<T>(fn: () => Promise<T>): Promise<{ value: T; mb: number }> {
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const value = await fn();
    return { value, mb: (Math.max(peak, process.memoryUsage().rss) - start) / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

/** Raw DEFLATE of `bytes` zero bytes, streamed (the zeros are never held), with their CRC-32. */
async function deflatedZeros(bytes: number): Promise<{ data: Uint8Array; crc: number }> {
  const chunk = Buffer.alloc(1 << 20);
  const d = zlib.createDeflateRaw({ level: 9 });
  const parts: Buffer[] = [];
  d.on('data', (c: Buffer) => parts.push(c));
  const done = new Promise((resolve) => d.on('end', resolve));
  let crc = 0;
  const native = (zlib as unknown as { crc32: (d: Uint8Array, v?: number) => number }).crc32;
  for (let left = bytes; left > 0; left -= chunk.length) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    crc = native(piece, crc);
    if (!d.write(piece)) await new Promise((resolve) => d.once('drain', resolve));
  }
  d.end();
  await done;
  return { data: Buffer.concat(parts), crc: crc >>> 0 };
}

const text = (s: string): number[] => [...new TextEncoder().encode(s)];
const u32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const unicode = (s: string): number[] => [0x58, ...u32(text(s).length), ...text(s)];

/** `{"w": tensor}` (torch.save's data.pkl) with a 1-element float tensor viewing storage "0" of `numel` floats. */
function oneElementView(numel: number): Uint8Array {
  return Uint8Array.from([
    0x80, 2, // PROTO 2
    0x7d, // EMPTY_DICT
    ...unicode('w'),
    0x63, ...text('torch._utils\n_rebuild_tensor_v2\n'), // GLOBAL
    0x28, // MARK (arguments)
    0x28, ...unicode('storage'), 0x63, ...text('torch\nFloatStorage\n'), ...unicode('0'), ...unicode('cpu'), 0x4a, ...u32(numel), 0x74, // (pid) TUPLE
    0x51, // BINPERSID
    0x4b, 0, // offset 0
    0x4b, 1, 0x85, // size (1,)
    0x4b, 1, 0x85, // stride (1,)
    0x89, // requires_grad False
    0x63, ...text('collections\nOrderedDict\n'), 0x29, 0x52, // OrderedDict()
    0x74, // TUPLE
    0x52, // REDUCE
    0x73, // SETITEM
    0x2e, // STOP
  ]);
}

/** Every config-memory and bombs case. `full` uses the 2^28-float storage (6 s to craft). */
export function memoryCases(options: { full?: boolean } = {}): ReliabilityCase[] {
  const cases: ReliabilityCase[] = [];
  const add = (category: 'config-memory' | 'bombs', name: string, run: (ctx: CaseContext) => Promise<void>): void => {
    cases.push({ category, name, run });
  };

  // --- config-driven memory ---
  add('config-memory', 'every integer key of the core sections has a documented upper bound', async () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'config.md'), 'utf8');
    for (const section of CORE_SECTIONS) {
      for (const [key, f] of Object.entries(section.fields)) {
        if (f.type !== 'int') continue;
        const field = f as IntField;
        assert.ok(field.max !== undefined, `${section.name}.${key} has an upper bound`);
        const row = doc.split('\n').find((l) => l.startsWith(`| \`${section.name}.${key}\` |`));
        assert.ok(row?.includes(`${field.min ?? ''}, ${field.max}]`), `docs/config.md documents ${section.name}.${key} in [${field.min}, ${field.max}]: ${row}`);
      }
    }
  });
  for (const [sets, key] of [
    [['MRCNN.ROI_XFORM_RESOLUTION=2000', 'MRCNN.RESOLUTION=4000'], 'MRCNN.ROI_XFORM_RESOLUTION'],
    [['MRCNN.PASTE_PADDING=100000000'], 'MRCNN.PASTE_PADDING'],
    [['FAST_RCNN.ROI_XFORM_SAMPLING_RATIO=100000'], 'FAST_RCNN.ROI_XFORM_SAMPLING_RATIO'],
  ] as const) {
    add('config-memory', `--set ${sets.join(' --set ')}: a ConfigError naming ${key}, before any build`, async () => {
      const { value: e, mb } = await rssGrowthMb(() => thrown(async () => (await tinyDetector('maskrcnn_tiny', { set: [...sets] })).close()));
      assertTyped(e, ConfigError, new RegExp(`config key ${key.replace('.', '\\.')} must be an integer in \\[`));
      assert.equal(e.key, key);
      assert.ok(mb < 200, `RSS grew ${mb.toFixed(0)} MB`);
    });
  }
  add('config-memory', 'keys within their ranges but together far too large: refused from the estimate, with the key to change', async () => {
    const { value: e, mb } = await rssGrowthMb(() =>
      thrown(async () => (await tinyDetector('maskrcnn_tiny', { set: ['MRCNN.ROI_XFORM_RESOLUTION=256', 'MRCNN.RESOLUTION=1024', 'TEST.DETECTIONS_PER_IM=1000'] })).close()),
    );
    assertTyped(e, ConfigError, /this config needs about [\d.]+ (GB|TB) to run 1 image\(s\) at a time, more than LIMITS\.MAX_MODEL_MEMORY_MB \(16384 MB\); the largest part is the mask logits \([\d.]+ GB, from MRCNN\.RESOLUTION, MODEL\.NUM_CLASSES, TEST\.DETECTIONS_PER_IM; MRCNN\.RESOLUTION is 1024\)/);
    assert.match(e.key ?? '', /^MRCNN\./);
    assert.match(e.hint ?? '', /lower MRCNN\.\w+.*raise LIMITS\.MAX_MODEL_MEMORY_MB/);
    assert.ok(mb < 200, `refused before building (RSS +${mb.toFixed(0)} MB)`);
  });
  add('config-memory', 'the same through rcnn predict: one error line naming the key, one hint', async () => {
    const r = await rcnnInProcess(['predict', ...MODEL, '--set', 'MRCNN.ROI_XFORM_RESOLUTION=256', '--set', 'MRCNN.RESOLUTION=1024', '--set', 'TEST.DETECTIONS_PER_IM=1000', MASK.image]);
    assertCliError(r, 1, /needs about .* more than LIMITS\.MAX_MODEL_MEMORY_MB/, { hint: /lower MRCNN\./, only: true });
  });
  add('config-memory', 'rcnn export applies the same estimate', async (ctx) => {
    const r = await rcnnInProcess(['export', ...MODEL, '--set', 'KRCNN.HEATMAP_SIZE=1024', '--set', 'MODEL.KEYPOINTS_ON=true', '--set', 'TEST.DETECTIONS_PER_IM=10000', '-o', join(ctx.tmp.path, 'x.onnx')]);
    assertCliError(r, 1, /needs about .* more than LIMITS\.MAX_MODEL_MEMORY_MB/, { only: true });
  });
  add('config-memory', 'LIMITS.MAX_MODEL_MEMORY_MB is the knob: lowered, the tiny model is refused; every preset and parity case fits the default', async () => {
    const e = await thrown(async () => (await tinyDetector('maskrcnn_tiny', { set: ['LIMITS.MAX_MODEL_MEMORY_MB=1'] })).close());
    assertTyped(e, ConfigError, /more than LIMITS\.MAX_MODEL_MEMORY_MB \(1 MB\)/);
    const limit = LIMITS_SECTION.fields.MAX_MODEL_MEMORY_MB.default * 2 ** 20;
    for (const name of PRESET_NAMES) {
      const { config } = resolveConfig(name);
      const one = estimateModelMemory(config).bytes;
      assert.ok(one < limit / 4, `${name}: ${(one / 1e9).toFixed(2)} GB for one image`);
      checkModelMemory(config, { batchSize: 8 });
    }
    for (const c of ['maskrcnn_tiny', 'keypointrcnn_tiny', 'fasterrcnn_tiny_x_batch2'] as const) checkModelMemory(loadConfig({ layers: [caseFiles(c).config] }));
  });
  add('config-memory', 'the estimate grows with each key it names (RoIs x channels x resolution²)', async () => {
    const base = loadConfig({ layers: [{ MODEL: { MASK_ON: true, KEYPOINTS_ON: true } }] });
    const at = (set: string): number => estimateModelMemory(loadConfig({ layers: [{ MODEL: { MASK_ON: true, KEYPOINTS_ON: true } }], set: [set] })).bytes;
    const b = estimateModelMemory(base).bytes;
    for (const set of ['MRCNN.ROI_XFORM_RESOLUTION=28', 'MRCNN.PASTE_PADDING=100', 'FAST_RCNN.ROI_XFORM_SAMPLING_RATIO=16', 'TEST.RPN_POST_NMS_TOP_N=4000', 'KRCNN.HEATMAP_SIZE=112', 'FPN.DIM=512']) {
      assert.ok(at(set) > b, `${set} raises the estimate`);
    }
  });

  // --- compressed-size bombs ---
  const floats = options.full ? 2 ** 28 : 2 ** 26;
  add('bombs', `a .pth whose DEFLATE storage holds ${floats} floats, viewed by a 1-element tensor: refused before inflating`, async (ctx) => {
    const { data, crc } = await deflatedZeros(floats * 4);
    const entries: EncodedZipEntry[] = [
      { name: 'archive/data.pkl', method: 0, data: oneElementView(floats), crc: crc32(oneElementView(floats)), uncompressedSize: oneElementView(floats).length },
      { name: 'archive/data/0', method: 8, data, crc, uncompressedSize: floats * 4 },
      { name: 'archive/version', method: 0, data: new TextEncoder().encode('3\n'), crc: crc32(new TextEncoder().encode('3\n')), uncompressedSize: 2 },
    ];
    const file = ctx.tmp.file('bomb.pth', encodedZip(entries));
    const bytes = readFileSync(file).length;
    const { value: e, mb } = await rssGrowthMb(() => thrown(() => readCheckpoint(file)));
    assertTyped(e, CheckpointError, /inflating the \d+-byte storage entry "archive\/data\/0" .*refused before inflating \(a compressed-size bomb\)/);
    assert.equal(e.reason, 'pickle-limit');
    assert.ok(mb < 64, `RSS grew ${mb.toFixed(1)} MB (a ${bytes}-byte file that inflates to ${floats * 4} bytes)`);
  });
  add('bombs', 'a DEFLATED data.pkl claiming far more than the file: refused before inflating', async (ctx) => {
    const { data, crc } = await deflatedZeros(64 << 20);
    const file = ctx.tmp.file('pkl-bomb.pth', encodedZip([{ name: 'archive/data.pkl', method: 8, data, crc, uncompressedSize: 64 << 20 }]));
    const e = await thrown(() => readCheckpoint(file));
    assertTyped(e, CheckpointError, /"archive\/data\.pkl" inflates to 67108864 bytes, more than .*refused before inflating/);
  });
  add('bombs', 'the Keypoint R-CNN fixture .pth re-zipped with DEFLATE still loads, tensor for tensor', async (ctx) => {
    const src = readFileSync(join(FIXTURES, 'keypointrcnn_tiny', 'weights.pth'));
    const zip = ZipArchive.parse(src, 'weights.pth');
    const entries: EncodedZipEntry[] = [...zip.entries.keys()].map((name) => {
      const raw = zip.read(name);
      return { name, method: 8, data: zlib.deflateRawSync(raw), crc: crc32(raw), uncompressedSize: raw.length };
    });
    const file = ctx.tmp.file('deflated.pth', encodedZip(entries));
    const a = readCheckpoint(join(FIXTURES, 'keypointrcnn_tiny', 'weights.pth'));
    const b = readCheckpoint(file);
    assert.deepEqual([...b.tensors.keys()], [...a.tensors.keys()]);
    for (const [k, t] of a.tensors) assert.deepEqual(b.tensors.get(k)!.data, t.data, k);
  });
  return cases;
}
