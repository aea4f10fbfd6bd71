import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InputError } from '@rcnn/core';
import sharp from 'sharp';
import { decodeImage } from '../src/index.js';
import { encode, pattern, tempDir, toyDetector } from './helpers.js';

const LIMITS = { maxPixels: 1_000_000, maxSide: 2000 };
const dir = tempDir();

function file(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const isInputError = (re: RegExp) => (e: unknown) => e instanceof InputError && re.test(e.message);

describe('decodeImage', () => {
  const w = 37;
  const h = 23;
  const px = pattern(w, h);

  it('decodes PNG and lossless WebP exactly, and JPEG closely, to 8-bit RGB', async () => {
    for (const format of ['png', 'webp', 'jpeg'] as const) {
      const img = await decodeImage(file(`a.${format}`, await encode(px, w, h, format)), LIMITS);
      assert.equal(img.width, w);
      assert.equal(img.height, h);
      assert.equal(img.maxValue, 255);
      assert.ok(img.data instanceof Uint8Array && img.data.length === w * h * 3);
      let maxDiff = 0;
      let smoothDiff = 0;
      for (let i = 0; i < px.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(img.data[i]! - px[i]!));
        // R and G are smooth gradients that JPEG keeps; B is high-frequency noise it does not.
        if (i % 3 !== 2) smoothDiff += Math.abs(img.data[i]! - px[i]!);
      }
      if (format === 'jpeg') assert.ok(smoothDiff / ((px.length * 2) / 3) < 10, `jpeg mean diff ${smoothDiff / ((px.length * 2) / 3)}`);
      else assert.equal(maxDiff, 0, `${format} is lossless`);
      assert.match(img.source, new RegExp(`a\\.${format}$`));
    }
  });

  it('expands grayscale, drops alpha, scales 16-bit to 8-bit', async () => {
    const gray = await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 3 } }).toColourspace('b-w').png().toBuffer();
    assert.equal((await sharp(gray).metadata()).channels, 1);
    const g = await decodeImage(gray, LIMITS);
    assert.equal(g.data.length, w * h * 3);
    assert.ok(g.data[0] === g.data[1] && g.data[1] === g.data[2], 'gray becomes equal R, G, B');

    const rgba = await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 3 } }).ensureAlpha(0.3).png().toBuffer();
    assert.equal((await sharp(rgba).metadata()).channels, 4);
    const a = await decodeImage(rgba, LIMITS);
    assert.deepEqual(Array.from(a.data), Array.from(px), 'alpha is dropped, colours untouched (PIL convert("RGB"))');

    const deep = await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
    assert.equal((await sharp(deep).metadata()).depth, 'ushort');
    const d = await decodeImage(deep, LIMITS);
    assert.deepEqual(Array.from(d.data), Array.from(px));
  });

  it('applies the EXIF orientation: the pixels are those a viewer shows', async () => {
    // Stored pixels: left half red, right half blue (w x h). Orientation 6 = rotate 90° clockwise to display.
    const sw = 40;
    const sh = 20;
    const stored = new Uint8Array(sw * sh * 3);
    for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) stored.set(x < sw / 2 ? [255, 0, 0] : [0, 0, 255], (y * sw + x) * 3);
    const jpeg = await sharp(Buffer.from(stored), { raw: { width: sw, height: sh, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    const img = await decodeImage(jpeg, LIMITS);
    assert.equal(img.orientation, 6);
    assert.deepEqual([img.width, img.height], [sh, sw], 'width and height swap');
    // After a clockwise turn the stored left half (red) is on top.
    const at = (x: number, y: number): number[] => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
    assert.ok(at(10, 5)[0]! > 200 && at(10, 5)[2]! < 60, `top is red: ${at(10, 5)}`);
    assert.ok(at(10, 35)[2]! > 200 && at(10, 35)[0]! < 60, `bottom is blue: ${at(10, 35)}`);
  });

  it('refuses missing, empty, corrupt, truncated and non-image files with an InputError naming the file', async () => {
    await assert.rejects(decodeImage(join(dir, 'missing.png'), LIMITS), isInputError(/cannot read image .*missing\.png: no such file/));
    await assert.rejects(decodeImage(file('empty.jpg', new Uint8Array(0)), LIMITS), isInputError(/empty\.jpg is empty \(0 bytes\)/));
    await assert.rejects(decodeImage(file('notes.png', 'hello, I am text'), LIMITS), isInputError(/notes\.png is not a readable image/));
    const jpeg = await encode(pattern(64, 64), 64, 64, 'jpeg');
    await assert.rejects(decodeImage(file('cut.jpg', jpeg.subarray(0, jpeg.length >> 1)), LIMITS), isInputError(/cut\.jpg cannot be decoded/));
    await assert.rejects(decodeImage(dir, LIMITS), isInputError(/is a directory/));
  });

  it('enforces LIMITS.MAX_IMAGE_SIDE and MAX_IMAGE_PIXELS from the header, before decoding', async () => {
    const long = await sharp({ create: { width: 2500, height: 4, channels: 3, background: 'white' } }).png().toBuffer();
    await assert.rejects(decodeImage(file('long.png', long), LIMITS), isInputError(/long\.png: image is 2500 x 4, longer than LIMITS\.MAX_IMAGE_SIDE \(2000\)/));
    const big = await sharp({ create: { width: 1200, height: 1000, channels: 3, background: 'white' } }).png().toBuffer();
    await assert.rejects(decodeImage(big, LIMITS, 'big.png'), isInputError(/big\.png: image is 1200 x 1000 = 1200000 pixels, more than LIMITS\.MAX_IMAGE_PIXELS/));
    // The EXIF-rotated size counts: 2000 x 30 stored, shown as 30 x 2000, is within the side limit either way.
    await decodeImage(await sharp({ create: { width: 2000, height: 30, channels: 3, background: 'red' } }).jpeg().withMetadata({ orientation: 8 }).toBuffer(), LIMITS);
  });

  it('checks raw pixels', async () => {
    const ok = await decodeImage({ data: px, width: w, height: h, maxValue: 255 }, LIMITS);
    assert.equal(ok.source, '<pixels 0>');
    await assert.rejects(decodeImage({ data: px.subarray(1), width: w, height: h, maxValue: 255 }, LIMITS), isInputError(/needs 2553/));
  });
});

