/**
 * What rcnn writes: results JSON, drawings, tensor dumps, exported models, converted weights,
 * bench reports. On a full file system nothing truncated is left and the error names the file
 * (`full-disk`); no output ever replaces an input, however the path is spelled (`aliasing`); a bad
 * output path fails before any work, a drawing that cannot be written fails alone, `--draw` at a
 * file, a closed stdout and a bad image in a dump are clear (`outputs`).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { OutputError, writeFileAtomic } from '@rcnn/core';
import { type CaseCategory, type CaseContext, type ReliabilityCase, assertTyped, thrown } from '../cases.js';
import { RCNN_BIN, REPO_ROOT, caseFiles, withTimeout } from '../common.js';
import { encode, gradient } from '../craft/images.js';
import { assertCliError, rcnnInProcess } from './cli.js';

const MASK = caseFiles('maskrcnn_tiny');
const MODEL = ['--config', MASK.config, '--weights', MASK.weights];
const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** A 16 KiB tmpfs that is full (one 16 KiB filler file), or the reason it cannot be mounted. */
export function mountFullTmpfs(dir: string): { path: string; unmount: () => void } | { reason: string } {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    return { reason: `cannot mount a tmpfs (${(e as Error).message.split('\n')[0]}): needs root` };
  }
  const unmount = (): void => {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  };
  try {
    writeFileSync(join(dir, 'filler'), new Uint8Array(16 * 1024));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') {
      unmount();
      throw e;
    }
  }
  return { path: dir, unmount };
}

/**
 * The atomic writer with an injected ENOSPC after half the bytes (what a full disk does): no
 * file, no temporary file, an OutputError naming the target. Runs wherever a tmpfs cannot be
 * mounted, so the full-disk cases always assert something.
 */
async function injectedEnospc(dir: string, name: string): Promise<void> {
  const target = join(dir, name);
  const io = {
    open: async (p: string, f: string, m: number) => {
      const h = await fsp.open(p, f, m);
      let written = 0;
      return new Proxy(h, {
        get(t, prop) {
          if (prop === 'write') {
            return async (buf: Uint8Array, off: number, len: number) => {
              if (written > 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
              const half = Math.max(1, Math.floor(len / 2));
              written += half;
              return t.write(buf, off, half);
            };
          }
          const v = Reflect.get(t, prop, t) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
        },
      });
    },
    rename: fsp.rename,
    unlink: fsp.unlink,
  };
  const e = await thrown(() => writeFileAtomic(target, new Uint8Array(10_000), { io }));
  assertTyped(e, OutputError, new RegExp(`cannot write ${esc(target)}: no space left on the device`));
  assert.equal(e.file, target);
  assert.equal(existsSync(target), false, 'no truncated file');
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes(name)), [], 'no temporary file left');
}

/**
 * Runs `fn` with a full 16 KiB tmpfs at `<tmp>/<label>`; where none can be mounted, checks the
 * injected-ENOSPC path instead and says why on stderr.
 */
async function onFullDisk(ctx: CaseContext, label: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = join(ctx.tmp.path, label);
  const mounted = mountFullTmpfs(dir);
  if ('reason' in mounted) {
    process.stderr.write(`# full-disk ${label}: ${mounted.reason}; checking an injected ENOSPC instead\n`);
    await injectedEnospc(dir, `${label}.out`);
    return;
  }
  try {
    await fn(dir);
  } finally {
    mounted.unmount();
  }
}

/** Only the filler: nothing truncated and no temporary file was left. */
function assertNothingLeft(dir: string): void {
  assert.deepEqual(readdirSync(dir).filter((n) => n !== 'filler'), [], `nothing left on the full disk: ${readdirSync(dir).join(', ')}`);
}

/** Runs the built binary with its stdout's reader gone at once (`rcnn … | true`). */
function withClosedStdout(args: readonly string[]): Promise<{ status: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RCNN_BIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status, signal) => resolve({ status, signal, stderr }));
  });
}

