/**
 * Loading parity case directories (`case.json`, `weights.safetensors`, `image_<i>.png`,
 * `reference.safetensors`; format in fixtures/parity/README.md).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ConfigOverrides,
  type HostTensor,
  type DependencyContainer,
  type RgbImage,
  WeightStore,
  caseConfigLayer,
  caseMappers,
  decodeEntry,
  readSafetensorsFile,
} from '@rcnn/core';
import sharp from 'sharp';

/** A loaded parity case. */
export interface ParityCase {
  readonly dir: string;
  readonly name: string;
  /** The parsed case.json. */
  readonly json: Record<string, unknown> & { model: Record<string, unknown> };
  /**
   * Config layer derived from case.json, mapped on first read with the case mappers of the
   * container given to {@link loadParityCase} (a head type no registered package maps fails then,
   * naming the type; spreading a ParityCase reads it too).
   */
  readonly configLayer: ConfigOverrides;
  /** Fresh weight store over the case's weights.safetensors. */
  weights(): WeightStore;
  /** Reference tensors by name (decoded lazily, cached). */
  reference(name: string): HostTensor;
  /** Names of all reference tensors. */
  referenceNames(): string[];
  /** Whether the reference has a tensor of this name. */
  hasReference(name: string): boolean;
  /** Input images in order (`image_0.png`, …), decoded to 8-bit RGB. */
  images(): Promise<RgbImage[]>;
  /** Paths of the input images. */
  readonly imagePaths: readonly string[];
}

/** Walks up from `start` to the directory containing `fixtures/parity` (the repo root). */
export function findRepoRoot(start: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'fixtures', 'parity'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no fixtures/parity directory above ${start}`);
    dir = up;
  }
}

/** Names of the public cases committed under fixtures/parity. */
export const PUBLIC_CASES = ['maskrcnn_tiny', 'keypointrcnn_tiny', 'fasterrcnn_tiny_x_batch2', 'fasterrcnn_tiny_c4'] as const;

/** Directory of a public case in this repo. */
export function publicCaseDir(name: string): string {
  return join(findRepoRoot(), 'fixtures', 'parity', name);
}

/** Decodes an image file to interleaved 8-bit RGB (alpha dropped, gray expanded). */
export async function decodeRgb(path: string): Promise<RgbImage> {
  const { data, info } = await sharp(path).removeAlpha().toColorspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${path}: decoded to ${info.channels} channels, expected 3`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height, maxValue: 255 };
}

/** Options of {@link loadParityCase}. */
export interface LoadParityCaseOptions {
  /** The container with the packages registered whose implementations map the case's head types (`caseTypes` / `fromCase`). */
  readonly container?: DependencyContainer;
  /** A box head type nothing maps: fail (default) or leave the box head keys at their defaults (tests that build no box head). */
  readonly unmappedHeads?: 'error' | 'omit';
}

/** Loads a case directory; its config layer is mapped lazily (see {@link ParityCase.configLayer}). */
export function loadParityCase(dir: string, options: LoadParityCaseOptions = {}): ParityCase {
  const json = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as ParityCase['json'];
  const ref = readSafetensorsFile(join(dir, 'reference.safetensors'));
  const cache = new Map<string, HostTensor>();
  const imagePaths = readdirSync(dir)
    .filter((f) => /^image_\d+\.png$/.test(f))
    .sort((a, b) => Number(a.slice(6, -4)) - Number(b.slice(6, -4)))
    .map((f) => join(dir, f));
  let layer: ConfigOverrides | undefined;
  return {
    dir,
    name: String(json.name ?? dir),
    json,
    get configLayer(): ConfigOverrides {
      layer ??= caseConfigLayer(json, join(dir, 'case.json'), {
        mappers: options.container ? caseMappers(options.container) : [],
        unmappedHeads: options.unmappedHeads ?? 'error',
      });
      return layer;
    },
    weights: () => WeightStore.fromSafetensors(join(dir, 'weights.safetensors')),
    reference(name) {
      const hit = cache.get(name);
      if (hit) return hit;
      const entry = ref.entries.get(name);
      if (!entry) throw new Error(`${dir}: reference has no tensor "${name}"`);
      const t = decodeEntry(entry);
      cache.set(name, t);
      return t;
    },
    referenceNames: () => [...ref.entries.keys()],
    hasReference: (name) => ref.entries.has(name),
    images: () => Promise.all(imagePaths.map(decodeRgb)),
    imagePaths,
  };
}
