/**
 * What every part of the suite shares: where the repository and its fixtures are, the model
 * packages to register, detector factories for the tiny parity models and the toy model, and the
 * rule that decides whether a thrown error is a bug.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register as backbone } from '@rcnn/backbone';
import { register as boxHead } from '@rcnn/box-head';
import { register as checkpoint } from '@rcnn/checkpoint';
import { type DependencyContainer, RcnnError } from '@rcnn/core';
import { register as fpn } from '@rcnn/fpn';
import { register as keypointHead } from '@rcnn/keypoint-head';
import { register as maskHead } from '@rcnn/mask-head';
import { register as rpn } from '@rcnn/rpn';
import { type Detector, type DetectorOptions, createDetector } from '@rcnn/runtime';
import { register as toy, toyConfig, type ToyConfigOptions } from '@rcnn/runtime/toy';

/** The repository root (this file is `tools/reliability/build/src/common.js`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

/** `fixtures/parity`. */
export const FIXTURES = join(REPO_ROOT, 'fixtures', 'parity');

/** The built `rcnn` binary. */
export const RCNN_BIN = join(REPO_ROOT, 'apps', 'cli', 'build', 'src', 'main.js');

/** The tiny parity cases (never R50: the suite must stay fast). */
export type TinyCase = 'maskrcnn_tiny' | 'keypointrcnn_tiny' | 'fasterrcnn_tiny_x_batch2';

/** Files of a parity case. */
export function caseFiles(name: TinyCase): { dir: string; config: string; weights: string; pth: string; image: string } {
  const dir = join(FIXTURES, name);
  return { dir, config: join(dir, 'case.json'), weights: join(dir, 'weights.safetensors'), pth: join(dir, 'weights.pth'), image: join(dir, 'image_0.png') };
}

/** Every real model package's `register`, plus @rcnn/checkpoint's weights readers (`.pth`, `.pkl`). */
export const MODEL_REGISTER: readonly ((c: DependencyContainer) => void)[] = [backbone, fpn, rpn, boxHead, maskHead, keypointHead, checkpoint];

/** A detector for a tiny parity case (its case.json and weights unless overridden). Warnings go to `warnings`. */
export async function tinyDetector(name: TinyCase, options: Partial<DetectorOptions> = {}, warnings: string[] = []): Promise<Detector> {
  const files = caseFiles(name);
  return createDetector({ config: files.config, weights: files.weights, register: MODEL_REGISTER, onWarning: (m) => warnings.push(m), ...options });
}

/** A toy detector (`@rcnn/runtime/toy`, random weights): every stage in milliseconds. */
export async function toyDetector(options: Partial<DetectorOptions> & { toy?: ToyConfigOptions } = {}, warnings: string[] = []): Promise<Detector> {
  const { toy: toyOptions, ...rest } = options;
  return createDetector({ config: toyConfig(toyOptions ?? { mask: true }), register: [toy], onWarning: (m) => warnings.push(m), ...rest });
}

/** True for the errors rcnn-node raises on purpose (every `RcnnError` subclass). Anything else thrown at the API is a bug. */
export function isTypedError(e: unknown): e is RcnnError {
  return e instanceof RcnnError;
}

/** A short label of an outcome for counting: `ok`, `E_WEIGHTS:zip-corrupt`, `E_INPUT`, or `BUG TypeError`. */
export function outcomeLabel(e: unknown): string {
  if (e === undefined) return 'ok';
  if (isTypedError(e)) {
    const reason = (e as { reason?: unknown }).reason;
    return typeof reason === 'string' ? `${e.code}:${reason}` : e.code;
  }
  return `BUG ${e instanceof Error ? e.name : typeof e}`;
}

/** A temporary directory and a way to remove it. */
export interface TempDir {
  readonly path: string;
  /** Writes `bytes` to `name` inside the directory and returns the full path. */
  file(name: string, bytes: Uint8Array | string): string;
  remove(): void;
}

/** Creates a temporary directory (`rcnn-reliability-*`). */
export function tempDir(): TempDir {
  const path = mkdtempSync(join(tmpdir(), 'rcnn-reliability-'));
  return {
    path,
    file(name, bytes) {
      const p = join(path, name);
      writeFileSync(p, bytes);
      return p;
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

/** Rejects with a clear error when `promise` takes longer than `ms`: nothing in the suite may hang. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms (hang)`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
