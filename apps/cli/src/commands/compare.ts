/**
 * `rcnn compare <dump.safetensors> <caseDir>`: judges a tensor dump (`rcnn predict --dump
 * [--dump-intermediates]`, fixture names) against a parity case's reference, with the tolerances of
 * `npm run parity` (@rcnn/testing's compareCase).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createContainer, decodeEntry, readSafetensorsFile } from '@rcnn/core';
import { compareCase, loadParityCase } from '@rcnn/testing';
import { type Command, optFlag, optStrings } from '../command.js';
import { EXIT, UsageError } from '../errors.js';
import { type CliIO, say } from '../io.js';
import { loadPlugins } from '../plugins.js';

const HELP = `Usage: rcnn compare <dump.safetensors> <caseDir> [--plugin <module>]...

Compares every reference tensor of a parity case directory (case.json, reference.safetensors; see
fixtures/parity/README.md) with the tensor of the same name in a dump written by
  rcnn predict --config <caseDir>/case.json --weights <caseDir>/weights.safetensors \\
    --dump dump.safetensors --dump-intermediates <caseDir>/image_*.png
and prints each one's error against its tolerance. Exit status 1 if any tensor fails or is missing.

      --plugin <module>  package or ES module exporting register(container), repeatable (also
                         RCNN_PLUGINS=a,b): the package that maps the case's head type
  -v, --verbose          list the plugins loaded
  -h, --help             this help`;

async function run(values: Parameters<Command['run']>[0], positionals: readonly string[], io: CliIO): Promise<number> {
  if (positionals.length !== 2) throw new UsageError(`compare takes a dump file and a case directory, got ${positionals.length} argument(s)`, 'rcnn compare dump.safetensors fixtures/parity/maskrcnn_tiny');
  const [dump, caseDir] = positionals as [string, string];
  if (!existsSync(join(caseDir, 'case.json'))) throw new UsageError(`${caseDir} is not a parity case directory (no case.json)`, 'pass the directory that holds case.json and reference.safetensors');
  const container = createContainer();
  const plugins = await loadPlugins(container, optStrings(values, 'plugin'));
  if (optFlag(values, 'verbose')) say(io, `plugins: ${plugins.registered.join(', ') || 'none'}`);
  const file = readSafetensorsFile(dump);
  const produced = new Map([...file.entries].map(([name, entry]) => [name, decodeEntry(entry, dump)]));
  const c = loadParityCase(caseDir, { container });
  const verdicts = compareCase(c, produced);
  const pass = verdicts.every((v) => v.pass);
  say(io, `${pass ? 'PASS' : 'FAIL'} ${c.name} (${verdicts.length} checks)`);
  for (const v of verdicts) say(io, `  ${v.pass ? 'ok  ' : 'FAIL'} ${v.name.padEnd(42)} ${v.detail}`);
  return pass ? EXIT.ok : EXIT.failure;
}

/** The `compare` command. */
export const compare: Command = {
  name: 'compare',
  summary: 'compare a tensor dump with a parity case reference (the tolerances of npm run parity)',
  help: HELP,
  options: { plugin: { type: 'string', multiple: true }, verbose: { type: 'boolean', short: 'v' }, help: { type: 'boolean', short: 'h' } },
  positionals: true,
  run,
};
