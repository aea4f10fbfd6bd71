#!/usr/bin/env node
/**
 * Publish-readiness of every publishable workspace package (`npm run check:packages`; `npm test`
 * runs it after building, testing and linting everything). Each package is packed once with
 * `npm pack` into a temporary directory (what `npm pack --dry-run` lists is exactly what this
 * tarball holds) and checked:
 *
 * 1. contents: only the built code (`build/src/**` .js and .d.ts), package.json, README.md,
 *    LICENSE and the extra paths the package declares in `files` (core's `proto/`, the nx
 *    plugin's `generators.json`); no tests, TypeScript sources, source maps, fixtures, build info
 *    or compiled benches (build/bench); no stale output whose source is gone; every file the
 *    exports map points to;
 * 2. publint --strict on the tarball (warnings are errors);
 * 3. @arethetypeswrong/cli on the tarball with the `esm-only` profile: the packages are ESM only
 *    ("type": "module", exports without a "require" condition), so CommonJS resolutions
 *    (node10, node16-from-CJS) are out of scope; every ESM resolution (node16 from ESM,
 *    bundler) must find the types and the JavaScript;
 * 4. dependencies: every bare import of the built code is declared (dependencies or
 *    peerDependencies), @rcnn/core is a peer dependency of every library that imports it (an
 *    application with a bin may depend on it), and every range on a workspace package includes
 *    that package's current version.
 *
 * Usage: node tools/check-packages.mjs [package name or directory …] (default: all).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import ts from 'typescript';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ATTW = join(ROOT, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js');
const CONCURRENCY = 2;

/** Workspace packages (directories matched by the root `workspaces` globs of the form `dir/*`). */
function workspacePackages() {
  const rootPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const dirs = [];
  for (const glob of rootPkg.workspaces ?? []) {
    const parent = join(ROOT, glob.replace(/\/\*$/, ''));
    if (!existsSync(parent)) continue;
    for (const child of readdirSync(parent)) {
      const dir = join(parent, child);
      if (statSync(dir).isDirectory() && existsSync(join(dir, 'package.json'))) dirs.push(dir);
    }
  }
  return dirs.map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }));
}

/** Does version `v` satisfy `range` (exact, ^x.y.z or ~x.y.z; anything else is reported)? */
function satisfies(v, range) {
  const parse = (s) => s.split('-')[0].split('.').map(Number);
  const m = /^([~^]?)(\d+\.\d+\.\d+(?:-[\w.]+)?)$/.exec(range.trim());
  if (!m) return undefined;
  const [a, b, c] = parse(v);
  const [x, y, z] = parse(m[2]);
  const atLeast = a > x || (a === x && (b > y || (b === y && c >= z)));
  if (m[1] === '') return a === x && b === y && c === z;
  if (m[1] === '~') return atLeast && a === x && b === y;
  if (x > 0) return atLeast && a === x;
  if (y > 0) return atLeast && a === 0 && b === y;
  return a === 0 && b === 0 && c === z;
}

