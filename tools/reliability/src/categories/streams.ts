/**
 * Streams and special files given as images: `/dev/zero` never ends, `/dev/urandom` never ends
 * either, a FIFO without a writer never delivers, a 2 GB sparse file is mostly nothing. Each must be
 * refused (or, opted in, read within LIMITS.MAX_IMAGE_BYTES and LIMITS.READ_TIMEOUT_MS) quickly and
 * with bounded memory; a process substitution `<(cat a.png)` keeps working when opted in.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError, loadConfig } from '@rcnn/core';
import { decodeImage } from '@rcnn/runtime';
import { type CaseContext, type ReliabilityCase, assertInputError, assertTyped, thrown } from '../cases.js';
import { RCNN_BIN, REPO_ROOT, caseFiles, toyDetector, withTimeout } from '../common.js';
import { encode, pattern } from '../craft/images.js';
import { assertCliError, rcnnInProcess } from './cli.js';

const MASK = caseFiles('maskrcnn_tiny');
const MODEL = ['--config', MASK.config, '--weights', MASK.weights];
const LIMITS = (() => {
  const { LIMITS: l } = loadConfig();
  return { maxPixels: l.MAX_IMAGE_PIXELS, maxSide: l.MAX_IMAGE_SIDE, maxBytes: l.MAX_IMAGE_BYTES, readTimeoutMs: l.READ_TIMEOUT_MS };
})();

/** Makes a FIFO (named pipe) at `path` (mkfifo(1)). */
export function mkfifo(path: string): string {
  execFileSync('mkfifo', [path]);
  return path;
}

