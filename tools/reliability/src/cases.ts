/**
 * The suite's hostile-input cases: each is a name and a `run` that throws (an assertion) when
 * rcnn-node misbehaves. The same case lists feed the CI tests (`test/*.test.ts`, one `it` per
 * case) and the long script, which counts them per category for docs/reliability.md.
 */
import assert from 'node:assert/strict';
import { InputError, type RcnnError } from '@rcnn/core';
import type { Detector, PredictOutcome } from '@rcnn/runtime';
import { type TempDir, type TinyCase, isTypedError, tempDir, tinyDetector, toyDetector } from './common.js';

/** Categories of hostile-input cases (rows of the report). */
export type CaseCategory =
  | 'images'
  | 'weights'
  | 'config'
  | 'cli'
  | 'limits'
  // round 2 (issue 18)
  | 'streams'
  | 'full-disk'
  | 'aliasing'
  | 'outputs'
  | 'config-memory'
  | 'bombs'
  | 'plugins'
  | 'api';

/** Resources cases share: a temporary directory and detectors created once. Close it when done. */
export class CaseContext {
  /** Temporary directory of this run. */
  readonly tmp: TempDir;
  /** Also run the slow variants (100-megapixel JPEG, …): the long script sets it. */
  readonly full: boolean;
  private readonly detectors = new Map<string, Promise<Detector>>();

  constructor(options: { full?: boolean } = {}) {
    this.tmp = tempDir();
    this.full = options.full ?? false;
  }

  /** A tiny parity detector (one per case name, created on first use). */
  tiny(name: TinyCase): Promise<Detector> {
    return this.shared(name, () => tinyDetector(name));
  }

  /** The toy detector with masks (created on first use). */
  toy(): Promise<Detector> {
    return this.shared('toy', () => toyDetector({ threads: { intraOp: 1 } }));
  }

  /** Closes the detectors and removes the temporary directory. */
  async close(): Promise<void> {
    const all = await Promise.allSettled(this.detectors.values());
    await Promise.all(all.map((s) => (s.status === 'fulfilled' ? s.value.close() : undefined)));
    this.detectors.clear();
    this.tmp.remove();
  }

  private shared(key: string, make: () => Promise<Detector>): Promise<Detector> {
    let d = this.detectors.get(key);
    if (!d) {
      d = make();
      this.detectors.set(key, d);
    }
    return d;
  }
}

/** One hostile-input case. */
export interface ReliabilityCase {
  readonly category: CaseCategory;
  readonly name: string;
  /** Throws when rcnn-node does not give a clear typed error or a correct result. */
  run(ctx: CaseContext): Promise<void>;
}

/** Result of running one case. */
export interface CaseResult {
  readonly category: CaseCategory;
  readonly name: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly error?: string;
}

/** Runs cases one after the other (they share detectors) and collects their results. */
export async function runCases(cases: readonly ReliabilityCase[], ctx: CaseContext): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const t0 = performance.now();
    try {
      await c.run(ctx);
      results.push({ category: c.category, name: c.name, ok: true, ms: performance.now() - t0 });
    } catch (e) {
      results.push({ category: c.category, name: c.name, ok: false, ms: performance.now() - t0, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return results;
}

/** Asserts `e` is an instance of `type` (a typed rcnn-node error) whose message matches every pattern. */
export function assertTyped<T extends RcnnError>(e: unknown, type: abstract new (...args: never[]) => T, ...patterns: RegExp[]): asserts e is T {
  assert.ok(isTypedError(e), `expected a typed rcnn-node error, got ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
  assert.ok(e instanceof type, `expected ${type.name}, got ${(e as Error).name}: ${(e as Error).message}`);
  for (const p of patterns) assert.match((e as Error).message, p);
}

/** Runs `fn` and returns what it threw (failing when it did not throw). */
export async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected an error, but it succeeded');
}

/** The error of a failed outcome (failing when the outcome succeeded). */
export function outcomeError(o: PredictOutcome): Error {
  assert.ok(!o.ok, `expected ${o.source} to fail, but it gave a result`);
  return o.error;
}

/** Asserts an outcome failed with an InputError naming `source` (the file or buffer name). */
export function assertInputError(o: PredictOutcome, source: string, ...patterns: RegExp[]): void {
  const e = outcomeError(o);
  assertTyped(e, InputError, ...patterns);
  assert.equal(e.source, source, `the error names the input: ${e.message}`);
  assert.ok(e.message.includes(source), `the message names ${source}: ${e.message}`);
}
