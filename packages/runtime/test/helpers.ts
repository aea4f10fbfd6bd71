/** Shared test helpers: toy detectors, synthetic images, temporary directories. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import sharp from 'sharp';
import { type Detector, type DetectorOptions, createDetector } from '../src/index.js';
import { type ToyConfigOptions, register, toyConfig } from '../src/toy/index.js';

/** A toy detector (quiet: warnings are collected, not printed). */
export async function toyDetector(options: Partial<DetectorOptions> & { toy?: ToyConfigOptions } = {}): Promise<{ detector: Detector; warnings: string[] }> {
  const warnings: string[] = [];
  const detector = await createDetector({
    config: toyConfig(options.toy ?? { mask: true }),
    register: [register],
    onWarning: (m) => warnings.push(m),
    threads: { intraOp: 1 },
    ...options,
  });
  return { detector, warnings };
}


/** A temporary directory removed after the test file. */
export function tempDir(prefix = 'rcnn-runtime-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A deterministic RGB test pattern (gradients and a bright square) of the given size. */
export function pattern(width: number, height: number, seed = 1): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const inSquare = x > width / 4 && x < width / 2 && y > height / 3 && y < (2 * height) / 3;
      data[o] = inSquare ? 250 : (x * 255 * seed) / width;
      data[o + 1] = inSquare ? 240 : (y * 255) / height;
      data[o + 2] = ((x + y) * 97 * seed) % 256;
    }
  }
  return data;
}

/** Encodes raw RGB pixels with sharp. */
export function encode(data: Uint8Array, width: number, height: number, format: 'png' | 'jpeg' | 'webp'): Promise<Buffer> {
  const s = sharp(Buffer.from(data), { raw: { width, height, channels: 3 } });
  return (format === 'png' ? s.png() : format === 'jpeg' ? s.jpeg({ quality: 95 }) : s.webp({ lossless: true })).toBuffer();
}
