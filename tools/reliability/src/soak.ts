/**
 * Soak: memory over many consecutive predictions, and over many detectors created and closed.
 * RSS is read after forced garbage collections (`node --expose-gc`, or the V8 flag set at run
 * time) and compared as medians of a few samples, because worker heaps and allocator arenas make
 * single readings jump by a few MB.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Detector } from '@rcnn/runtime';
import { at } from '@rcnn/core';
import { type TinyCase, caseFiles, tinyDetector, toyDetector } from './common.js';
import { encode, pattern } from './craft/images.js';

/** A garbage collection: `globalThis.gc` under --expose-gc, else the flag is set at run time. */
export function forceGc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
    return;
  }
  setFlagsFromString('--expose-gc');
  const fromContext = runInNewContext('gc') as () => void;
  fromContext();
  fromContext();
}

/** Process RSS in MB after a forced GC and a turn of the event loop (so released workers are gone). */
export async function rssAfterGc(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 20));
  forceGc();
  return process.memoryUsage().rss / 1e6;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Which model a soak runs: the toy model (fast) or a tiny parity model (real heads). */
export type SoakModel = 'toy' | TinyCase;

async function makeDetector(model: SoakModel, replicas: number): Promise<Detector> {
  const devices = Array.from({ length: replicas }, () => 'cpu');
  return model === 'toy' ? toyDetector({ devices }) : tinyDetector(model, { devices });
}

/** Inputs for a soak: the model's fixture photo (tiny models) or a few synthetic PNGs of different sizes (toy). */
async function soakInputs(model: SoakModel): Promise<Uint8Array[]> {
  if (model !== 'toy') return [new Uint8Array(await import('node:fs').then((fs) => fs.readFileSync(caseFiles(model).image)))];
  return Promise.all(([[96, 64], [64, 96], [80, 80], [120, 40]] as const).map(([w, h], i) => encode(pattern(w, h, i + 1), 'png')));
}

/** Options of {@link runSoak}. */
export interface SoakOptions {
  readonly predictions?: number;
  /**
   * Least warm-up predictions before the baseline (default 200). Warm-up goes on, 50 at a time, until
   * two RSS readings in a row differ by less than 1% (at most `maxWarmup`): allocator arenas and
   * worker heaps fill up over the first hundreds of predictions, then stay.
   */
  readonly warmup?: number;
  /** Most warm-up predictions (default 2000). */
  readonly maxWarmup?: number;
  /** Predictions between RSS samples (default 50). */
  readonly sampleEvery?: number;
  readonly model?: SoakModel;
  readonly replicas?: number;
}

/** What a soak measured. */
export interface SoakReport {
  readonly model: SoakModel;
  readonly predictions: number;
  /** Warm-up predictions actually run (until RSS settled). */
  readonly warmup: number;
  /** RSS samples after GC, MB. */
  readonly samplesMb: readonly number[];
  /** Median of the first three samples (right after warm-up). */
  readonly baselineMb: number;
  /** Median of the last three samples. */
  readonly finalMb: number;
  readonly growthPct: number;
  /** Main-thread JS heap growth over the run, MB. */
  readonly heapGrowthMb: number;
  readonly msPerPrediction: number;
}

/** `predictions` consecutive predictions after `warmup`, sampling RSS. */
export async function runSoak(options: SoakOptions = {}): Promise<SoakReport> {
  const model = options.model ?? 'toy';
  const predictions = options.predictions ?? 1000;
  const warmup = options.warmup ?? 200;
  const every = options.sampleEvery ?? 50;
  const inputs = await soakInputs(model);
  const detector = await makeDetector(model, options.replicas ?? 1);
  const samples: number[] = [];
  let heap0: number;
  let t0: number;
  let warmed = 0;
  try {
    let previous = Number.POSITIVE_INFINITY;
    for (;;) {
      const chunk = warmed < warmup ? warmup - warmed : 50;
      for (let i = 0; i < chunk; i++) await detector.predictOne(inputs[(warmed + i) % inputs.length]!);
      warmed += chunk;
      const now = await rssAfterGc();
      if (Math.abs(now - previous) < previous * 0.01 || warmed >= (options.maxWarmup ?? 2000)) break;
      previous = now;
    }
    samples.push(await rssAfterGc());
    heap0 = process.memoryUsage().heapUsed;
    t0 = performance.now();
    for (let i = 1; i <= predictions; i++) {
      const o = await detector.predictOne(inputs[i % inputs.length]!);
      if (o.detections === undefined) throw new Error('a detection model gave no detections object');
      if (i % every === 0) samples.push(await rssAfterGc());
    }
  } finally {
    await detector.close();
  }
  const ms = performance.now() - t0;
  const baselineMb = median(samples.slice(0, 3));
  const finalMb = median(samples.slice(-3));
  forceGc();
  return {
    model,
    predictions,
    warmup: warmed,
    samplesMb: samples,
    baselineMb,
    finalMb,
    growthPct: ((finalMb - baselineMb) / baselineMb) * 100,
    heapGrowthMb: (process.memoryUsage().heapUsed - heap0) / 1e6,
    msPerPrediction: ms / predictions,
  };
}

