/**
 * Runs a fuzz target with fast-check (fixed seed, bounded runs and time per input) and counts the
 * outcomes: accepted inputs, each typed error code/reason, and bugs — any other thrown error, a
 * broken invariant, or an input that takes longer than the per-run timeout (a hang).
 */
import fc from 'fast-check';
import { outcomeLabel } from '../common.js';
import { type FuzzTarget, InvariantError } from './targets.js';

/** Options of {@link runFuzz}. */
export interface FuzzOptions {
  /** Generated inputs (default 300). */
  readonly runs?: number;
  /** fast-check seed (default 42): the same seed gives the same inputs. */
  readonly seed?: number;
  /** Longest one input may take before it counts as a hang (default 10 s). */
  readonly timeoutMs?: number;
}

/** What a fuzz run found. */
export interface FuzzReport {
  readonly target: string;
  readonly description: string;
  readonly seed: number;
  /** Inputs tried (up to and including the first bug). */
  readonly runs: number;
  /** Outcome counts: `ok`, `E_WEIGHTS:zip-checksum`, `E_CONFIG`, … (bugs excluded). */
  readonly outcomes: Readonly<Record<string, number>>;
  readonly ms: number;
  /** The first bug, shrunk to a minimal input, if any. */
  readonly bug: { readonly error: string; readonly input: string; readonly path: string | null } | undefined;
}

/** A bug found by the fuzzer: the error and the input that caused it. */
class FuzzBug extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? `${original.name}: ${original.message}` : String(original));
    this.name = 'FuzzBug';
  }
}

/** Fuzzes `target`; never throws for a bug, reports it. */
export async function runFuzz(target: FuzzTarget<never>, options: FuzzOptions = {}): Promise<FuzzReport> {
  const seed = options.seed ?? 42;
  const outcomes: Record<string, number> = {};
  let counting = true;
  const t0 = performance.now();
  const property = fc.asyncProperty(target.arbitrary, async (input) => {
    let label = 'ok';
    try {
      await target.run(input);
    } catch (e) {
      label = e instanceof InvariantError ? 'BUG InvariantError' : outcomeLabel(e);
      if (label.startsWith('BUG')) {
        counting = false; // shrinking re-runs inputs: count the first pass only
        throw new FuzzBug(e);
      }
    }
    if (counting) outcomes[label] = (outcomes[label] ?? 0) + 1;
  });
  const details = await fc.check(property, { numRuns: options.runs ?? 300, seed, timeout: options.timeoutMs ?? 10_000, endOnFailure: false });
  const ms = performance.now() - t0;
  let bug: FuzzReport['bug'];
  if (details.failed) {
    const error = details.errorInstance instanceof FuzzBug ? details.errorInstance.original : details.errorInstance;
    const message = error instanceof Error ? `${error.name}: ${error.message}${error.stack ? `\n${error.stack.split('\n').slice(1, 6).join('\n')}` : ''}` : `${String(error ?? 'interrupted / timed out')}`;
    bug = { error: message, input: details.counterexample ? target.show(details.counterexample[0]) : '(none)', path: details.counterexamplePath };
  }
  return { target: target.name, description: target.description, seed, runs: details.numRuns, outcomes, ms, bug };
}

/** One line per outcome count, most frequent first. */
export function formatOutcomes(outcomes: Readonly<Record<string, number>>): string {
  return Object.entries(outcomes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}
