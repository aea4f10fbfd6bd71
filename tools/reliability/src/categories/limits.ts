/**
 * The input bounds a service relies on are config keys with documented defaults:
 * LIMITS.MAX_IMAGE_PIXELS, LIMITS.MAX_IMAGE_SIDE, LIMITS.MAX_BATCH, TEST.DETECTIONS_PER_IM (and the
 * model input size, TEST.SCALE / TEST.MAX_SIZE). Each is enforced, bounded itself, and documented
 * in docs/reliability.md with the value the code has.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, InputError, LIMITS_SECTION, TEST_SECTION } from '@rcnn/core';
import { decodeImage } from '@rcnn/runtime';
import { type CaseContext, type ReliabilityCase, assertInputError, assertTyped, thrown } from '../cases.js';
import { REPO_ROOT, caseFiles, tinyDetector, toyDetector } from '../common.js';
import { encode, gradient, pattern } from '../craft/images.js';

/** The bounded keys and where their defaults are documented. */
export const DOCUMENTED_LIMITS = [
  ['LIMITS.MAX_IMAGE_PIXELS', LIMITS_SECTION.fields.MAX_IMAGE_PIXELS],
  ['LIMITS.MAX_IMAGE_SIDE', LIMITS_SECTION.fields.MAX_IMAGE_SIDE],
  ['LIMITS.MAX_BATCH', LIMITS_SECTION.fields.MAX_BATCH],
  ['LIMITS.MAX_IMAGE_BYTES', LIMITS_SECTION.fields.MAX_IMAGE_BYTES],
  ['LIMITS.READ_TIMEOUT_MS', LIMITS_SECTION.fields.READ_TIMEOUT_MS],
  ['LIMITS.MAX_MODEL_MEMORY_MB', LIMITS_SECTION.fields.MAX_MODEL_MEMORY_MB],
  ['TEST.DETECTIONS_PER_IM', TEST_SECTION.fields.DETECTIONS_PER_IM],
  ['TEST.SCALE', TEST_SECTION.fields.SCALE],
  ['TEST.MAX_SIZE', TEST_SECTION.fields.MAX_SIZE],
] as const;

async function createFails(options: Parameters<typeof toyDetector>[0]): Promise<unknown> {
  return thrown(async () => (await toyDetector(options)).close());
}

