/**
 * Runs rcnn-node on a parity case directory exactly as a user would (the runtime's detector with
 * the case's config and weights, its images in one batch) and judges every reference tensor. For
 * plugin authors: `runCase(dir, { register: [...builtIns, register] })` checks a new head type
 * against a fixture made by the vendored generator (docs/plugins.md).
 *
 * The runtime is loaded when a case runs (`@rcnn/runtime` is an optional peer dependency), so
 * this kit stays usable by the packages the runtime itself is tested with.
 */
import { join } from 'node:path';
import { type DependencyContainer, type HostTensor, createContainer } from '@rcnn/core';
import { type CaseVerdict, compareCase } from './compare-case.js';
import { type ParityCase, loadParityCase } from './fixtures.js';

/** A package's `register(container)`. */
export type RegisterFunction = (container: DependencyContainer) => void;

/** Options of {@link runCase} / {@link produceCaseTensors}. */
export interface RunCaseOptions {
  /** Registrations of every package the case needs (built-in stages and plugins). */
  readonly register: readonly RegisterFunction[];
  /** Intra-op threads (default 1). */
  readonly threads?: number;
}

/** Outcome of one case. */
export interface CaseOutcome {
  readonly case: ParityCase;
  readonly verdicts: readonly CaseVerdict[];
  readonly pass: boolean;
  /** Wall time of building + running the model, ms. */
  readonly ms: number;
}

/** What this kit uses of `@rcnn/runtime`. */
interface RuntimeModule {
  createDetector(options: Record<string, unknown>): Promise<{
    predict(paths: readonly string[], options: Record<string, unknown>): Promise<readonly ({ ok: true; result: unknown } | { ok: false; error: Error })[]>;
    close(): Promise<void>;
  }>;
  dumpTensors(results: readonly unknown[]): Map<string, HostTensor>;
}

async function runtime(): Promise<RuntimeModule> {
  // A computed specifier: the runtime's types are not needed to build this kit (no build cycle).
  const specifier = '@rcnn/runtime';
  return (await import(specifier)) as RuntimeModule;
}

/**
 * The fixture-named tensors of a case: the taps from a build with intermediates, the final `det.*`
 * outputs from the build users run (no intermediates), whose graph passes differ where a tap keeps
 * a full tensor alive (the mask head's every-class logits).
 */
export async function produceCaseTensors(c: ParityCase, options: RunCaseOptions): Promise<Map<string, HostTensor>> {
  const withTaps = await produceWith(c, true, options);
  const production = await produceWith(c, false, options);
  for (const [name, tensor] of production) if (name.startsWith('det.')) withTaps.set(name, tensor);
  return withTaps;
}

async function produceWith(c: ParityCase, intermediates: boolean, options: RunCaseOptions): Promise<Map<string, HostTensor>> {
  const { createDetector, dumpTensors } = await runtime();
  const container = createContainer();
  for (const register of options.register) register(container);
  const detector = await createDetector({
    config: join(c.dir, 'case.json'),
    weights: join(c.dir, 'weights.safetensors'),
    container,
    devices: 'cpu',
    intermediates,
    batchSize: c.imagePaths.length,
    threads: { intraOp: options.threads ?? 1, interOp: 1 },
  });
  try {
    const outcomes = await detector.predict(c.imagePaths, { keepOutputs: true, batchSize: c.imagePaths.length });
    const results = outcomes.map((o, i) => {
      if (!o.ok) throw new Error(`${c.imagePaths[i]}: ${o.error.message}`);
      return o.result;
    });
    return dumpTensors(results);
  } finally {
    await detector.close();
  }
}

/** Runs and judges one case directory with the packages of `options.register`. */
export async function runCase(dir: string, options: RunCaseOptions): Promise<CaseOutcome> {
  const container = createContainer();
  for (const register of options.register) register(container);
  const c = loadParityCase(dir, { container });
  const start = performance.now();
  const produced = await produceCaseTensors(c, options);
  const ms = performance.now() - start;
  const verdicts = compareCase(c, produced);
  return { case: c, verdicts, pass: verdicts.every((v) => v.pass), ms };
}