/** Options of {@link runChurn}. */
export interface ChurnOptions {
  /** Detectors created, used once and closed after warm-up (default 50). */
  readonly cycles?: number;
  /**
   * Least warm-up cycles (default: enough for 50 sessions, i.e. 50 / replicas). Warm-up then goes
   * on, 5 cycles at a time, until the last three readings lie within 2 MB (flat for 10 cycles), at
   * most `maxWarmup` (default 100) cycles.
   */
  readonly minWarmup?: number;
  readonly maxWarmup?: number;
  readonly model?: SoakModel;
  readonly replicas?: number;
}

/** What the create/close churn measured. */
export interface ChurnReport {
  readonly model: SoakModel;
  readonly cycles: number;
  /** Warm-up cycles run before the baseline. */
  readonly warmupCycles: number;
  /** RSS after warm-up cycles, MB. */
  readonly baselineMb: number;
  /** RSS after the last cycle (median of the last three samples), MB. */
  readonly finalMb: number;
  readonly growthMb: number;
  /** RSS one live detector adds (three held at once, divided by three), MB. */
  readonly detectorMb: number;
  /** Allowed growth: one live detector's footprint (a leak of 1/cycles of a detector per cycle reaches it). */
  readonly toleranceMb: number;
  readonly samplesMb: readonly number[];
  /** Active handles (process.getActiveResourcesInfo) before and after. */
  readonly handlesBefore: number;
  readonly handlesAfter: number;
  readonly msPerCycle: number;
}

/**
 * Creates, uses once and closes `cycles` detectors; RSS must come back to the baseline within one
 * live detector's footprint, measured in the same run (three live at once).
 */
export async function runChurn(options: ChurnOptions = {}): Promise<ChurnReport> {
  const model = options.model ?? 'toy';
  const cycles = options.cycles ?? 50;
  const replicas = options.replicas ?? 2;
  const input = at(await soakInputs(model), 0, 'soak inputs');
  const cycle = async (): Promise<void> => {
    const d = await makeDetector(model, replicas);
    try {
      await d.predictOne(input);
    } finally {
      await d.close();
    }
  };
  // Warm-up: RSS steps up once by 15-20 MB after 25-40 sessions (worker threads with onnxruntime)
  // have come and gone, whatever the model, and then stays flat for good (measured over 150
  // detectors; glibc's thread stack cache is not the cause). The baseline is taken after that.
  for (let i = 0; i < 5; i++) await cycle();
  const beforeLive = await rssAfterGc();
  const live = await Promise.all([0, 1, 2].map(() => makeDetector(model, replicas)));
  for (const d of live) await d.predictOne(input);
  const liveMb = await rssAfterGc();
  for (const d of live) await d.close();
  const detectorMb = Math.max(0, (liveMb - beforeLive) / 3);
  let warmupCycles = 5;
  const readings: number[] = [];
  for (;;) {
    for (let i = 0; i < 5; i++) await cycle();
    warmupCycles += 5;
    readings.push(await rssAfterGc());
    const last = readings.slice(-3);
    const flat = last.length === 3 && Math.max(...last) - Math.min(...last) < 2;
    if ((warmupCycles >= (options.minWarmup ?? Math.ceil(50 / replicas)) && flat) || warmupCycles >= (options.maxWarmup ?? 100)) break;
  }
  const baselineMb = median(readings.slice(-3));
  const handlesBefore = process.getActiveResourcesInfo().length;
  const samples: number[] = [];
  const t0 = performance.now();
  for (let i = 1; i <= cycles; i++) {
    await cycle();
    if (i % 5 === 0 || i === cycles) samples.push(await rssAfterGc());
  }
  const msPerCycle = (performance.now() - t0) / cycles;
  const finalMb = median(samples.slice(-3));
  return {
    model,
    cycles,
    warmupCycles,
    baselineMb,
    finalMb,
    growthMb: finalMb - baselineMb,
    detectorMb,
    toleranceMb: detectorMb,
    samplesMb: samples,
    handlesBefore,
    handlesAfter: process.getActiveResourcesInfo().length,
    msPerCycle,
  };
}