/** Every limits case. */
export function limitsCases(): ReliabilityCase[] {
  const cases: ReliabilityCase[] = [];
  const add = (name: string, run: (ctx: CaseContext) => Promise<void>): void => {
    cases.push({ category: 'limits', name, run });
  };

  add('LIMITS.MAX_IMAGE_PIXELS (--set) is enforced from the header', async (ctx) => {
    const d = await toyDetector({ set: ['LIMITS.MAX_IMAGE_PIXELS=10000'] });
    try {
      const big = ctx.tmp.file('px-big.png', await encode(gradient(200, 51), 'png'));
      const fits = ctx.tmp.file('px-fits.png', await encode(gradient(100, 100), 'png'));
      const [a, b] = await d.predict([big, fits]);
      assertInputError(a, big, /image is 200 x 51 = 10200 pixels, more than LIMITS\.MAX_IMAGE_PIXELS \(10000\)/);
      assert.match((a.ok ? undefined : (a.error as InputError).hint) ?? '', /raise LIMITS\.MAX_IMAGE_PIXELS/);
      assert.ok(b.ok, '100 x 100 = 10000 pixels is within the limit');
    } finally {
      await d.close();
    }
  });
  add('LIMITS.MAX_IMAGE_SIDE (--set) is enforced from the header', async (ctx) => {
    const d = await toyDetector({ set: ['LIMITS.MAX_IMAGE_SIDE=200'] });
    try {
      const long = ctx.tmp.file('side-long.png', await encode(gradient(201, 10), 'png'));
      const fits = ctx.tmp.file('side-fits.png', await encode(gradient(10, 200), 'png'));
      const [a, b] = await d.predict([long, fits]);
      assertInputError(a, long, /image is 201 x 10, longer than LIMITS\.MAX_IMAGE_SIDE \(200\)/);
      assert.ok(b.ok);
    } finally {
      await d.close();
    }
  });
  add('raw pixels are held to the same limits', async () => {
    const e = await thrown(() => decodeImage({ data: new Uint8Array(300 * 3), width: 300, height: 1, maxValue: 255 }, { maxPixels: 1000, maxSide: 250 }));
    assertTyped(e, InputError, /longer than LIMITS\.MAX_IMAGE_SIDE \(250\)/);
  });
  add('LIMITS.MAX_BATCH (default 32): a larger batch is refused, at creation and per call', async () => {
    assertTyped(await createFails({ batchSize: 33 }), ConfigError, /batch size 33 exceeds LIMITS\.MAX_BATCH \(32\)/);
    const d = await toyDetector();
    try {
      assertTyped(await thrown(() => d.predict([], { batchSize: 33 })), ConfigError, /batch size 33 exceeds LIMITS\.MAX_BATCH \(32\)/);
      assertTyped(await thrown(() => d.predict([], { batchSize: 0 })), ConfigError, /option batchSize must be an integer >= 1, got 0/);
    } finally {
      await d.close();
    }
  });
  add('a batch of LIMITS.MAX_BATCH images runs as one forward pass; raising the limit allows more', async () => {
    const px = pattern(40, 30, 1);
    const input = { data: px.data, width: px.width, height: px.height, maxValue: 255 };
    const d = await toyDetector({ set: ['LIMITS.MAX_BATCH=40'], batchSize: 40 });
    try {
      const outcomes = await d.predict(Array.from({ length: 40 }, () => input));
      assert.ok(outcomes.every((o) => o.ok && o.result.timings.batchSize === 40));
    } finally {
      await d.close();
    }
  });
  for (const [assignment, key, pattern_] of [
    ['LIMITS.MAX_BATCH=0', 'LIMITS.MAX_BATCH', /must be an integer in \[1, 1024\]/],
    ['LIMITS.MAX_BATCH=1025', 'LIMITS.MAX_BATCH', /must be an integer in \[1, 1024\]/],
    ['LIMITS.MAX_IMAGE_PIXELS=0', 'LIMITS.MAX_IMAGE_PIXELS', /must be an integer in \[1, 1000000000\]/],
    ['LIMITS.MAX_IMAGE_SIDE=-1', 'LIMITS.MAX_IMAGE_SIDE', /must be an integer in \[1, 1000000\]/],
    ['LIMITS.MAX_IMAGE_BYTES=0', 'LIMITS.MAX_IMAGE_BYTES', /must be an integer in \[1, 2147483647\]/],
    ['LIMITS.READ_TIMEOUT_MS=0', 'LIMITS.READ_TIMEOUT_MS', /must be an integer in \[1, 3600000\]/],
    ['LIMITS.MAX_MODEL_MEMORY_MB=0', 'LIMITS.MAX_MODEL_MEMORY_MB', /must be an integer in \[1, 1048576\]/],
    ['TEST.DETECTIONS_PER_IM=0', 'TEST.DETECTIONS_PER_IM', /must be an integer in \[1, 10000\]/],
    ['TEST.DETECTIONS_PER_IM=10001', 'TEST.DETECTIONS_PER_IM', /must be an integer in \[1, 10000\]/],
    ['TEST.MAX_SIZE=10001', 'TEST.MAX_SIZE', /must be an integer in \[1, 10000\]/],
  ] as const) {
    add(`${assignment} is refused`, async () => {
      const e = await createFails({ set: [assignment] });
      assertTyped(e, ConfigError, pattern_);
      assert.equal(e.key, key);
    });
  }
  add('TEST.DETECTIONS_PER_IM=3 caps Mask R-CNN (tiny) at its 3 best detections', async (ctx) => {
    const image = caseFiles('maskrcnn_tiny').image;
    const all = await (await ctx.tiny('maskrcnn_tiny')).predictOne(image);
    assert.ok(all.detections!.scores.length > 3, `the fixture gives ${all.detections!.scores.length} detections by default`);
    const d = await tinyDetector('maskrcnn_tiny', { set: ['TEST.DETECTIONS_PER_IM=3'] });
    try {
      const top = await d.predictOne(image);
      assert.equal(top.detections!.scores.length, 3);
      assert.deepEqual(Array.from(top.detections!.scores), Array.from(all.detections!.scores.subarray(0, 3)), 'the 3 best, in order');
    } finally {
      await d.close();
    }
  });
  add('the documented defaults (docs/reliability.md) are the code\'s', async () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'reliability.md'), 'utf8');
    for (const [key, field] of DOCUMENTED_LIMITS) {
      const bound = 'max' in field && field.max !== undefined ? String(field.max) : 'none';
      const row = `| \`${key}\` | ${field.default} | ${bound} |`;
      assert.ok(doc.includes(row), `docs/reliability.md has the row "${row}"`);
    }
  });
  return cases;
}
