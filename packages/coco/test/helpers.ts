/** Test helpers: the repository's fixtures. */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** fixtures/eval of the repository (tests run from packages/coco/build/test). */
export const EVAL_FIXTURES = fileURLToPath(new URL('../../../../fixtures/eval/', import.meta.url));

/** The eval fixture cases (directories with gt.json, results.json, stats.json). */
export function evalCases(): string[] {
  return readdirSync(EVAL_FIXTURES, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

/** Parses a JSON file. */
export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}
