/** Running the built `rcnn` binary in tests, and the toy model's files. */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from '@rcnn/core';
import { toyConfig, type ToyConfigOptions, toyWeights } from '@rcnn/runtime/toy';
import sharp from 'sharp';

/** The built binary. */
export const RCNN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.js');

/** Output of one `rcnn` run. */
export interface RunResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `rcnn args…` in `cwd` as a child process. */
export function rcnn(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RCNN, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: 60_000 }, (error, stdout, stderr) => {
      const status = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

/** A temporary directory removed after the test file. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rcnn-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes the toy model's config layer as JSON and returns its path. */
export function writeToyConfig(dir: string, options: ToyConfigOptions = { mask: true }, name = 'toy.json'): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(toyConfig(options)));
  return path;
}

/**
 * Writes the weights the toy model draws at random (seed `seed`) as a safetensors file, by
 * building it once with a store that records every tensor taken.
 */
export function writeToyWeights(dir: string, options: ToyConfigOptions = { mask: true }, seed = 1, name = 'toy.safetensors'): string {
  const path = join(dir, name);
  writeFileSync(path, writeSafetensors(toyWeights(options, seed)));
  return path;
}

/** Writes a small PNG test photo (gradients and a bright square). */
export async function writePhoto(dir: string, name: string, width = 64, height = 48): Promise<string> {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      const square = x > width / 4 && x < width / 2 && y > height / 3;
      data[o] = square ? 250 : (x * 255) / width;
      data[o + 1] = square ? 240 : (y * 255) / height;
      data[o + 2] = (x * 7 + y * 13) % 256;
    }
  }
  const path = join(dir, name);
  await sharp(data, { raw: { width, height, channels: 3 } }).toFile(path);
  return path;
}

/** The last two lines of stderr: the error and its hint. */
export function errorLines(r: RunResult): [string, string] {
  const lines = r.stderr.trimEnd().split('\n');
  return [lines[lines.length - 2] ?? '', lines[lines.length - 1] ?? ''];
}