/** Every output case (categories full-disk, aliasing, outputs). */
export function outputCases(): ReliabilityCase[] {
  const cases: ReliabilityCase[] = [];
  const add = (category: CaseCategory, name: string, run: (ctx: CaseContext) => Promise<void>): void => {
    cases.push({ category, name, run });
  };

  // --- full disk ---
  add('full-disk', 'the atomic writer with an injected ENOSPC: no file, no temporary file, the path named', async (ctx) => {
    const dir = join(ctx.tmp.path, 'injected');
    mkdirSync(dir);
    await injectedEnospc(dir, 'r.json');
  });
  add('full-disk', 'rcnn predict -o on a full tmpfs: the error names the file, nothing truncated is left', async (ctx) => {
    await onFullDisk(ctx, 'small-o', async (dir) => {
      const out = join(dir, 'r.json');
      const r = await rcnnInProcess(['predict', ...MODEL, '-o', out, MASK.image]);
      assertCliError(r, 1, new RegExp(`cannot write ${esc(out)}: no space left on the device`), { hint: /free some space/ });
      assert.equal(existsSync(out), false);
      assertNothingLeft(dir);
    });
  });
  add('full-disk', 'rcnn predict --draw on a full tmpfs: no 0-byte PNG, the drawing fails naming its file', async (ctx) => {
    await onFullDisk(ctx, 'small-draw', async (dir) => {
      const r = await rcnnInProcess(['predict', ...MODEL, '--draw', dir, MASK.image]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`rcnn predict: error: cannot write ${esc(join(dir, 'image_0.png'))}: no space left on the device`));
      assert.doesNotMatch(r.stderr, /internal error/);
      assertNothingLeft(dir);
    });
  });
  add('full-disk', 'rcnn predict --dump on a full tmpfs: the error names the dump', async (ctx) => {
    await onFullDisk(ctx, 'small-dump', async (dir) => {
      const out = join(dir, 'd.safetensors');
      assertCliError(await rcnnInProcess(['predict', ...MODEL, '--dump', out, MASK.image]), 1, new RegExp(`cannot write ${esc(out)}: no space left`));
      assertNothingLeft(dir);
    });
  });
  add('full-disk', 'rcnn export -o on a full tmpfs: the error names the model file', async (ctx) => {
    await onFullDisk(ctx, 'small-export', async (dir) => {
      const out = join(dir, 'm.onnx');
      assertCliError(await rcnnInProcess(['export', ...MODEL, '-o', out]), 1, new RegExp(`cannot write ${esc(out)}: no space left`), { only: true });
      assertNothingLeft(dir);
    });
  });
  add('full-disk', 'rcnn convert to a full tmpfs: the error names the output, the hint does not blame the weights', async (ctx) => {
    await onFullDisk(ctx, 'small-convert', async (dir) => {
      const out = join(dir, 'w.safetensors');
      const r = await rcnnInProcess(['convert', caseFiles('keypointrcnn_tiny').pth, out]);
      assertCliError(r, 1, new RegExp(`cannot write ${esc(out)}: no space left`), { hint: /free some space/, only: true });
      assert.doesNotMatch(r.stderr, /weights file is complete/);
      assertNothingLeft(dir);
    });
  });
  add('full-disk', 'rcnn bench --json on a full tmpfs: the error names the report', async (ctx) => {
    await onFullDisk(ctx, 'small-bench', async (dir) => {
      const json = join(dir, 'b.json');
      const r = await rcnnInProcess(['bench', ...MODEL, '--runs', '1', '--warmup', '0', '--json', json, '--html', join(ctx.tmp.path, 'b.html'), MASK.image]);
      assertCliError(r, 1, new RegExp(`cannot write ${esc(json)}: no space left`));
      assertNothingLeft(dir);
    });
  });

  // --- outputs never replace inputs ---
  const photoDir = async (ctx: CaseContext, name: string): Promise<{ dir: string; photo: string; bytes: Buffer }> => {
    const dir = join(ctx.tmp.path, name);
    mkdirSync(dir);
    const photo = join(dir, 'photo.png');
    copyFileSync(MASK.image, photo);
    return { dir, photo, bytes: readFileSync(photo) };
  };
  add('aliasing', '--draw into the image\'s own directory would overwrite the photo: refused up front, photo intact', async (ctx) => {
    const { dir, photo, bytes } = await photoDir(ctx, 'ow-draw');
    const r = await rcnnInProcess(['predict', ...MODEL, '--draw', dir, photo]);
    assertCliError(r, 1, new RegExp(`the drawing of ${esc(photo)} would be written to ${esc(photo)}, which is the image`), { only: true });
    assert.deepEqual(readFileSync(photo), bytes);
  });
  add('aliasing', '-o naming the image: refused up front, image intact', async (ctx) => {
    const { photo, bytes } = await photoDir(ctx, 'ow-o');
    assertCliError(await rcnnInProcess(['predict', ...MODEL, '-o', photo, photo]), 1, /results file \(-o\) .*photo\.png is the image .*photo\.png: writing it would destroy that input/, { only: true });
    assert.deepEqual(readFileSync(photo), bytes);
  });
  add('aliasing', '-o spelled differently (./, a symlink, a hard link): the same file by device and inode, refused', async (ctx) => {
    const { dir, photo, bytes } = await photoDir(ctx, 'ow-spell');
    symlinkSync(photo, join(dir, 'link.json'));
    linkSync(photo, join(dir, 'hard.json'));
    for (const out of [join(dir, '.', 'photo.png'), join(dir, '..', 'ow-spell', 'photo.png'), join(dir, 'link.json'), join(dir, 'hard.json')]) {
      assertCliError(await rcnnInProcess(['predict', ...MODEL, '-o', out, photo]), 1, /writing it would destroy that input/, { only: true });
    }
    assert.deepEqual(readFileSync(photo), bytes);
  });
  add('aliasing', '--dump naming the weights: refused, weights intact', async (ctx) => {
    const w = join(ctx.tmp.path, 'dump-w.safetensors');
    copyFileSync(MASK.weights, w);
    assertCliError(await rcnnInProcess(['predict', '--config', MASK.config, '--weights', w, '--dump', w, MASK.image]), 1, /--dump file .* is the weights file/, { only: true });
    assert.deepEqual(readFileSync(w), readFileSync(MASK.weights));
  });
  add('aliasing', 'rcnn export -o w.safetensors -w w.safetensors: refused, weights intact', async (ctx) => {
    const w = join(ctx.tmp.path, 'export-w.safetensors');
    copyFileSync(MASK.weights, w);
    assertCliError(await rcnnInProcess(['export', '--config', MASK.config, '-w', w, '-o', w]), 1, /output \(--out\) .* is the weights file/, { only: true });
    assert.deepEqual(readFileSync(w), readFileSync(MASK.weights));
  });
  add('aliasing', 'rcnn export -o naming the config file: refused', async (ctx) => {
    const c = join(ctx.tmp.path, 'export-case.json');
    copyFileSync(MASK.config, c);
    assertCliError(await rcnnInProcess(['export', '--config', c, '-w', MASK.weights, '-o', c]), 1, /is the config file/, { only: true });
    assert.deepEqual(readFileSync(c), readFileSync(MASK.config));
  });
  add('aliasing', 'rcnn convert w.safetensors w.safetensors: refused before reading, input intact', async (ctx) => {
    const w = join(ctx.tmp.path, 'convert-w.safetensors');
    copyFileSync(MASK.weights, w);
    assertCliError(await rcnnInProcess(['convert', w, w]), 1, /output .* is the checkpoint/, { only: true });
    assert.deepEqual(readFileSync(w), readFileSync(MASK.weights));
  });

  // --- output paths checked up front, failures per image ---
  add('outputs', '-o in a missing directory / at a directory: refused before the model is built', async (ctx) => {
    for (const [out, pattern] of [
      [join(ctx.tmp.path, 'no-such-dir', 'r.json'), /its directory .*no-such-dir does not exist/],
      [ctx.tmp.path, /results file \(-o\) .* is a directory/],
    ] as const) {
      // A missing weights file would fail the build: the output check must come first (the error proves it).
      const r = await rcnnInProcess(['predict', '--config', MASK.config, '--weights', join(ctx.tmp.path, 'not-there.safetensors'), '-o', out, MASK.image]);
      assertCliError(r, 1, pattern, { only: true });
    }
  });
  add('outputs', '-o in a directory that cannot be written (read-only tmpfs, or mode 0500 when not root): refused up front', async (ctx) => {
    const dir = join(ctx.tmp.path, 'read-only');
    mkdirSync(dir);
    let undo: () => void;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=16k', 'tmpfs', dir], { stdio: 'pipe' });
      undo = () => execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      chmodSync(dir, 0o500); // not root: permissions are enough
      undo = () => chmodSync(dir, 0o700);
    }
    try {
      const r = await rcnnInProcess(['predict', '--config', MASK.config, '--weights', join(ctx.tmp.path, 'not-there.safetensors'), '-o', join(dir, 'r.json'), MASK.image]);
      assertCliError(r, 1, /cannot write results file \(-o\) .*r\.json: (read-only file system|permission denied)/, { only: true });
    } finally {
      undo();
    }
  });
  add('outputs', 'bench --json at a directory: refused before timing', async (ctx) => {
    const r = await rcnnInProcess(['bench', '--config', MASK.config, '--weights', join(ctx.tmp.path, 'not-there.safetensors'), '--json', ctx.tmp.path, MASK.image]);
    assertCliError(r, 1, /--json report .* is a directory/, { only: true });
  });
  add('outputs', '--draw at an existing file: EEXIST before any work, no internal error', async (ctx) => {
    const f = ctx.tmp.file('a-file', 'x');
    const r = await rcnnInProcess(['predict', '--config', MASK.config, '--weights', join(ctx.tmp.path, 'not-there.safetensors'), '--draw', f, MASK.image]);
    assertCliError(r, 1, /--draw directory .*a-file exists and is not a directory/, { only: true });
  });
  add('outputs', 'a drawing whose name is a directory fails alone: the other drawings and the JSON are written', async (ctx) => {
    const dir = join(ctx.tmp.path, 'collide');
    const draw = join(dir, 'draw');
    mkdirSync(join(draw, 'b.png'), { recursive: true });
    for (const n of ['a', 'b', 'c']) copyFileSync(MASK.image, join(dir, `${n}.png`));
    const out = join(dir, 'r.json');
    const r = await rcnnInProcess(['predict', ...MODEL, '--draw', draw, '-o', out, ...['a', 'b', 'c'].map((n) => join(dir, `${n}.png`))]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`rcnn predict: error: cannot write ${esc(join(draw, 'b.png'))}: it is a directory`));
    assert.ok(statSync(join(draw, 'a.png')).size > 0 && statSync(join(draw, 'c.png')).size > 0, 'the other drawings were written');
    assert.equal((JSON.parse(readFileSync(out, 'utf8')) as { images: unknown[] }).images.length, 3, 'the JSON was written');
  });
  add('outputs', 'stdout closed by its reader (rcnn predict a b c | true): quiet stop, status 141', async () => {
    const r = await withTimeout(withClosedStdout(['predict', ...MODEL, MASK.image, MASK.image, MASK.image]), 120_000, 'closed stdout');
    assert.equal(r.status, 141, `status ${r.status} (signal ${r.signal}); stderr:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error|EPIPE|error:/);
  });
  add('outputs', '--dump with one image the model cannot take: the error names that image, not the batch count', async (ctx) => {
    const long = ctx.tmp.file('long-1x20000.png', await encode(gradient(20000, 1), 'png'));
    const out = join(ctx.tmp.path, 'bad-dump.safetensors');
    // Two good images and the bad one: the failed batch is retried image by image.
    const r = await rcnnInProcess(['predict', ...MODEL, '--dump', out, MASK.image, long, MASK.image]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${esc(long)}: .*aspect ratio is too extreme`));
    assert.match(r.stderr, new RegExp(`rcnn predict: error: --dump: ${esc(long)} failed`));
    assert.doesNotMatch(r.stderr, /ran in \d+ batches|internal error/);
    assert.equal(existsSync(out), false);
  });
  add('outputs', 'a 1 x 20000 image: the hint speaks of the aspect ratio, not of a damaged file', async (ctx) => {
    const long = ctx.tmp.file('hint-1x20000.png', await encode(gradient(20000, 1), 'png'));
    const r = await rcnnInProcess(['predict', ...MODEL, long]);
    assertCliError(r, 1, /aspect ratio is too extreme/, { hint: /aspect ratio under about \d+:1/ });
    assert.doesNotMatch(r.stderr, /check the image file/);
  });
  return cases;
}
