/**
 * Hostile weights through the public path (`createDetector({ weights: path })`, the reader chosen
 * by extension): truncated files, headers that lie, wrong dtypes, NaN/Inf, missing and extra keys,
 * another architecture's checkpoint, and pickles that would run code. Each must be a WeightsError
 * naming the file and the key at fault, or load and give the right detections.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '@rcnn/checkpoint';
import { type HostTensor, WeightsError, hostTensor, writeSafetensors } from '@rcnn/core';
import type { Detector, DetectorOptions } from '@rcnn/runtime';
import { type CaseContext, type ReliabilityCase, assertTyped, thrown } from '../cases.js';
import { type TinyCase, caseFiles, isTypedError, tinyDetector } from '../common.js';
import { PickleWriter, commandPickle, fileWritingPickle, joinSafetensors, readTensors, splitSafetensors, torchArchive } from '../craft/weights.js';
import { assertSameDetections } from './images.js';

const MASK = caseFiles('maskrcnn_tiny');
let maskTensors: Map<string, HostTensor> | undefined;
let maskBytes: Uint8Array | undefined;

/** The maskrcnn_tiny weights as tensors (read once). */
function tensors(): Map<string, HostTensor> {
  maskTensors ??= readTensors(MASK.weights);
  return maskTensors;
}

/** The maskrcnn_tiny weights file's bytes (read once). */
function bytes(): Uint8Array {
  maskBytes ??= new Uint8Array(readFileSync(MASK.weights));
  return maskBytes;
}

/** Creates the maskrcnn_tiny detector with `weights` and returns what it threw; a detector that was created is closed and the case fails. */
async function createFails(weights: string, options: Partial<DetectorOptions> = {}, model: TinyCase = 'maskrcnn_tiny'): Promise<unknown> {
  return thrown(async () => {
    const d = await tinyDetector(model, { weights, ...options });
    await d.close();
  });
}

/** Writes `content` as `name`, loads it as the weights of maskrcnn_tiny, and checks the WeightsError names the file and matches `patterns`. */
async function refused(ctx: CaseContext, name: string, content: Uint8Array, ...patterns: RegExp[]): Promise<WeightsError> {
  const path = ctx.tmp.file(name, content);
  const e = await createFails(path);
  assertTyped(e, WeightsError, ...patterns);
  assert.ok(e.message.includes(name), `the message names the file: ${e.message}`);
  return e;
}

/** maskrcnn_tiny's tensors with `edit` applied, as safetensors bytes. */
function edited(edit: (t: Map<string, HostTensor>) => void): Uint8Array {
  const t = new Map(tensors());
  edit(t);
  return writeSafetensors(t);
}

/** `key`'s tensor with element `index` set to `value`. */
function poke(t: Map<string, HostTensor>, key: string, index: number, value: number): void {
  const old = t.get(key)!;
  const data = (old.data as Float32Array).slice();
  data[index] = value;
  t.set(key, hostTensor('float32', old.dims, data));
}

/** A header edit on the real file: the header object is changed, the data kept. */
type HeaderEntry = { dtype: string; shape: unknown; data_offsets: unknown };

function headerLie(edit: (header: Record<string, HeaderEntry> & Record<typeof KEY, HeaderEntry>, dataLength: number) => void): Uint8Array {
  const { header, data } = splitSafetensors(bytes());
  const h = JSON.parse(JSON.stringify(header)) as Record<string, HeaderEntry>;
  if (!(KEY in h)) throw new Error(`the fixture weights have no tensor ${KEY} to edit`);
  edit(h as Record<string, HeaderEntry> & Record<typeof KEY, HeaderEntry>, data.length);
  return joinSafetensors(h, data);
}

const KEY = 'rpn.head.conv.0.0.weight';
const PRED = 'roi_heads.box_predictor.cls_score.weight';

async function predictFixture(d: Detector): Promise<Awaited<ReturnType<Detector['predictOne']>>> {
  return d.predictOne(MASK.image);
}

