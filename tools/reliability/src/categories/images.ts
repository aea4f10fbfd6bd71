/**
 * Hostile and unusual images: empty, not an image, truncated, corrupt, tiny, extremely long, 100
 * megapixels, every colour layout, every EXIF orientation. Each must give an InputError naming the
 * input, alone (its neighbours in the batch still succeed), or a correct result.
 */
import assert from 'node:assert/strict';
import { EXTRA_KEYS, InputError, loadConfig } from '@rcnn/core';
import { type ImageInput, type ImageResult, type PredictOutcome, decodeImage, readKeypoints, readMasks } from '@rcnn/runtime';
import sharp from 'sharp';
import { type CaseContext, type ReliabilityCase, assertInputError, assertTyped, thrown } from '../cases.js';
import { caseFiles } from '../common.js';
import { type Pixels, displayForStored, encode, gradient, pattern, pixelDiff, storedForDisplay } from '../craft/images.js';

const DEFAULT_LIMITS = (() => {
  const { LIMITS } = loadConfig();
  return { maxPixels: LIMITS.MAX_IMAGE_PIXELS, maxSide: LIMITS.MAX_IMAGE_SIDE };
})();

const goodFiles = new WeakMap<CaseContext, Promise<string>>();

/** A small valid PNG in the context's directory (the neighbours of every hostile input). */
function goodImage(ctx: CaseContext): Promise<string> {
  let p = goodFiles.get(ctx);
  if (!p) {
    p = encode(pattern(64, 48, 3), 'png').then((b) => ctx.tmp.file('good.png', b));
    goodFiles.set(ctx, p);
  }
  return p;
}

/**
 * Runs `input` between two good images through the toy detector in one batch of three, and
 * checks that only it failed, with an InputError naming `source` and matching `patterns`.
 */
async function failsAlone(ctx: CaseContext, input: ImageInput, source: string, ...patterns: RegExp[]): Promise<void> {
  const good = await goodImage(ctx);
  const detector = await ctx.toy();
  const outcomes = await detector.predict([good, input, good], { batchSize: 3 });
  assert.equal(outcomes.length, 3);
  assert.ok(outcomes[0]!.ok && outcomes[2]!.ok, 'the good neighbours still succeed');
  assertInputError(outcomes[1]!, source, ...patterns);
}

/** Decodes with the default limits and checks the pixels are `expected` within `tolerance` (max abs). */
async function decodesTo(input: Uint8Array | string, expected: Pixels, tolerance = 0, meanTolerance = tolerance): Promise<void> {
  const img = await decodeImage(input, DEFAULT_LIMITS, 'image');
  assert.deepEqual([img.width, img.height], [expected.width, expected.height], 'size');
  assert.equal(img.maxValue, 255);
  const d = pixelDiff(img.data as Uint8Array, expected.data);
  assert.ok(d.max <= tolerance && d.mean <= meanTolerance, `pixels differ: max ${d.max} (allowed ${tolerance}), mean ${d.mean.toFixed(3)} (allowed ${meanTolerance})`);
}

function cut(bytes: Uint8Array, fraction: number): Uint8Array {
  return bytes.subarray(0, Math.floor(bytes.length * fraction));
}

