/**
 * The head generator: its options and output on an in-memory tree, and, end to end, that the
 * package it generates for every slot builds (`tsc -b`), passes its own tests (the conformance
 * kit) and lints cleanly with no edit, in a sandbox copy of the workspace under the OS temp dir.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Tree } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { CORE_SECTIONS } from '@rcnn/core';
import { FsTree, flushChanges } from 'nx/src/generators/tree.js';
import { CORE_SECTION_NAMES, HEAD_SLOTS, type HeadSlot, headGenerator, renderHeadPackage } from '../src/index.js';

/** The workspace root (four levels above build/test/). */
const WORKSPACE = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

/** An in-memory workspace with the package.json files the generator looks up. */
function memoryTree(): Tree {
  const tree = createTreeWithEmptyWorkspace();
  for (const dir of ['core', 'testing', 'mask-head', 'keypoint-head']) {
    tree.write(`packages/${dir}/package.json`, readFileSync(join(WORKSPACE, 'packages', dir, 'package.json'), 'utf8'));
  }
  tree.write('.changeset/config.json', '{}');
  return tree;
}

describe('head generator options and files', () => {
  it('writes the package, its tests and a changeset', () => {
    const tree = memoryTree();
    headGenerator(tree, { name: 'tiny-box', slot: 'roi-box-head' });
    for (const f of ['package.json', 'tsconfig.json', 'README.md', 'src/index.ts', 'src/register.ts', 'src/config.ts', 'src/tiny-box.ts', 'test/conformance.test.ts', 'test/config.test.ts']) {
      assert.ok(tree.exists(`packages/tiny-box/${f}`), f);
    }
    // Layers come from @rcnn/core (conv2d, linear, roiPooler …): the package declares no weight plumbing of its own.
    assert.equal(tree.exists('packages/tiny-box/src/weights.ts'), false);
    assert.match(tree.read('packages/tiny-box/src/tiny-box.ts', 'utf-8')!, /roiPooler\(ctx, features, rois, ctx\.config\.FAST_RCNN/);
    assert.match(tree.read('.changeset/tiny-box-initial.md', 'utf-8') ?? '', /"@rcnn\/tiny-box": minor/);
    const pkg = JSON.parse(tree.read('packages/tiny-box/package.json', 'utf-8')!) as Record<string, Record<string, unknown>>;
    const core = JSON.parse(readFileSync(join(WORKSPACE, 'packages/core/package.json'), 'utf8')) as { version: string };
    assert.deepEqual(pkg.peerDependencies, { '@rcnn/core': `^${core.version}` });
    assert.deepEqual(pkg.exports, { '.': { types: './build/src/index.d.ts', default: './build/src/index.js' }, './package.json': './package.json' });
    assert.deepEqual(pkg.files, ['build/src', '!build/src/**/*.map', 'README.md']);
    assert.deepEqual(Object.keys(pkg.scripts!).sort(), ['build', 'lint', 'test']);
    const tsconfig = JSON.parse(tree.read('packages/tiny-box/tsconfig.json', 'utf-8')!) as { extends: string; references: { path: string }[] };
    assert.equal(tsconfig.extends, '../../tsconfig.base.json');
    assert.deepEqual(tsconfig.references, [{ path: '../core' }, { path: '../testing' }]);
    const register = tree.read('packages/tiny-box/src/register.ts', 'utf-8')!;
    assert.match(register, /registerImplementation\(container, SLOTS\.roiBoxHead, TINY_BOX_IMPLEMENTATION\)/);
    assert.match(register, /registerConfigSection\(container, TINY_BOX_SECTION\)/);
  });

  it('depends on the package of the host post-processor for mask and keypoint heads', () => {
    const tree = memoryTree();
    headGenerator(tree, { name: 'tiny-mask', slot: 'roi-mask-head', directory: 'plugins', importPath: '@acme/tiny-mask', registryName: 'acme.tiny_mask', skipChangeset: true });
    const pkg = JSON.parse(tree.read('plugins/tiny-mask/package.json', 'utf-8')!) as { name: string; peerDependencies: Record<string, string> };
    assert.equal(pkg.name, '@acme/tiny-mask');
    assert.deepEqual(Object.keys(pkg.peerDependencies), ['@rcnn/core', '@rcnn/mask-head']);
    const tsconfig = JSON.parse(tree.read('plugins/tiny-mask/tsconfig.json', 'utf-8')!) as { references: { path: string }[] };
    assert.deepEqual(tsconfig.references, [{ path: '../../packages/core' }, { path: '../../packages/testing' }, { path: '../../packages/mask-head' }]);
    assert.match(tree.read('plugins/tiny-mask/src/tiny-mask.ts', 'utf-8')!, /export const TINY_MASK_NAME = 'acme\.tiny_mask';/);
    assert.equal(tree.exists('.changeset/tiny-mask-initial.md'), false);
  });

  it('refuses bad names, unknown slots, existing directories and core section names', () => {
    const tree = memoryTree();
    assert.throws(() => renderHeadPackage(tree, { name: 'My_Head', slot: 'fpn' }), /must be kebab-case/);
    assert.throws(() => renderHeadPackage(tree, { name: 'head', slot: 'image-transform' as HeadSlot }), /unknown slot "image-transform".*conv-body, fpn, rpn-head, roi-box-head, roi-mask-head, roi-keypoint-head/);
    assert.throws(() => renderHeadPackage(tree, { name: 'core', slot: 'fpn' }), /packages\/core already exists/);
    assert.throws(() => renderHeadPackage(tree, { name: 'fast-rcnn', slot: 'roi-box-head' }), /config section FAST_RCNN, which @rcnn\/core already defines/);
    assert.throws(() => renderHeadPackage(tree, { name: 'weights', slot: 'fpn' }), /would clash/);
    assert.throws(() => renderHeadPackage(tree, { name: 'x', slot: 'fpn', importPath: 'Not A Name' }), /not a valid npm package name/);
    const bare = createTreeWithEmptyWorkspace();
    assert.throws(() => renderHeadPackage(bare, { name: 'x', slot: 'fpn' }), /@rcnn\/core is not in this workspace/);
  });

  it('knows the config sections of @rcnn/core', () => {
    assert.deepEqual([...CORE_SECTION_NAMES].sort(), CORE_SECTIONS.map((s) => s.name).sort());
  });

  it('declares in generators.json the factory it compiles to and the schema of its options', () => {
    const root = join(WORKSPACE, 'packages', 'nx-plugin');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { generators: string; files: string[] };
    const collection = JSON.parse(readFileSync(join(root, pkg.generators), 'utf8')) as { generators: Record<string, { factory: string; schema: string }> };
    const head = collection.generators.head!;
    const [file, exported] = head.factory.split('#') as [string, string];
    assert.ok(existsSync(join(root, file)), `${file} is built`);
    assert.equal(exported, 'headGenerator');
    const schema = JSON.parse(readFileSync(join(root, head.schema), 'utf8')) as { properties: { slot: { enum: string[] } }; required: string[] };
    assert.deepEqual(schema.properties.slot.enum, [...HEAD_SLOTS]);
    assert.deepEqual(schema.required, ['name', 'slot']);
    for (const shipped of [pkg.generators, head.schema, file]) assert.ok(pkg.files.some((f) => shipped.replace(/^\.\//, '').startsWith(f)), `${shipped} is in files`);
  });
});

describe('generated packages build, test and lint with no edit', () => {
  let sandbox = '';
  const slots: readonly HeadSlot[] = HEAD_SLOTS;
  const dirs = slots.map((s) => `packages/gen-${s}`);
  const run = (file: string, args: readonly string[]): string => {
    try {
      // Without NODE_TEST_CONTEXT, a nested `node --test` reports in TAP instead of to this runner.
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT'));
      return execFileSync(process.execPath, [file, ...args], { cwd: sandbox, encoding: 'utf8', stdio: 'pipe', env });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`${file} ${args.join(' ')} failed:\n${err.stdout ?? ''}\n${err.stderr ?? ''}\n${err.message}`, { cause: e });
    }
  };

  before(() => {
    // A copy of the packages the generated ones reference (so tsc -b never writes into the
    // workspace), the workspace's compiler/lint config and its node_modules (linked).
    sandbox = mkdtempSync(join(tmpdir(), 'rcnn-head-generator-'));
    for (const dir of ['core', 'testing', 'mask-head', 'keypoint-head']) {
      cpSync(join(WORKSPACE, 'packages', dir), join(sandbox, 'packages', dir), { recursive: true, preserveTimestamps: true });
    }
    for (const file of ['tsconfig.base.json', 'eslint.config.js', 'package.json']) cpSync(join(WORKSPACE, file), join(sandbox, file), { preserveTimestamps: true });
    symlinkSync(join(WORKSPACE, 'node_modules'), join(sandbox, 'node_modules'), 'dir');
    mkdirSync(join(sandbox, '.changeset'));
    const tree = new FsTree(sandbox, false);
    slots.forEach((slot) => headGenerator(tree, { name: `gen-${slot}`, slot }));
    flushChanges(sandbox, tree.listChanges());
  });
  after(() => {
    if (sandbox) rmSync(sandbox, { recursive: true, force: true });
  });

  it('builds every generated package in one tsc -b', () => {
    run(join(WORKSPACE, 'node_modules', 'typescript', 'bin', 'tsc'), ['-b', ...dirs]);
    for (const d of dirs) assert.ok(existsSync(join(sandbox, d, 'build', 'src', 'index.js')), d);
  });

  it("passes the generated tests (conformance kit and config checks) of every slot", () => {
    const out = run('--test', dirs.map((d) => join(d, 'build', 'test')));
    const count = (label: string): number => Number(new RegExp(`^# ${label} (\\d+)$`, 'm').exec(out)?.[1] ?? -1);
    assert.equal(count('fail'), 0, out);
    // Five tests per package, plus the training checks (the kit's losses, host targets and
    // finite-difference gradients) of the slots whose template trains.
    const training: readonly HeadSlot[] = ['rpn-head', 'roi-mask-head', 'roi-keypoint-head'];
    assert.equal(count('pass'), 5 * slots.length + training.length, out);
    for (const slot of slots) assert.match(out, new RegExp(`ok \\d+ - keeps the ${slot} contract`));
    const trains = /ok \d+ - trains: its loss, host targets and gradients \(finite differences\)/g;
    assert.equal(out.match(trains)?.length, training.length, out);
    // The three come from the three training templates.
    for (const slot of slots) {
      const source = readFileSync(join(sandbox, 'packages', `gen-${slot}`, 'test', 'conformance.test.ts'), 'utf8');
      assert.equal(source.includes(`runTrainingConformance({ slot: '${slot}'`), training.includes(slot), slot);
    }
  });

  it('lints cleanly with the workspace rules', () => {
    run(join(WORKSPACE, 'node_modules', 'eslint', 'bin', 'eslint.js'), [...dirs.flatMap((d) => [`${d}/src`, `${d}/test`]), '--max-warnings', '0']);
  });

  it('passes publint', () => {
    for (const d of dirs) {
      const out = run(join(WORKSPACE, 'node_modules', 'publint', 'src', 'cli.js'), [d, '--strict']);
      assert.doesNotMatch(out, /Error|Warning/, `${d}: ${out}`);
    }
  });
});
