/** Shared test helpers: toy detectors, synthetic images, temporary directories. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { type HostTensor, type RandomInit, WeightStore, buildModel, createContainer, hostTensor, loadConfig } from '@rcnn/core';
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

/** The toy model's weights (seed 1) as tensors, recorded by building it once. */
export function toyTensors(): Map<string, HostTensor> {
  const container = createContainer();
  register(container);
  const taken = new Map<string, HostTensor>();
  const base = WeightStore.random(1);
  const recording = new Proxy(base, {
    get(target, prop) {
      if (prop === 'take') {
        return (key: string, shape: readonly number[], init?: RandomInit) => {
          const data = target.take(key, shape, init);
          taken.set(key, hostTensor('float32', shape, data));
          return data;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  buildModel(loadConfig({ layers: [toyConfig({ mask: true })] }), container, recording);
  return taken;
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