/** Asserts two results carry the same detections (boxes, scores, labels and every extra). */
export function assertSameDetections(a: ImageResult, b: ImageResult, what: string): void {
  const da = a.detections!;
  const db = b.detections!;
  assert.ok(da && db, 'detection results');
  assert.deepEqual(Array.from(da.labels), Array.from(db.labels), `${what}: labels`);
  assert.deepEqual(Array.from(da.scores), Array.from(db.scores), `${what}: scores`);
  assert.deepEqual(Array.from(da.boxes), Array.from(db.boxes), `${what}: boxes`);
  assert.deepEqual([...da.extras.keys()].sort(), [...db.extras.keys()].sort(), `${what}: extras`);
  // The heads' results through their typed readers (what users see, not the classes' internals).
  const [ma, mb] = [readMasks(da), readMasks(db)];
  assert.equal(ma === undefined, mb === undefined, `${what}: masks on one side only`);
  if (ma && mb) {
    assert.deepStrictEqual(ma.maskProbsTensor(), mb.maskProbsTensor(), `${what}: mask probabilities`);
    assert.deepStrictEqual(ma.binaryTensor(), mb.binaryTensor(), `${what}: masks`);
  }
  assert.deepStrictEqual(readKeypoints(da), readKeypoints(db), `${what}: keypoints`);
  const typed: ReadonlySet<string> = new Set(Object.values(EXTRA_KEYS));
  for (const [k, v] of da.extras) if (!typed.has(k)) assert.deepStrictEqual(v, db.extras.get(k), `${what}: extra ${k}`);
}

function okResult(o: PredictOutcome): ImageResult {
  assert.ok(o.ok, o.ok ? '' : `${o.source} failed: ${o.error.message}`);
  return o.result;
}

