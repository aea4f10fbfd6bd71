#!/usr/bin/env node
/**
 * `npm run parity -- <caseDir>...`: runs rcnn-node on each parity case directory and prints every
 * reference tensor's error against its tolerance. Exit status 1 if any tensor fails.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runCase } from './run-case.js';

async function main(argv: readonly string[]): Promise<number> {
  const dirs = argv.filter((a) => !a.startsWith('-'));
  if (argv.includes('--help') || dirs.length === 0) {
    console.log('usage: npm run parity -- <caseDir>... [--threads N]\n\nRuns rcnn-node on parity case directories (case.json, weights.safetensors, image_*.png,\nreference.safetensors; see fixtures/parity/README.md) and compares every reference tensor.');
    return dirs.length === 0 && !argv.includes('--help') ? 2 : 0;
  }
  const threadsAt = argv.indexOf('--threads');
  const threads = threadsAt >= 0 ? Number(argv[threadsAt + 1]) : 1;
  let failed = 0;
  for (const dir of dirs) {
    if (threadsAt >= 0 && dir === argv[threadsAt + 1]) continue;
    const path = resolve(dir);
    if (existsSync(path) && !statSync(path).isDirectory()) {
      console.log(`skipping ${dir}: not a directory`);
      continue;
    }
    if (!existsSync(join(path, 'case.json'))) {
      console.error(`parity: ${dir} is not a case directory (no case.json)`);
      failed++;
      continue;
    }
    const outcome = await runCase(path, { threads });
    console.log(`\n${outcome.pass ? 'PASS' : 'FAIL'} ${outcome.case.name} (${outcome.verdicts.length} checks, ${(outcome.ms / 1000).toFixed(1)} s)`);
    for (const v of outcome.verdicts) console.log(`  ${v.pass ? 'ok  ' : 'FAIL'} ${v.name.padEnd(42)} ${v.detail}`);
    if (!outcome.pass) failed++;
  }
  const cases = dirs.filter((d) => !existsSync(resolve(d)) || statSync(resolve(d)).isDirectory()).length;
  console.log(`\n${cases - failed} of ${cases} case(s) pass`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
