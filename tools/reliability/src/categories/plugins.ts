/**
 * Faults of `--plugin` modules are named with the plugin and the phase (import, `register()`, a
 * head's `build()`), never "internal error … please report it" blamed on rcnn; load failures
 * exit with 2. Also: a JSON file or a directory given as `--plugin`.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type CaseContext, type ReliabilityCase } from '../cases.js';
import { REPO_ROOT, caseFiles } from '../common.js';
import { assertCliError, rcnnInProcess } from './cli.js';

const MASK = caseFiles('maskrcnn_tiny');
const MODEL = ['--config', MASK.config, '--weights', MASK.weights];
const CORE_URL = pathToFileURL(join(REPO_ROOT, 'packages', 'core', 'build', 'src', 'index.js')).href;

/** Writes a plugin module into its own directory under the context's temporary directory. */
function plugin(ctx: CaseContext, name: string, source: string): string {
  const dir = join(ctx.tmp.path, `plugin-${name}`);
  mkdirSync(dir, { recursive: true });
  return ctx.tmp.file(`plugin-${name}/${name}.mjs`, source);
}

/** Every plugin-fault case. */
export function pluginCases(): ReliabilityCase[] {
  const cases: ReliabilityCase[] = [];
  const add = (name: string, run: (ctx: CaseContext) => Promise<void>): void => {
    cases.push({ category: 'plugins', name, run });
  };

  add('a plugin that throws at import: named, phase "import", exit 2', async (ctx) => {
    const p = plugin(ctx, 'throws-at-import', "throw new TypeError('cannot load my model zoo');\nexport function register() {}\n");
    assertCliError(await rcnnInProcess(['predict', ...MODEL, '--plugin', p, MASK.image]), 2, new RegExp(`plugin ${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} failed in import: cannot load my model zoo`), {
      only: true,
    });
  });
  add('a plugin whose register() throws: named, phase "register()", exit 2', async (ctx) => {
    const p = plugin(ctx, 'throws-in-register', "export function register(container) { container.nope.register(); }\n");
    assertCliError(await rcnnInProcess(['predict', ...MODEL, '--plugin', p, MASK.image]), 2, /plugin .*throws-in-register\.mjs failed in register\(\): .*Cannot read properties of undefined/, { only: true });
  });
  add('a plugin head whose build() throws: named, phase "build()", exit 1, not an internal error', async (ctx) => {
    const p = plugin(
      ctx,
      'broken-head',
      `import { SLOTS, registerImplementation } from ${JSON.stringify(CORE_URL)};
export function register(container) {
  registerImplementation(container, SLOTS.roiBoxHead, {
    name: 'Broken.box_head',
    provider: 'broken-head',
    description: 'a head with a bug',
    value: { weightPrefixes: ['broken.'], build(ctx, features) { return features.nope.channels; } },
  });
}
`,
    );
    const r = await rcnnInProcess(['predict', ...MODEL, '--plugin', p, '--set', 'FAST_RCNN.ROI_BOX_HEAD=Broken.box_head', MASK.image]);
    assertCliError(r, 1, /plugin .*broken-head\.mjs failed in build\(\): Cannot read properties of undefined/, { hint: /bug in the plugin, not in rcnn/, only: true });
    const e = await rcnnInProcess(['export', ...MODEL, '--plugin', p, '--set', 'FAST_RCNN.ROI_BOX_HEAD=Broken.box_head', '-o', join(ctx.tmp.path, 'broken.onnx')]);
    assertCliError(e, 1, /plugin .*broken-head\.mjs failed in build\(\)/, { only: true });
  });
  add('a JSON file as --plugin: "not a JavaScript module", exit 2', async (ctx) => {
    const f = ctx.tmp.file('plugin.json', '{"register": true}');
    assertCliError(await rcnnInProcess(['predict', ...MODEL, '--plugin', f, MASK.image]), 2, /plugin .*plugin\.json failed in import: it is not a JavaScript module \(\.json/, { only: true });
  });
  add('a directory as --plugin: "is a directory", exit 2', async (ctx) => {
    const dir = join(ctx.tmp.path, 'plugin-dir');
    mkdirSync(dir, { recursive: true });
    const r = await rcnnInProcess(['predict', ...MODEL, '--plugin', dir, MASK.image]);
    assertCliError(r, 2, /plugin .*plugin-dir failed in import: it is a directory, not a module file/, { only: true });
    assert.doesNotMatch(r.stderr, /ERR_UNSUPPORTED_DIR_IMPORT/);
  });
  return cases;
}