/** Every file the exports map / types / main point to (relative, without "./"). */
function entryFiles(pkg) {
  const out = new Set();
  const walk = (v) => {
    if (typeof v === 'string') {
      if (!v.includes('*') && !v.endsWith('package.json')) out.add(v.replace(/^\.\//, ''));
    } else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
  };
  walk(pkg.exports);
  for (const f of [pkg.types, pkg.main, pkg.module]) if (f) out.add(f.replace(/^\.\//, ''));
  return [...out];
}

/** Problems with the packed file list. */
function checkContents(dir, pkg, files) {
  const problems = [];
  const extras = (pkg.files ?? []).filter((f) => !f.startsWith('!') && !f.startsWith('build')).map((f) => f.replace(/^\.\//, '').replace(/\/$/, ''));
  for (const f of files) {
    if (/\.map$/.test(f)) problems.push(`ships a source map: ${f}`);
    else if (/(^|\/)(test|tests|__tests__|fixtures)(\/|$)/.test(f)) problems.push(`ships a test or fixture file: ${f}`);
    else if (/\.tsbuildinfo$/.test(f)) problems.push(`ships build info: ${f}`);
    else if (/\.(ts|mts|cts|tsx)$/.test(f) && !/\.d\.(ts|mts|cts)$/.test(f)) problems.push(`ships TypeScript source: ${f}`);
    else if (f.startsWith('build/')) {
      if (!f.startsWith('build/src/')) problems.push(`ships build output outside build/src: ${f}`);
      else if (/\.(js|d\.ts)$/.test(f)) {
        // Output whose source was deleted would still be published until build/ is cleaned.
        const source = join(dir, f.replace(/^build\//, '').replace(/\.(d\.ts|js)$/, '.ts'));
        if (!existsSync(source)) problems.push(`ships stale output without a source (${relative(ROOT, source)}): ${f}; delete build/ and rebuild`);
      }
    } else if (!/^(package\.json|README\.md|LICENSE(\.\w+)?|CHANGELOG\.md)$/i.test(f) && !extras.some((e) => f === e || f.startsWith(`${e}/`))) {
      problems.push(`ships a file that is neither built code nor declared in "files": ${f}`);
    }
  }
  if (!files.some((f) => /^README\.md$/i.test(f))) problems.push('has no README.md');
  if (!files.some((f) => f.endsWith('.d.ts'))) problems.push('ships no type declarations');
  for (const f of entryFiles(pkg)) if (!files.includes(f)) problems.push(`exports/types point to ${f}, which is not in the tarball${existsSync(join(dir, f)) ? '' : ' (not built?)'}`);
  return problems;
}

/** Problems with declared dependencies against the imports of the built code and the workspace versions. */
function checkDependencies(dir, pkg, files, versions) {
  const problems = [];
  const declared = { ...pkg.dependencies, ...pkg.peerDependencies };
  const builtins = new Set(builtinModules);
  const imported = new Set();
  for (const f of files.filter((x) => x.endsWith('.js'))) {
    // TypeScript's scanner finds import/export declarations and literal dynamic imports, not
    // look-alikes inside strings and templates (the nx plugin's templates are full of them).
    const { importedFiles } = ts.preProcessFile(readFileSync(join(dir, f), 'utf8'), true, true);
    for (const { fileName: spec } of importedFiles) {
      if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec.split('/')[0])) continue;
      imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
    }
  }
  for (const name of imported) {
    if (name === pkg.name) continue;
    if (!(name in declared)) problems.push(`the built code imports ${name}, which is not in dependencies or peerDependencies`);
  }
  // A library shares the application's one @rcnn/core (its registry and slot tokens); only an
  // application (a package with a bin) may depend on core directly.
  const coreOk = pkg.peerDependencies?.['@rcnn/core'] || (pkg.bin && pkg.dependencies?.['@rcnn/core']);
  if (imported.has('@rcnn/core') && pkg.name !== '@rcnn/core' && !coreOk) {
    problems.push('imports @rcnn/core but does not list it in peerDependencies (libraries share the application\'s core: its registry and slots)');
  }
  for (const field of ['dependencies', 'peerDependencies', 'devDependencies']) {
    for (const [name, range] of Object.entries(pkg[field] ?? {})) {
      const version = versions.get(name);
      if (version === undefined) continue;
      const ok = satisfies(version, range);
      if (ok === undefined) problems.push(`${field}.${name} is "${range}": use ^x.y.z for workspace packages`);
      else if (!ok) problems.push(`${field}.${name} is "${range}", which excludes the workspace's ${name}@${version}`);
    }
  }
  return problems;
}

async function checkPackage({ dir, pkg }, versions) {
  const problems = [];
  const out = mkdtempSync(join(tmpdir(), 'rcnn-pack-'));
  try {
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], { cwd: dir, maxBuffer: 64 << 20 });
    const [info] = JSON.parse(stdout.slice(stdout.indexOf('[')));
    const files = info.files.map((f) => f.path);
    problems.push(...checkContents(dir, pkg, files));
    problems.push(...checkDependencies(dir, pkg, files, versions));
    const tarball = join(out, info.filename);
    const data = readFileSync(tarball);
    // Linted from the tarball, so publint sees exactly what would be published.
    const lint = await publint({ strict: true, pack: { tarball: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) } });
    for (const m of lint.messages) problems.push(`publint ${m.type}: ${formatMessage(m, lint.pkg, { color: false })}`);
    try {
      await run(process.execPath, [ATTW, tarball, '--profile', 'esm-only', '--format', 'ascii', '--no-color', '--no-emoji'], { cwd: dir, maxBuffer: 16 << 20 });
    } catch (e) {
      problems.push(`attw (esm-only): ${String(e.stdout ?? e.message).trim().split('\n').join('\n    ')}`);
    }
    return { name: pkg.name, files: files.length, size: info.unpackedSize, problems };
  } catch (e) {
    return { name: pkg.name, files: 0, size: 0, problems: [...problems, `could not be packed: ${e.message}`] };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function main() {
  const all = workspacePackages();
  const versions = new Map(all.map(({ pkg }) => [pkg.name, pkg.version]));
  const wanted = process.argv.slice(2);
  const selected = all.filter(({ dir, pkg }) => !pkg.private && (wanted.length === 0 || wanted.some((w) => w === pkg.name || resolve(w) === dir)));
  if (wanted.length > 0 && selected.length === 0) throw new Error(`no publishable workspace package matches ${wanted.join(', ')}`);
  const results = new Array(selected.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, selected.length) }, async () => {
      while (next < selected.length) {
        const i = next++;
        results[i] = await checkPackage(selected[i], versions);
      }
    }),
  );
  let failed = 0;
  for (const r of results) {
    const head = `${r.problems.length ? 'FAIL' : 'ok  '} ${r.name} (${r.files} files, ${(r.size / 1024).toFixed(1)} kB unpacked)`;
    console.log(head);
    for (const p of r.problems) console.log(`    ${p}`);
    if (r.problems.length) failed++;
  }
  console.log(`${results.length - failed} of ${results.length} publishable packages ready to publish (publint --strict, attw --profile esm-only, npm pack contents, dependency ranges)`);
  process.exitCode = failed ? 1 : 0;
}

await main();
