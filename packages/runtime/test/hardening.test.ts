/**
 * Regressions found by the reliability suite (tools/reliability): corrupt JPEG data, formats that
 * are not images, transform errors that did not name their file, and the non-finite weights policy.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  ConfigError,
  type DependencyContainer,
  type ImageTransform,
  InputError,
  SLOTS,
  WeightsError,
  hostTensor,
  registerImplementation,
  writeSafetensors,
} from '@rcnn/core';
import sharp from 'sharp';
import { createDetector, decodeImage } from '../src/index.js';
import { register, toyConfig, toyTransform, toyWeights } from '../src/toy/index.js';
import { encode, pattern, tempDir, toyDetector } from './helpers.js';

const LIMITS = { maxPixels: 1_000_000, maxSide: 2000 };
const dir = tempDir();

function file(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}


describe('image decoding hardening', () => {
  it('refuses a JPEG whose entropy-coded data is corrupt instead of decoding damaged pixels', async () => {
    const jpeg = await encode(pattern(96, 64), 96, 64, 'jpeg');
    const sos = jpeg.indexOf(Buffer.from([0xff, 0xda]));
    const bad = Buffer.from(jpeg);
    // An unexpected marker inside the scan: libjpeg warns "premature end of data segment" and pads with garbage.
    bad[sos + 200] = 0xff;
    bad[sos + 201] = 0x12;
    // The old decode (failOn 'error') accepted this file and returned garbage pixels.
    await sharp(bad, { failOn: 'error' }).raw().toBuffer();
    await assert.rejects(decodeImage(file('damaged.jpg', bad), LIMITS), (e: unknown) => e instanceof InputError && /damaged\.jpg cannot be decoded: .*(Corrupt JPEG data|Warning treated as error)/.test(e.message));
  });

  it('refuses SVG (which sharp would render) even under an image extension', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="40" height="30" fill="red"/></svg>';
    assert.equal((await sharp(Buffer.from(svg)).metadata()).format, 'svg', 'sharp reads it');
    await assert.rejects(decodeImage(file('drawing.png', svg), LIMITS), (e: unknown) => e instanceof InputError && /drawing\.png is a SVG file, not an accepted image format/.test(e.message));
  });
});

describe('transform errors name their image', () => {
  it('an image the transform refuses fails alone, with its file in the message', async () => {
    const refusing: ImageTransform = {
      prepare(images, config) {
        images.forEach((im, i) => {
          if (im.width > 100) throw new InputError(`image ${i}: too wide for this test`, { source: `image ${i}` });
        });
        return toyTransform.prepare(images, config);
      },
    };
    const addRefusing = (c: DependencyContainer): void =>
      registerImplementation(c, SLOTS.imageTransform, { name: 'Test.refusing', provider: 'test', description: 'refuses wide images', value: refusing });
    const { detector } = await toyDetector({ register: [register, addRefusing], set: ['INPUT.TRANSFORM=Test.refusing'] });
    try {
      const ok = file('narrow.png', await encode(pattern(60, 40), 60, 40, 'png'));
      const wide = file('wide.png', await encode(pattern(160, 40), 160, 40, 'png'));
      const outcomes = await detector.predict([ok, wide, ok], { batchSize: 3 });
      assert.deepEqual(outcomes.map((o) => o.ok), [true, false, true]);
      const failed = outcomes[1]!;
      assert.ok(!failed.ok && failed.error instanceof InputError);
      assert.match(failed.error.message, /wide\.png: image 0: too wide/);
      assert.equal(failed.error.source, wide);
    } finally {
      await detector.close();
    }
  });
});

describe('non-finite weights policy', () => {
  const tensors = toyWeights();
  const key = 'toy.box.fc.weight';
  assert.ok(tensors.has(key), `the toy model takes ${key}`);
  const poisoned = new Map(tensors);
  const data = (tensors.get(key)!.data as Float32Array).slice();
  data[3] = Number.NaN;
  poisoned.set(key, hostTensor('float32', tensors.get(key)!.dims, data));
  const path = file('nan.safetensors', writeSafetensors(poisoned));
  const base = { config: toyConfig({ mask: true }), register: [register], weights: path, threads: { intraOp: 1 } } as const;

  it('refuses NaN weights by default, naming file, tensor and index', async () => {
    await assert.rejects(
      createDetector({ ...base, onWarning: () => undefined }),
      (e: unknown) => e instanceof WeightsError && e.key === key && /nan\.safetensors: tensor "toy\.box\.fc\.weight" holds NaN at flat index 3/.test(e.message),
    );
  });

  it('warns and runs with nonFinite: "warn"', async () => {
    const warnings: string[] = [];
    const detector = await createDetector({ ...base, nonFinite: 'warn', onWarning: (m) => warnings.push(m) });
    try {
      assert.ok(warnings.some((w) => w.includes('"toy.box.fc.weight" holds NaN')), warnings.join('\n'));
      const [o] = await detector.predict([{ data: pattern(50, 40), width: 50, height: 40, maxValue: 255 }]);
      assert.ok(o.ok, o.ok ? '' : o.error.message);
    } finally {
      await detector.close();
    }
  });

  it('refuses an unknown policy', async () => {
    await assert.rejects(createDetector({ ...base, nonFinite: 'maybe' as 'warn' }), (e: unknown) => e instanceof ConfigError && /option nonFinite must be one of "error", "warn", "ignore", got "maybe"/.test(e.message));
  });
});