/** Every weights case. */
export function weightsCases(): ReliabilityCase[] {
  const cases: ReliabilityCase[] = [];
  const add = (name: string, run: (ctx: CaseContext) => Promise<void>): void => {
    cases.push({ category: 'weights', name, run });
  };

  // --- truncated ---
  for (const n of [0, 4, 7]) {
    add(`safetensors of ${n} bytes`, async (ctx) => {
      await refused(ctx, `tiny-${n}.safetensors`, bytes().subarray(0, n), /truncated: \d+ bytes/);
    });
  }
  add('safetensors cut inside its header', async (ctx) => {
    await refused(ctx, 'cut-header.safetensors', bytes().subarray(0, 200), /header length \d+ runs past the end of the file/);
  });
  for (const fraction of [0.5, 0.999]) {
    add(`safetensors cut at ${fraction * 100}% (inside the data)`, async (ctx) => {
      await refused(ctx, 'cut-data.safetensors', bytes().subarray(0, Math.floor(bytes().length * fraction)), /past the end of the data .*truncated file/);
    });
  }
  add('safetensors missing its last byte', async (ctx) => {
    await refused(ctx, 'minus-one.safetensors', bytes().subarray(0, bytes().length - 1), /truncated file/);
  });

  // --- header lies ---
  add('header length 2^63', async (ctx) => {
    const { header, data } = splitSafetensors(bytes());
    await refused(ctx, 'len63.safetensors', joinSafetensors(header, data, 2n ** 63n), /header length 9223372036854775808 runs past the end/);
  });
  add('header length 0', async (ctx) => {
    await refused(ctx, 'len0.safetensors', joinSafetensors(new Uint8Array(0), new Uint8Array(64)), /header is not valid UTF-8 JSON/);
  });
  add('header that is not JSON', async (ctx) => {
    await refused(ctx, 'notjson.safetensors', joinSafetensors(new TextEncoder().encode('{"a": [1, 2'), new Uint8Array(8)), /not valid UTF-8 JSON/);
  });
  add('header with invalid UTF-8', async (ctx) => {
    await refused(ctx, 'utf8.safetensors', joinSafetensors(Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), new Uint8Array(8)), /not valid UTF-8 JSON/);
  });
  add('header that is a JSON array', async (ctx) => {
    await refused(ctx, 'array.safetensors', joinSafetensors(new TextEncoder().encode('[1,2,3]'), new Uint8Array(8)), /header is not a JSON object/);
  });
  add('data_offsets past the end of the file', async (ctx) => {
    const e = await refused(
      ctx,
      'past-eof.safetensors',
      headerLie((h, n) => {
        const shape = h[KEY].shape as number[];
        const count = shape.reduce((a, b) => a * b, 1) * 4;
        h[KEY].data_offsets = [n - count + 64, n + 64];
      }),
      new RegExp(`tensor "${KEY.replace(/\./g, '\\.')}" has data_offsets .* past the end of the data`),
    );
    assert.equal(e.key, KEY);
  });
  add('two tensors whose bytes overlap', async (ctx) => {
    await refused(
      ctx,
      'overlap.safetensors',
      headerLie((h) => {
        const other = 'rpn.head.conv.0.0.bias';
        const [b] = h[KEY].data_offsets as [number, number];
        h[other]!.data_offsets = [b, b + 32 * 4];
      }),
      /overlap/,
    );
  });
  add('data_offsets with begin > end', async (ctx) => {
    await refused(
      ctx,
      'reversed.safetensors',
      headerLie((h) => {
        const [b, e] = h[KEY].data_offsets as [number, number];
        h[KEY].data_offsets = [e, b];
      }),
      /begin > end/,
    );
  });
  for (const [what, offsets] of [
    ['negative', [-4, 8]],
    ['fractional', [0.5, 8]],
    ['three', [0, 4, 8]],
    ['string', ['0', '8']],
    ['huge (2^60)', [0, 2 ** 60]],
  ] as const) {
    add(`data_offsets ${what}`, async (ctx) => {
      await refused(
        ctx,
        `offsets-${what.split(' ')[0]}.safetensors`,
        headerLie((h) => {
          h[KEY].data_offsets = offsets;
        }),
        /(invalid data_offsets|past the end of the data)/,
      );
    });
  }
  add('absurd shape [2^31, 2^31, 2^31]', async (ctx) => {
    await refused(
      ctx,
      'absurd.safetensors',
      headerLie((h) => {
        h[KEY].shape = [2 ** 31, 2 ** 31, 2 ** 31];
      }),
      /absurd shape|needs \d+ bytes/,
    );
  });
  add('shape that disagrees with the byte count', async (ctx) => {
    await refused(
      ctx,
      'shape.safetensors',
      headerLie((h) => {
        h[KEY].shape = [32, 32, 3, 2];
      }),
      /needs 24576 bytes but data_offsets span 36864/,
    );
  });
  for (const [what, shape] of [
    ['negative', [-32, 32, 3, 3]],
    ['non-list', 'big'],
    ['fractional', [32, 32, 3, 2.5]],
  ] as const) {
    add(`${what} shape`, async (ctx) => {
      await refused(
        ctx,
        `shape-${what}.safetensors`,
        headerLie((h) => {
          h[KEY].shape = shape;
        }),
        /invalid shape/,
      );
    });
  }
  add('unknown dtype "F8"', async (ctx) => {
    await refused(
      ctx,
      'f8.safetensors',
      headerLie((h) => {
        h[KEY].dtype = 'F8';
      }),
      /unknown dtype "F8" \(known: F64, F32/,
    );
  });
  add('__metadata__ that is not a map of strings', async (ctx) => {
    await refused(
      ctx,
      'meta.safetensors',
      headerLie((h) => {
        (h as Record<string, unknown>).__metadata__ = { format: 5 };
      }),
      /__metadata__\.format is not a string/,
    );
  });

  // --- wrong dtype, wrong values ---
  add('integer (I64) tensor where a float weight belongs', async (ctx) => {
    const e = await refused(
      ctx,
      'i64.safetensors',
      edited((t) => {
        const old = t.get(KEY)!;
        t.set(KEY, hostTensor('int64', old.dims, new BigInt64Array(old.data.length)));
      }),
      new RegExp(`tensor "${KEY.replace(/\./g, '\\.')}" has dtype int64, expected a floating-point type`),
    );
    assert.equal(e.key, KEY);
  });
  add('U16 tensor (a safetensors dtype rcnn-node does not decode)', async (ctx) => {
    await refused(
      ctx,
      'u16.safetensors',
      headerLie((h) => {
        const shape = h[KEY].shape as number[];
        h[KEY].dtype = 'U16';
        h[KEY].shape = [...shape.slice(0, -1), shape[shape.length - 1]! * 2];
      }),
      /dtype U16, which rcnn-node does not decode/,
    );
  });
  add('F64 weights load (converted to float32) and give the same detections', async (ctx) => {
    const t64 = new Map([...tensors()].map(([k, t]) => [k, t.dtype === 'float32' ? hostTensor('float64', t.dims, Float64Array.from(t.data as Float32Array)) : t] as const));
    const path = ctx.tmp.file('f64.safetensors', writeSafetensors(t64));
    const reference = await ctx.tiny('maskrcnn_tiny');
    const d = await tinyDetector('maskrcnn_tiny', { weights: path });
    try {
      assertSameDetections(await predictFixture(d), await predictFixture(reference), 'F64 weights');
    } finally {
      await d.close();
    }
  });
  for (const [value, word] of [
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Inf'],
    [Number.NEGATIVE_INFINITY, 'Inf'],
  ] as const) {
    add(`${String(value)} in a weight: refused by default, naming tensor and index`, async (ctx) => {
      const e = await refused(
        ctx,
        'nonfinite.safetensors',
        edited((t) => poke(t, PRED, 7, value)),
        new RegExp(`tensor "${PRED.replace(/\./g, '\\.')}" holds ${word} at flat index 7`),
      );
      assert.equal(e.key, PRED);
      assert.match(e.hint ?? '', /nonFinite/);
    });
  }
  add('NaN in the first conv with nonFinite "warn": one warning per tensor, predictions do not crash', async (ctx) => {
    // NaN everywhere downstream: proposals, RoIAlign boxes, NMS and mask pasting all see NaN.
    const path = ctx.tmp.file('nan-conv1.safetensors', edited((t) => poke(t, 'backbone.body.conv1.weight', 0, Number.NaN)));
    const warnings: string[] = [];
    const d = await tinyDetector('maskrcnn_tiny', { weights: path, nonFinite: 'warn', devices: ['cpu', 'cpu'] }, warnings);
    try {
      assert.equal(warnings.filter((w) => /"backbone\.body\.conv1\.weight" holds NaN/.test(w)).length >= 1, true, warnings.join('\n'));
      const outcomes = await d.predict([MASK.image, MASK.image]);
      for (const o of outcomes) {
        // Garbage in, garbage out (the caller chose to go on), but never a crash or an untyped error.
        if (!o.ok) assert.ok(isTypedError(o.error), `a typed error, not ${o.error.name}: ${o.error.message}`);
      }
    } finally {
      await d.close();
    }
  });

  // --- missing, extra, other architectures ---
  add('a missing tensor: named, with its expected shape', async (ctx) => {
    const e = await refused(ctx, 'missing.safetensors', edited((t) => t.delete(KEY)), new RegExp(`missing tensor "${KEY.replace(/\./g, '\\.')}" \\(expected shape \\[32, 32, 3, 3\\]\\)`));
    assert.equal(e.key, KEY);
  });
  add('an extra tensor: a warning naming it, detections unchanged', async (ctx) => {
    const path = ctx.tmp.file('extra.safetensors', edited((t) => t.set('roi_heads.extra_head.weight', hostTensor('float32', [2], new Float32Array([1, 2])))));
    const warnings: string[] = [];
    const d = await tinyDetector('maskrcnn_tiny', { weights: path }, warnings);
    try {
      assert.ok(warnings.some((w) => /not used by the model: roi_heads\.extra_head\.weight/.test(w)), warnings.join('\n'));
      assertSameDetections(await predictFixture(d), await predictFixture(await ctx.tiny('maskrcnn_tiny')), 'extra key');
    } finally {
      await d.close();
    }
  });
  add('a transposed weight: named, with both shapes', async (ctx) => {
    await refused(
      ctx,
      'transposed.safetensors',
      edited((t) => {
        const old = t.get(PRED)!;
        t.set(PRED, hostTensor('float32', [old.dims[1]!, old.dims[0]!], old.data as Float32Array));
      }),
      /tensor "roi_heads\.box_predictor\.cls_score\.weight" has shape \[64, 5\], expected \[5, 64\]/,
    );
  });
  add('Keypoint R-CNN weights into the Mask R-CNN config: key and both shapes named', async () => {
    const e = await createFails(caseFiles('keypointrcnn_tiny').weights);
    assertTyped(e, WeightsError, /keypointrcnn_tiny\/weights\.safetensors: tensor "roi_heads\.box_predictor\.cls_score\.weight" has shape \[2, 64\], expected \[5, 64\]/);
    assert.equal(e.key, PRED);
    assert.match(e.hint ?? '', /does not match the weights/);
  });
  add('Mask R-CNN weights into the Keypoint R-CNN config: the missing keypoint head named', async () => {
    const e = await thrown(async () => (await tinyDetector('keypointrcnn_tiny', { weights: MASK.weights })).close());
    assertTyped(e, WeightsError, /maskrcnn_tiny\/weights\.safetensors: /, /(roi_heads\.box_predictor\.cls_score\.weight" has shape \[5, 64\], expected \[2, 64\]|missing tensor "roi_heads\.keypoint)/);
  });
  add('grouped (ResNeXt) Faster R-CNN weights into the Mask R-CNN config', async () => {
    const e = await createFails(caseFiles('fasterrcnn_tiny_x_batch2').weights);
    assertTyped(e, WeightsError, /fasterrcnn_tiny_x_batch2\/weights\.safetensors: tensor ".*" has shape \[[\d, ]+\], expected \[[\d, ]+\]/);
  });

  // --- files ---
  add('a missing weights file', async (ctx) => {
    const e = await createFails(join(ctx.tmp.path, 'absent.safetensors'));
    assertTyped(e, WeightsError, /cannot read weights file .*absent\.safetensors: no such file/);
  });
  add('a directory as the weights', async (ctx) => {
    const e = await createFails(ctx.tmp.path);
    assertTyped(e, WeightsError, /is not a file/);
  });
  add('an extension nobody reads (.bin): the known formats listed', async (ctx) => {
    const e = await createFails(ctx.tmp.file('weights.bin', bytes().subarray(0, 100)));
    assertTyped(e, WeightsError, /no reader for weights file .*weights\.bin .*known formats: .*\.safetensors/);
  });
  add('a .pth that is really safetensors: read as such, same detections', async (ctx) => {
    const path = ctx.tmp.file('renamed.pth', bytes());
    const d = await tinyDetector('maskrcnn_tiny', { weights: path });
    try {
      assertSameDetections(await predictFixture(d), await predictFixture(await ctx.tiny('maskrcnn_tiny')), 'safetensors named .pth');
    } finally {
      await d.close();
    }
  });
  add('keypointrcnn_tiny weights.pth (torch.save) loads through --weights: same detections as its safetensors', async (ctx) => {
    const files = caseFiles('keypointrcnn_tiny');
    const d = await tinyDetector('keypointrcnn_tiny', { weights: files.pth });
    try {
      assertSameDetections(await d.predictOne(files.image), await (await ctx.tiny('keypointrcnn_tiny')).predictOne(files.image), 'weights.pth');
    } finally {
      await d.close();
    }
  });
  add('a truncated .pth (zip cut in half)', async (ctx) => {
    const pth = readFileSync(caseFiles('keypointrcnn_tiny').pth);
    const e = await createFails(ctx.tmp.file('half.pth', pth.subarray(0, pth.length >> 1)), {}, 'keypointrcnn_tiny');
    assertTyped(e, CheckpointError, /half\.pth: /);
    assert.equal(e.reason, 'zip-corrupt');
  });
  add('a .pth whose storage bytes were altered (CRC mismatch)', async (ctx) => {
    const pth = Buffer.from(readFileSync(caseFiles('keypointrcnn_tiny').pth));
    pth[pth.length >> 1]! ^= 0xff;
    const e = await createFails(ctx.tmp.file('bitrot.pth', pth), {}, 'keypointrcnn_tiny');
    assertTyped(e, CheckpointError, /bitrot\.pth/);
    assert.equal(e.reason, 'zip-checksum');
  });

  // --- pickles that would run code ---
  for (const [what, wrap] of [
    ['.pkl', (p: Uint8Array) => p],
    ['.pth (inside a torch.save zip)', (p: Uint8Array) => torchArchive(p)],
  ] as const) {
    add(`a pickle that WOULD WRITE A FILE (${what}): refused at builtins.open, no file written`, async (ctx) => {
      const target = join(ctx.tmp.path, `owned-${what.slice(1, 4)}.txt`);
      const ext = what.startsWith('.pkl') ? 'pkl' : 'pth';
      const e = await createFails(ctx.tmp.file(`evil.${ext}`, wrap(fileWritingPickle(target))));
      assertTyped(e, CheckpointError, /refers to global "builtins\.open", which is not on the allow-list/, new RegExp(`evil\\.${ext}`));
      assert.equal(e.reason, 'pickle-global');
      assert.equal(e.global, 'builtins.open');
      assert.equal(existsSync(target), false, 'nothing was executed: the file does not exist');
    });
  }
  for (const [module, name] of [
    ['posix', 'system'],
    ['os', 'system'],
    ['subprocess', 'check_output'],
    ['builtins', 'eval'],
    ['torch', 'load'],
    ['collections', 'deque'],
  ] as const) {
    add(`a pickle calling ${module}.${name}: refused naming it`, async (ctx) => {
      const marker = join(ctx.tmp.path, `ran-${name}`);
      const e = await createFails(ctx.tmp.file(`call-${name}.pkl`, commandPickle(module, name, `touch ${marker}`)));
      assertTyped(e, CheckpointError, new RegExp(`"${module}\\.${name}"`));
      assert.equal(e.reason, 'pickle-global');
      assert.equal(existsSync(marker), false);
    });
  }
  add('REDUCE on a data-only global (torch.FloatStorage): refused', async (ctx) => {
    const p = new PickleWriter().proto(2).global('torch', 'FloatStorage').emptyTuple().reduce().stop().toBytes();
    const e = await createFails(ctx.tmp.file('storage-call.pkl', p));
    assertTyped(e, CheckpointError, /torch\.FloatStorage/);
  });

  // --- round 2 (issue 18): what the safetensors format itself refuses, and printable names ---
  add('a header with the same tensor key twice: refused (JSON.parse would keep the last)', async (ctx) => {
    const { header, data } = splitSafetensors(bytes());
    const text = JSON.stringify(header);
    const entry = JSON.stringify(header[KEY]);
    const doubled = `${text.slice(0, -1)},${JSON.stringify(KEY)}:${entry}}`;
    const e = await refused(ctx, 'dup-key.safetensors', joinSafetensors(new TextEncoder().encode(doubled), data), new RegExp(`header has the key "${KEY.replace(/\./g, '\\.')}" twice`));
    assert.equal(e.key, KEY);
  });
  add('bytes after the last tensor\'s data: refused', async (ctx) => {
    const padded = new Uint8Array(bytes().length + 16);
    padded.set(bytes());
    await refused(ctx, 'trailing.safetensors', padded, /16 byte\(s\) after the last tensor's data/);
  });
  add('a 1 MB tensor key with NUL bytes: warnings show it cut and escaped', async (ctx) => {
    const key = `roi_heads.extra\u0000${'x'.repeat(1 << 20)}`;
    const path = ctx.tmp.file('long-key.safetensors', edited((t) => t.set(key, hostTensor('float32', [1], new Float32Array([1])))));
    const warnings: string[] = [];
    const d = await tinyDetector('maskrcnn_tiny', { weights: path }, warnings);
    await d.close();
    const w = warnings.find((m) => m.includes('not used by the model'));
    assert.ok(w, warnings.join('\n'));
    assert.ok(w.length < 1000, `the warning is ${w.length} characters`);
    assert.ok(!w.includes('\u0000'), 'no raw NUL byte');
    assert.match(w, /roi_heads\.extra\\x00x+… \(1048592 characters\)/);
  });
  add('an F64 weight of 1e300: "out of float32 range", not "Inf"', async (ctx) => {
    const t64 = new Map(tensors());
    const old = t64.get(PRED)!;
    const data = Float64Array.from(old.data as Float32Array);
    data[3] = 1e300;
    t64.set(PRED, hostTensor('float64', old.dims, data));
    const e = await refused(ctx, 'f64-huge.safetensors', writeSafetensors(t64), new RegExp(`tensor "${PRED.replace(/\./g, '\\.')}" holds 1e\\+300, out of float32 range .* at flat index 3`));
    assert.doesNotMatch(e.message, /holds Inf/);
  });
  return cases;
}