describe('the detector and its inputs', () => {
  it('EXIF-rotated images give the detections of their rotated pixels', async () => {
    const { detector } = await toyDetector();
    try {
      const sw = 72;
      const sh = 40;
      const stored = pattern(sw, sh, 7);
      const png = await sharp(Buffer.from(stored), { raw: { width: sw, height: sh, channels: 3 } }).png().withMetadata({ orientation: 6 }).toBuffer();
      assert.equal((await sharp(png).metadata()).orientation, 6);
      const rotated = await sharp(Buffer.from(stored), { raw: { width: sw, height: sh, channels: 3 } }).rotate(90).raw().toBuffer();
      const [fromFile, fromPixels, unrotated] = await detector.predict([
        png,
        { data: new Uint8Array(rotated), width: sh, height: sw, maxValue: 255 },
        { data: stored, width: sw, height: sh, maxValue: 255 },
      ]);
      assert.ok(fromFile.ok && fromPixels.ok && unrotated.ok);
      assert.deepEqual([fromFile.result.width, fromFile.result.height], [sh, sw]);
      const a = fromFile.result.detections!;
      const b = fromPixels.result.detections!;
      assert.ok(a.scores.length > 0);
      assert.deepEqual(Array.from(a.boxes), Array.from(b.boxes));
      assert.deepEqual(Array.from(a.scores), Array.from(b.scores));
      // …and not those of the stored (unrotated) pixels.
      assert.notDeepEqual(Array.from(a.boxes), Array.from(unrotated.result.detections!.boxes));
      for (let d = 0; d < a.scores.length; d++) {
        assert.ok(a.boxes[4 * d + 2]! <= sh + 1e-3 && a.boxes[4 * d + 3]! <= sw + 1e-3, 'boxes lie in the rotated frame');
      }
    } finally {
      await detector.close();
    }
  });

  it('a corrupt, empty or over-limit image fails alone, named in its error', async () => {
    const { detector } = await toyDetector({ set: ['LIMITS.MAX_IMAGE_SIDE=100'] });
    try {
      const good = file('good.png', await encode(pattern(40, 30), 40, 30, 'png'));
      const huge = file('huge.png', await sharp({ create: { width: 150, height: 20, channels: 3, background: 'white' } }).png().toBuffer());
      const outcomes = await detector.predict([good, file('zero.png', new Uint8Array(0)), file('junk.jpg', 'junk'), huge, good], { batchSize: 5 });
      assert.deepEqual(
        outcomes.map((o) => o.ok),
        [true, false, false, false, true],
      );
      const messages = outcomes.flatMap((o) => (o.ok ? [] : [o.error.message]));
      assert.match(messages[0]!, /zero\.png is empty/);
      assert.match(messages[1]!, /junk\.jpg is not a readable image/);
      assert.match(messages[2]!, /huge\.png: image is 150 x 20, longer than LIMITS\.MAX_IMAGE_SIDE \(100\)/);
      assert.ok(outcomes[0]!.ok && outcomes[0]!.result.timings.batchSize === 2, 'the good images still ran together');
    } finally {
      await detector.close();
    }
  });

  it('refuses a batch larger than LIMITS.MAX_BATCH', async () => {
    await assert.rejects(toyDetector({ batchSize: 4, set: ['LIMITS.MAX_BATCH=3'] }), /batch size 4 exceeds LIMITS\.MAX_BATCH \(3\)/);
  });
});
