#!/usr/bin/env node
/**
 * `npm run parity -- <caseDir>... [--plugin <module>]... [--threads N]`: runs rcnn-node on each
 * parity case directory (the built-in packages plus every `--plugin` / `RCNN_PLUGINS` module) and
 * prints every reference tensor's error against its tolerance. Exit status 1 if any case fails or
 * errors; an error is printed as `error:` + `hint:` (never a bare stack trace).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RcnnError } from '@rcnn/core';
import { importPluginRegister, pluginSpecifiers } from '@rcnn/runtime';
import { type RegisterFunction, runCase } from '@rcnn/testing';
import { BUILT_IN_PACKAGES } from './built-ins.js';

const USAGE = `usage: npm run parity -- <caseDir>... [--plugin <package|module.js>]... [--threads N]

Runs rcnn-node on parity case directories (case.json, weights.safetensors, image_*.png,
reference.safetensors; see fixtures/parity/README.md) and compares every reference tensor.
--plugin (repeatable; also RCNN_PLUGINS=a,b) registers a package exporting register(container),
e.g. the plugin that maps a new case head type (docs/plugins.md).`;

/** error + hint of anything thrown (typed errors carry their own hint). */
function describe(e: unknown): { error: string; hint: string } {
  const hint = e instanceof RcnnError ? e.hint : undefined;
  const message = e instanceof Error ? e.message : String(e);
  return {
    error: message,
    hint: hint ?? 'unexpected failure: rerun with --verbose for the stack; a head type no package maps needs --plugin <package> (docs/plugins.md)',
  };
}

interface Args {
  readonly dirs: string[];
  readonly plugins: string[];
  readonly threads: number;
  readonly verbose: boolean;
}

function parseArgs(argv: readonly string[]): Args | undefined {
  const dirs: string[] = [];
  const plugins: string[] = [];
  let threads = 1;
  let verbose = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return undefined;
    if (a === '--plugin' || a === '--threads') {
      const value = argv[++i];
      if (value === undefined) throw new RangeError(`${a} needs a value`);
      if (a === '--plugin') plugins.push(value);
      else threads = Number(value);
    } else if (a === '--verbose' || a === '-v') verbose = true;
    else if (a.startsWith('-')) throw new RangeError(`unknown option ${a}`);
    else dirs.push(a);
  }
  return { dirs, plugins, threads, verbose };
}

async function main(argv: readonly string[]): Promise<number> {
  let args: Args | undefined;
  try {
    args = parseArgs(argv);
  } catch (e) {
    console.error(`parity: error: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (!args || args.dirs.length === 0) {
    console.log(USAGE);
    return args ? 2 : 0;
  }
  let register: RegisterFunction[];
  try {
    register = [...BUILT_IN_PACKAGES, ...(await Promise.all(pluginSpecifiers(args.plugins).map(importPluginRegister)))];
  } catch (e) {
    const d = describe(e);
    console.error(`parity: error: ${d.error}\n  hint: ${d.hint}`);
    return 1;
  }
  let failed = 0;
  let cases = 0;
  for (const dir of args.dirs) {
    const path = resolve(dir);
    if (existsSync(path) && !statSync(path).isDirectory()) {
      console.log(`skipping ${dir}: not a directory`);
      continue;
    }
    cases++;
    if (!existsSync(join(path, 'case.json'))) {
      console.error(`parity: ${dir} is not a case directory (no case.json)`);
      failed++;
      continue;
    }
    try {
      const outcome = await runCase(path, { register, threads: args.threads });
      console.log(`\n${outcome.pass ? 'PASS' : 'FAIL'} ${outcome.case.name} (${outcome.verdicts.length} checks, ${(outcome.ms / 1000).toFixed(1)} s)`);
      for (const v of outcome.verdicts) console.log(`  ${v.pass ? 'ok  ' : 'FAIL'} ${v.name.padEnd(42)} ${v.detail}`);
      if (!outcome.pass) failed++;
    } catch (e) {
      const d = describe(e);
      console.log(`\nERROR ${dir}\n  error: ${d.error}\n  hint: ${d.hint}`);
      if (args.verbose && e instanceof Error) console.error(e.stack);
      failed++;
    }
  }
  console.log(`\n${cases - failed} of ${cases} case(s) pass`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