/** RSS growth (MB) while `fn` runs, sampled every 20 ms (peak minus start). */
async function peakRssGrowthMb<T>(fn: () => Promise<T>): Promise<{ value: T; mb: number }> {
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, mb: (peak - start) / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

/** Runs a shell command line (bash: process substitution) with the repository as working directory. */
function bash(script: string, timeoutMs = 120_000): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { cwd: REPO_ROOT, timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Every streams-and-special-files case. */
export function streamCases(): ReliabilityCase[] {
  const cases: ReliabilityCase[] = [];
  const add = (name: string, run: (ctx: CaseContext) => Promise<void>): void => {
    cases.push({ category: 'streams', name, run });
  };

  add('/dev/zero as an image: refused at once (not a regular file), its neighbours run', async (ctx) => {
    const good = ctx.tmp.file('streams-good.png', await encode(pattern(64, 48, 3), 'png'));
    const d = await ctx.toy();
    const { value: outcomes, mb } = await peakRssGrowthMb(() => withTimeout(d.predict([good, '/dev/zero', good], { batchSize: 3 }), 10_000, '/dev/zero'));
    assert.ok(outcomes[0]!.ok && outcomes[2]!.ok, 'the neighbours succeed');
    assertInputError(outcomes[1]!, '/dev/zero', /is a character device, not a regular file: refused/);
    assert.match((outcomes[1]!.ok ? undefined : (outcomes[1]!.error as InputError).hint) ?? '', /allow-special-files/);
    assert.ok(mb < 64, `RSS grew ${mb.toFixed(1)} MB`);
  });
  for (const device of ['/dev/zero', '/dev/urandom']) {
    add(`${device} opted in (allowSpecialFiles): read up to LIMITS.MAX_IMAGE_BYTES, then refused`, async () => {
      const { value: e, mb } = await peakRssGrowthMb(() =>
        withTimeout(thrown(() => decodeImage(device, { ...LIMITS, maxBytes: 4 << 20, allowSpecialFiles: true }, device)), 10_000, device),
      );
      assertTyped(e, InputError, /delivered more than 4194304 bytes without ending, more than LIMITS\.MAX_IMAGE_BYTES \(4194304\)/);
      assert.ok(mb < 64, `RSS grew ${mb.toFixed(1)} MB`);
    });
  }
  add('a FIFO without a writer: refused; opted in, it ends (empty) instead of hanging', async (ctx) => {
    const fifo = mkfifo(join(ctx.tmp.path, 'nobody.png'));
    assertTyped(await withTimeout(thrown(() => decodeImage(fifo, LIMITS, fifo)), 5_000, 'FIFO'), InputError, /is a FIFO \(named pipe\), not a regular file: refused/);
    const e = await withTimeout(thrown(() => decodeImage(fifo, { ...LIMITS, allowSpecialFiles: true, readTimeoutMs: 2_000 }, fifo)), 5_000, 'FIFO opted in');
    assertTyped(e, InputError, /(is empty \(0 bytes\)|did not end within LIMITS\.READ_TIMEOUT_MS)/);
  });
  add('a FIFO whose writer stalls: LIMITS.READ_TIMEOUT_MS ends the read', async (ctx) => {
    const fifo = mkfifo(join(ctx.tmp.path, 'stall.png'));
    // Hold the write end open without writing (O_RDWR on a FIFO never blocks on Linux).
    const holder = await open(fifo, 'r+');
    try {
      const t0 = performance.now();
      const e = await withTimeout(thrown(() => decodeImage(fifo, { ...LIMITS, allowSpecialFiles: true, readTimeoutMs: 300 }, fifo)), 5_000, 'stalled FIFO');
      assertTyped(e, InputError, /did not end within LIMITS\.READ_TIMEOUT_MS \(300 ms\)/);
      assert.ok(performance.now() - t0 < 3_000);
    } finally {
      await holder.close();
    }
  });
  add('a FIFO with a writer, opted in: decoded like the file (a process substitution)', async (ctx) => {
    const png = await encode(pattern(64, 48, 5), 'png');
    const fifo = mkfifo(join(ctx.tmp.path, 'fed.png'));
    const writing = open(fifo, 'w').then(async (h) => {
      await h.write(png);
      await h.close();
    });
    const img = await withTimeout(decodeImage(fifo, { ...LIMITS, allowSpecialFiles: true }, fifo), 10_000, 'fed FIFO');
    await writing;
    const ref = await decodeImage(png, LIMITS, 'ref');
    assert.deepEqual([img.width, img.height], [64, 48]);
    assert.deepEqual(Buffer.from(img.data as Uint8Array), Buffer.from(ref.data as Uint8Array));
  });
  add('a 1.9 GB sparse .png of zeros: refused from its size, and (limit raised) from its first bytes', async (ctx) => {
    const path = join(ctx.tmp.path, 'sparse.png');
    const fd = openSync(path, 'w');
    ftruncateSync(fd, 1_900_000_000);
    closeSync(fd);
    const bySize = await peakRssGrowthMb(() => withTimeout(thrown(() => decodeImage(path, LIMITS, path)), 5_000, 'sparse by size'));
    assertTyped(bySize.value, InputError, /file is 1900000000 bytes, more than LIMITS\.MAX_IMAGE_BYTES \(268435456\)/);
    const t0 = performance.now();
    const byHead = await peakRssGrowthMb(() => withTimeout(thrown(() => decodeImage(path, { ...LIMITS, maxBytes: 2_000_000_000 }, path)), 5_000, 'sparse by head'));
    assertTyped(byHead.value, InputError, /is not a readable image/);
    assert.ok(performance.now() - t0 < 2_000, 'refused from the head, not after reading 1.9 GB');
    assert.ok(bySize.mb < 64 && byHead.mb < 64, `RSS grew ${bySize.mb.toFixed(1)} / ${byHead.mb.toFixed(1)} MB`);
  });
  add('LIMITS.MAX_IMAGE_BYTES (--set) bounds files and encoded buffers before decoding', async (ctx) => {
    const png = await encode(pattern(64, 48, 2), 'png');
    const f = ctx.tmp.file('bytes-limit.png', png);
    const d = await toyDetector({ set: [`LIMITS.MAX_IMAGE_BYTES=${png.byteLength - 1}`] });
    try {
      const [a, b, c] = await d.predict([f, png, { data: png, name: 'upload.png' }]);
      assertInputError(a, f, new RegExp(`file is ${png.byteLength} bytes, more than LIMITS\\.MAX_IMAGE_BYTES \\(${png.byteLength - 1}\\)`));
      assertInputError(b, '<buffer 1>', /more than LIMITS\.MAX_IMAGE_BYTES/);
      assertInputError(c, 'upload.png', /more than LIMITS\.MAX_IMAGE_BYTES/);
    } finally {
      await d.close();
    }
  });
  add('rcnn predict: a directory holding a FIFO (no writer) between two images: skipped with a message, the rest run', async (ctx) => {
    const dir = join(ctx.tmp.path, 'fifo-dir');
    mkdirSync(dir);
    copyFileSync(MASK.image, join(dir, 'a.png'));
    mkfifo(join(dir, 'm.png'));
    copyFileSync(MASK.image, join(dir, 'z.png'));
    const out = join(ctx.tmp.path, 'fifo-dir.json');
    const r = await withTimeout(rcnnInProcess(['predict', ...MODEL, '-o', out, dir]), 60_000, 'predict over a directory with a FIFO');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /rcnn predict: skipping .*m\.png: a FIFO \(named pipe\), not a regular file/);
    assert.match(r.stdout, /a\.png: \d+ detection/);
    assert.match(r.stdout, /z\.png: \d+ detection/);
    const json = JSON.parse(readFileSync(out, 'utf8')) as { images: { file_name: string }[] };
    assert.equal(json.images.length, 2);
  });
  add('rcnn predict: a FIFO given explicitly is refused before the model is built (hint: --allow-special-files)', async (ctx) => {
    const fifo = mkfifo(join(ctx.tmp.path, 'explicit.png'));
    const r = await withTimeout(rcnnInProcess(['predict', ...MODEL, fifo]), 10_000, 'explicit FIFO');
    assertCliError(r, 1, /image .*explicit\.png is a FIFO \(named pipe\), not a regular file: refused/, { hint: /--allow-special-files/, only: true });
  });
  add('rcnn predict /dev/zero: refused at once', async () => {
    assertCliError(await withTimeout(rcnnInProcess(['predict', ...MODEL, '/dev/zero']), 10_000, '/dev/zero'), 1, /\/dev\/zero is a character device, not a regular file/, { only: true });
  });
  add('rcnn predict --allow-special-files <(cat image.png): a process substitution still works (built binary, bash)', async () => {
    if (!existsSync('/bin/bash') && !existsSync('/usr/bin/bash')) throw new Error('bash is needed for a process substitution');
    const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;
    const model = MODEL.map(q).join(' ');
    const plain = await bash(`${q(process.execPath)} ${q(RCNN_BIN)} predict ${model} <(cat ${q(MASK.image)})`);
    assert.equal(plain.status, 1, `refused without the flag: ${plain.stderr}`);
    assert.match(plain.stderr, /not a regular file: refused/);
    const r = await bash(`${q(process.execPath)} ${q(RCNN_BIN)} predict ${model} --allow-special-files <(cat ${q(MASK.image)})`);
    assert.equal(r.status, 0, r.stderr);
    const ref = await rcnnInProcess(['predict', ...MODEL, MASK.image]);
    const detections = (s: string): string => /: (\d+ detections?.*) \[/.exec(s)?.[1] ?? `(none in ${s})`;
    assert.equal(detections(r.stdout), detections(ref.stdout), 'the same detections as the file');
  });
  add('a config path that is a FIFO or /dev/zero: "not a regular file", not "not found"', async (ctx) => {
    const fifo = mkfifo(join(ctx.tmp.path, 'config.yaml'));
    for (const path of [fifo, '/dev/zero']) {
      const r = await withTimeout(rcnnInProcess(['predict', '--config', path, MASK.image]), 10_000, `config ${path}`);
      assertCliError(r, 1, new RegExp(`config file ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is (a FIFO|a character device).*not a regular file`), { only: true });
    }
  });
  add('rcnn convert /dev/zero: refused, not read forever', async (ctx) => {
    const r = await withTimeout(rcnnInProcess(['convert', '/dev/zero', join(ctx.tmp.path, 'zero.safetensors')]), 10_000, 'convert /dev/zero');
    assertCliError(r, 1, /\/dev\/zero: it is a character device, not a regular file/);
  });
  return cases;
}