/** Every image case. `ctx.full` adds the slow ones (a 100-megapixel JPEG). */
export function imageCases(options: { full?: boolean } = {}): ReliabilityCase[] {
  const cases: ReliabilityCase[] = [];
  const add = (name: string, run: (ctx: CaseContext) => Promise<void>): void => {
    cases.push({ category: 'images', name, run });
  };

  // --- not images at all ---
  add('zero-byte file named .jpg', async (ctx) => {
    const f = ctx.tmp.file('empty.jpg', new Uint8Array(0));
    await failsAlone(ctx, f, f, /is empty \(0 bytes\)/);
  });
  add('text file named .png', async (ctx) => {
    const f = ctx.tmp.file('notes.png', 'these are my notes, not a picture\n');
    await failsAlone(ctx, f, f, /is not a readable image/);
  });
  add('random bytes named .jpg', async (ctx) => {
    const bytes = new Uint8Array(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) & 0xff;
    const f = ctx.tmp.file('noise.jpg', bytes);
    await failsAlone(ctx, f, f, /is not a readable image/);
  });
  add('HTML page named .jpg', async (ctx) => {
    const f = ctx.tmp.file('page.jpg', '<!doctype html><html><body><img src="x.jpg"></body></html>');
    await failsAlone(ctx, f, f, /is not a readable image/);
  });
  add('JPEG magic bytes followed by nothing', async (ctx) => {
    const f = ctx.tmp.file('magic.jpg', new Uint8Array([0xff, 0xd8, 0xff, 0xe0]));
    await failsAlone(ctx, f, f, /(not a readable image|cannot be decoded)/);
  });
  add('SVG document named .png (sharp would render it): refused', async (ctx) => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="48"><image width="64" height="48" xlink:href="file:///etc/passwd"/></svg>';
    const f = ctx.tmp.file('vector.png', svg);
    await failsAlone(ctx, f, f, /is a SVG file, not an accepted image format/);
  });
  add('PDF named .jpg', async (ctx) => {
    const f = ctx.tmp.file('doc.jpg', '%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
    await failsAlone(ctx, f, f, /(not a readable image|not an accepted image format)/);
  });
  add('missing file', async (ctx) => {
    const f = `${ctx.tmp.path}/does-not-exist.png`;
    await failsAlone(ctx, f, f, /no such file/);
  });
  add('a directory given as an image', async (ctx) => {
    await failsAlone(ctx, ctx.tmp.path, ctx.tmp.path, /is a directory/);
  });
  add('encoded buffer with a name: the error names it', async (ctx) => {
    await failsAlone(ctx, { data: new Uint8Array([1, 2, 3, 4, 5]), name: 'upload-17.jpg' }, 'upload-17.jpg', /not a readable image/);
  });

  // --- truncated and corrupt ---
  for (const format of ['png', 'jpeg'] as const) {
    for (const fraction of [0.1, 0.25, 0.5, 0.75, 0.9, 0.99]) {
      add(`${format.toUpperCase()} truncated to ${Math.round(fraction * 100)}%`, async (ctx) => {
        const bytes = await encode(pattern(160, 120, 5), format);
        const f = ctx.tmp.file(`cut-${Math.round(fraction * 100)}.${format}`, cut(bytes, fraction));
        await failsAlone(ctx, f, f, /(cannot be decoded|not a readable image)/);
      });
    }
  }
  for (const format of ['webp', 'gif', 'tiff'] as const) {
    add(`${format.toUpperCase()} truncated to 50%`, async (ctx) => {
      const bytes = await encode(pattern(160, 120, 6), format);
      const f = ctx.tmp.file(`cut.${format}`, cut(bytes, 0.5));
      await failsAlone(ctx, f, f, /(cannot be decoded|not a readable image)/);
    });
  }
  add('progressive JPEG truncated to 70%', async (ctx) => {
    const bytes = await encode(pattern(160, 120, 7), 'jpeg', { progressive: true });
    const f = ctx.tmp.file('prog.jpg', cut(bytes, 0.7));
    await failsAlone(ctx, f, f, /cannot be decoded/);
  });
  add('JPEG without its end-of-image marker', async (ctx) => {
    const bytes = await encode(pattern(160, 120, 8), 'jpeg');
    const f = ctx.tmp.file('no-eoi.jpg', bytes.subarray(0, bytes.length - 2));
    await failsAlone(ctx, f, f, /cannot be decoded/);
  });
  add('PNG without its IEND chunk (every pixel present): exact pixels', async () => {
    const px = pattern(160, 120, 9);
    const bytes = await encode(px, 'png');
    await decodesTo(bytes.subarray(0, bytes.length - 12), px);
  });
  add('PNG with a damaged IDAT byte (CRC error)', async (ctx) => {
    const bytes = Buffer.from(await encode(pattern(160, 120, 10), 'png'));
    bytes[bytes.indexOf('IDAT') + 40]! ^= 0x55;
    const f = ctx.tmp.file('crc.png', bytes);
    await failsAlone(ctx, f, f, /cannot be decoded/);
  });
  for (const offset of [40, 200, 600]) {
    add(`JPEG with a corrupt scan (unexpected marker ${offset} bytes in)`, async (ctx) => {
      const bytes = Buffer.from(await encode(pattern(160, 120, 11), 'jpeg'));
      const sos = bytes.indexOf(Buffer.from([0xff, 0xda]));
      bytes[sos + offset] = 0xff;
      bytes[sos + offset + 1] = 0x12;
      const f = ctx.tmp.file(`scan-${offset}.jpg`, bytes);
      // libvips reports the libjpeg warning, or (depending on which thread saw it first) that a warning was treated as an error.
      await failsAlone(ctx, f, f, /cannot be decoded: .*(Corrupt JPEG data|Warning treated as error)/);
    });
  }
  add('JPEG with trailing garbage after the image: exact pixels of the clean file', async () => {
    const bytes = await encode(gradient(96, 64), 'jpeg');
    const clean = await decodeImage(bytes, DEFAULT_LIMITS);
    await decodesTo(Buffer.concat([bytes, Buffer.from('trailing garbage, e.g. a concatenated upload')]), { data: clean.data as Uint8Array, width: 96, height: 64 });
  });
  add('a corrupt image in a batch of 4 fails alone; the others run together', async (ctx) => {
    const good = await goodImage(ctx);
    const bad = ctx.tmp.file('half.png', cut(await encode(pattern(64, 64, 12), 'png'), 0.5));
    const detector = await ctx.toy();
    const outcomes = await detector.predict([good, bad, good, good], { batchSize: 4 });
    assert.deepEqual(outcomes.map((o) => o.ok), [true, false, true, true]);
    assertInputError(outcomes[1]!, bad, /cannot be decoded/);
    assert.equal(okResult(outcomes[0]!).timings.batchSize, 3, 'the three good images ran as one batch');
  });

  // --- sizes ---
  add('1x1 PNG through Mask R-CNN (tiny): a result with boxes inside the image', async (ctx) => {
    const detector = await ctx.tiny('maskrcnn_tiny');
    const f = ctx.tmp.file('dot.png', await encode({ data: new Uint8Array([200, 30, 90]), width: 1, height: 1 }, 'png'));
    const r = okResult((await detector.predict([f]))[0]!);
    assert.deepEqual([r.width, r.height], [1, 1]);
    assertBoxesInside(r);
  });
  add('1x10000 PNG through the toy model: a result', async (ctx) => {
    const detector = await ctx.toy();
    const f = ctx.tmp.file('thread.png', await encode(gradient(1, 10000), 'png'));
    const r = okResult((await detector.predict([f]))[0]!);
    assert.deepEqual([r.width, r.height], [1, 10000]);
    assertBoxesInside(r);
  });
  for (const [w, h] of [
    [1, 10000],
    [10000, 1],
    [3000, 2],
  ] as const) {
    add(`${w}x${h} PNG through Mask R-CNN (tiny): refused naming the file (a side resizes to 0 px)`, async (ctx) => {
      const detector = await ctx.tiny('maskrcnn_tiny');
      const f = ctx.tmp.file(`long-${w}x${h}.png`, await encode(gradient(w, h), 'png'));
      const good = caseFiles('maskrcnn_tiny').image;
      const outcomes = await detector.predict([good, f, good], { batchSize: 3 });
      assert.ok(outcomes[0]!.ok && outcomes[2]!.ok, 'the good neighbours still succeed');
      assertInputError(outcomes[1]!, f, /aspect ratio is too extreme/);
    });
  }
  const huge = (format: 'png' | 'jpeg') => async (ctx: CaseContext) => {
    // 10000 x 10000 = 1e8 pixels > LIMITS.MAX_IMAGE_PIXELS (64e6): decoding it would take 300 MB of RGB.
    const s = sharp({ create: { width: 10000, height: 10000, channels: 3, background: { r: 90, g: 120, b: 200 } } });
    const bytes = await (format === 'png' ? s.png({ compressionLevel: 1 }) : s.jpeg({ quality: 50 })).toBuffer();
    const f = ctx.tmp.file(`huge.${format}`, bytes);
    const detector = await ctx.toy();
    await detector.predictOne(await goodImage(ctx)); // warm: the measured RSS is this image's alone
    const before = process.memoryUsage().rss;
    const [o] = await detector.predict([f]);
    const grew = process.memoryUsage().rss - before;
    assertInputError(o, f, /image is 10000 x 10000 = 100000000 pixels, more than LIMITS\.MAX_IMAGE_PIXELS \(64000000\)/);
    assert.ok(grew < 64e6, `RSS grew ${(grew / 1e6).toFixed(1)} MB (decoding would need 300 MB)`);
  };
  add('100-megapixel PNG: refused by the header check, RSS bounded', huge('png'));
  if (options.full) add('100-megapixel JPEG: refused by the header check, RSS bounded', huge('jpeg'));

  // --- colour layouts ---
  const px = gradient(96, 64);
  const raw = () => sharp(Buffer.from(px.data), { raw: { width: px.width, height: px.height, channels: 3 } });
  const gray = (): Pixels => {
    const data = new Uint8Array(px.width * px.height * 3);
    for (let i = 0; i < px.width * px.height; i++) data.fill(px.data[i * 3 + 1]!, i * 3, i * 3 + 3);
    return { data, width: px.width, height: px.height };
  };
  const grayBytes = (): Uint8Array => {
    const g = new Uint8Array(px.width * px.height);
    for (let i = 0; i < g.length; i++) g[i] = px.data[i * 3 + 1]!;
    return g;
  };
  const grayImage = () => sharp(Buffer.from(grayBytes()), { raw: { width: px.width, height: px.height, channels: 1 } });
  add('8-bit grayscale PNG: R = G = B = the gray value', async () => {
    await decodesTo(await grayImage().png().toBuffer(), gray());
  });
  add('gray + alpha PNG: alpha dropped', async () => {
    await decodesTo(await grayImage().ensureAlpha(0.25).png().toBuffer(), gray());
  });
  add('RGBA PNG: alpha dropped, colours untouched (PIL convert("RGB"))', async () => {
    await decodesTo(await raw().ensureAlpha(0.1).png().toBuffer(), px);
  });
  add('16-bit RGB PNG: scaled to the 8-bit values', async () => {
    const deep = await raw().toColourspace('rgb16').png().toBuffer();
    assert.equal((await sharp(deep).metadata()).depth, 'ushort');
    await decodesTo(deep, px);
  });
  add('16-bit grayscale PNG', async () => {
    const deep = await grayImage().toColourspace('grey16').png().toBuffer();
    assert.equal((await sharp(deep).metadata()).depth, 'ushort');
    await decodesTo(deep, gray());
  });
  add('palette PNG', async () => {
    const few = pattern(64, 48, 0);
    for (let i = 0; i < few.data.length; i++) few.data[i]! &= 0xc0; // at most 64 colours: the palette is exact
    const bytes = await sharp(Buffer.from(few.data), { raw: { width: 64, height: 48, channels: 3 } }).png({ palette: true, dither: 0 }).toBuffer();
    assert.equal((await sharp(bytes).metadata()).isPalette, true);
    await decodesTo(bytes, few);
  });
  add('CMYK JPEG: converted to sRGB close to the original colours', async () => {
    const cmyk = await raw().toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    // A colour-managed round trip through a CMYK profile: most colours come back within a few levels.
    await decodesTo(cmyk, px, 96, 16);
  });
  add('lossless WebP, TIFF and GIF decode to their pixels', async () => {
    await decodesTo(await encode(px, 'webp'), px);
    await decodesTo(await sharp(Buffer.from(px.data), { raw: { width: px.width, height: px.height, channels: 3 } }).tiff({ compression: 'lzw' }).toBuffer(), px);
    const few = pattern(64, 48, 0);
    for (let i = 0; i < few.data.length; i++) few.data[i]! &= 0xc0;
    await decodesTo(await encode(few, 'gif'), few);
  });
  add('AVIF decodes close to its pixels', async () => {
    await decodesTo(await encode(px, 'avif'), px, 40, 3);
  });
  add('animated GIF: the first frame', async () => {
    const a = pattern(32, 24, 1);
    const b = pattern(32, 24, 2);
    for (const f of [a, b]) for (let i = 0; i < f.data.length; i++) f.data[i]! &= 0xc0;
    const both = new Uint8Array(a.data.length * 2);
    both.set(a.data);
    both.set(b.data, a.data.length);
    const gif = await sharp(Buffer.from(both), { raw: { width: 32, height: 48, channels: 3, pageHeight: 24 } }).gif({ loop: 0 }).toBuffer();
    assert.equal((await sharp(gif).metadata()).pages, 2);
    await decodesTo(gif, a);
  });

  // --- EXIF orientation ---
  const stored = pattern(72, 40, 4);
  for (let o = 1; o <= 8; o++) {
    add(`EXIF orientation ${o} (PNG): the decoded pixels are the displayed image`, async () => {
      await decodesTo(await encode(stored, 'png', { orientation: o }), displayForStored(stored, o));
    });
    add(`EXIF orientation ${o} (JPEG): the decoded pixels are the stored decode, turned`, async () => {
      const plain = await decodeImage(await encode(stored, 'jpeg'), DEFAULT_LIMITS);
      const img = await decodeImage(await encode(stored, 'jpeg', { orientation: o }), DEFAULT_LIMITS);
      assert.equal(img.orientation, o);
      await decodesTo(await encode(stored, 'jpeg', { orientation: o }), displayForStored({ data: plain.data as Uint8Array, width: plain.width, height: plain.height }, o));
    });
    add(`EXIF orientation ${o}: Mask R-CNN (tiny) detections equal those of the displayed pixels`, async (ctx) => {
      const detector = await ctx.tiny('maskrcnn_tiny');
      const display = await fixturePixels();
      const file = ctx.tmp.file(`exif-${o}.png`, await encode(storedForDisplay(display, o), 'png', { orientation: o }));
      const [fromFile, fromPixels] = await detector.predict([file, { data: display.data, width: display.width, height: display.height, maxValue: 255 }]);
      const a = okResult(fromFile);
      const b = okResult(fromPixels);
      assert.deepEqual([a.width, a.height], [display.width, display.height], 'the result is in the displayed frame');
      assert.ok(a.detections!.scores.length > 0, 'the fixture image has detections');
      assertSameDetections(a, b, `orientation ${o}`);
      assertBoxesInside(a);
    });
  }

  // --- raw pixels ---
  add('raw pixels of the wrong length', async (ctx) => {
    await failsAlone(ctx, { data: new Uint8Array(10 * 10 * 3 - 1), width: 10, height: 10, maxValue: 255 }, '<pixels 1>', /needs 300/);
  });
  add('raw pixels with a fractional size', async (ctx) => {
    await failsAlone(ctx, { data: new Uint8Array(300), width: 10.5, height: 10, maxValue: 255 }, '<pixels 1>', /must be integers/);
  });
  add('raw pixels with maxValue 0', async (ctx) => {
    await failsAlone(ctx, { data: new Uint8Array(300), width: 10, height: 10, maxValue: 0 }, '<pixels 1>', /maxValue must be positive/);
  });
  add('raw float pixels holding NaN: refused by the transform, naming the input', async (ctx) => {
    const detector = await ctx.tiny('maskrcnn_tiny');
    const data = new Float32Array(40 * 30 * 3).fill(0.5);
    data[17] = Number.NaN;
    const [o] = await detector.predict([{ data, width: 40, height: 30, maxValue: 1 }]);
    assertInputError(o, '<pixels 0>', /must be finite/);
  });
  add('raw pixels with a zero side', async () => {
    assertTyped(await thrown(() => decodeImage({ data: new Uint8Array(0), width: 0, height: 5, maxValue: 255 }, DEFAULT_LIMITS)), InputError, /has no pixels/);
  });
  return cases;
}

let fixture: Promise<Pixels> | undefined;

/** The maskrcnn_tiny fixture photo as pixels. */
function fixturePixels(): Promise<Pixels> {
  fixture ??= sharp(caseFiles('maskrcnn_tiny').image)
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true })
    .then(({ data, info }) => ({ data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height }));
  return fixture;
}

/** Every detection box lies inside the (original) image. */
export function assertBoxesInside(r: ImageResult): void {
  const b = r.detections!.boxes;
  for (let d = 0; d < b.length / 4; d++) {
    const [x1, y1, x2, y2] = [b[4 * d]!, b[4 * d + 1]!, b[4 * d + 2]!, b[4 * d + 3]!];
    assert.ok(Number.isFinite(x1) && Number.isFinite(y2), `box ${d} is finite`);
    assert.ok(x1 >= -1e-3 && y1 >= -1e-3 && x2 <= r.width + 1e-3 && y2 <= r.height + 1e-3 && x1 <= x2 && y1 <= y2, `box ${d} [${x1}, ${y1}, ${x2}, ${y2}] lies in ${r.width} x ${r.height}`);
  }
}
