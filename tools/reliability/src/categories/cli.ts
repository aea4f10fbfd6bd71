/**
 * The same hostile inputs through the `rcnn` command: every failure is one line saying what went
 * wrong and one `hint:` line, with a non-zero exit status and no stack trace. Most cases call the
 * CLI in-process (`runCli`, fast); a few run the built binary to cover its entry point.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runCli } from '@rcnn/cli';
import { type PickleValue, writeNumpyPickle } from '@rcnn/testing';
import { hostTensor, writeSafetensors } from '@rcnn/core';
import { type CaseContext, type ReliabilityCase } from '../cases.js';
import { RCNN_BIN, REPO_ROOT, caseFiles } from '../common.js';
import { encode, pattern } from '../craft/images.js';
import { fileWritingPickle, readTensors, torchArchive } from '../craft/weights.js';

/** What one `rcnn` run printed and returned. */
export interface CliRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** Runs `rcnn args…` in this process. */
export async function rcnnInProcess(args: readonly string[]): Promise<CliRun> {
  const stdout = new Capture();
  const stderr = new Capture();
  const status = await runCli(args, { stdout, stderr });
  return { status, stdout: stdout.text, stderr: stderr.text };
}

/** Runs the built `rcnn` binary as a child process (repository root as working directory). */
export function rcnnBinary(args: readonly string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RCNN_BIN, ...args], { cwd: REPO_ROOT, timeout: 120_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/**
 * Asserts a fatal CLI error: `status`, stderr ending in `rcnn <cmd>: error: <message>` and
 * `  hint: <hint>`, no stack trace. With `only`, those two lines are all of stderr.
 */
export function assertCliError(r: CliRun, status: number, message: RegExp, options: { hint?: RegExp; only?: boolean } = {}): void {
  assert.equal(r.status, status, `exit status ${r.status}; stderr:\n${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.ok(lines.length >= 2, `two lines on stderr: ${r.stderr}`);
  const [line, hint] = lines.slice(-2) as [string, string]; // two lines asserted just above
  assert.match(line, /^rcnn( \w+)?: error: \S/);
  assert.match(line, message);
  assert.match(hint, /^ {2}hint: \S/);
  if (options.hint) assert.match(hint, options.hint);
  if (options.only) assert.equal(lines.length, 2, `only the error and its hint on stderr:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(r.stderr, /internal error/, 'not an internal error');
}

const MASK = caseFiles('maskrcnn_tiny');
const MODEL = ['--config', MASK.config, '--weights', MASK.weights];

/** Every CLI case. */
export function cliCases(): ReliabilityCase[] {
  const cases: ReliabilityCase[] = [];
  const add = (name: string, run: (ctx: CaseContext) => Promise<void>): void => {
    cases.push({ category: 'cli', name, run });
  };

  // --- config ---
  add('unknown key via --set: names it, lists the keys, suggests one', async () => {
    const r = await rcnnInProcess(['predict', ...MODEL, '--set', 'MODEL.NUM_CLASES=3', MASK.image]);
    assertCliError(r, 1, /unknown config key MODEL\.NUM_CLASES; MODEL has: .*NUM_CLASSES/, { hint: /did you mean NUM_CLASSES\?/, only: true });
  });
  add('wrong type via --set: names the key and what it accepts', async () => {
    const r = await rcnnInProcess(['predict', ...MODEL, '--set', 'MODEL.NUM_CLASSES=five', MASK.image]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^rcnn predict: error: config key MODEL\.NUM_CLASSES must be an integer in \[2, 100000\], got "five"\n/);
  });
  add('MODEL.MASK_ON with MODEL.RPN_ONLY', async () => {
    const r = await rcnnInProcess(['predict', ...MODEL, '--set', 'MODEL.RPN_ONLY=true', MASK.image]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^rcnn predict: error: MODEL\.MASK_ON contradicts MODEL\.RPN_ONLY/);
  });
  add('missing config file', async (ctx) => {
    assertCliError(await rcnnInProcess(['predict', '--config', join(ctx.tmp.path, 'missing.yaml'), MASK.image]), 1, /config file .*missing\.yaml not found/, { hint: /check the path/, only: true });
  });
  add('invalid YAML config', async (ctx) => {
    const f = ctx.tmp.file('broken.yaml', 'MODEL: {NUM_CLASSES: [3\n');
    assertCliError(await rcnnInProcess(['predict', '--config', f, MASK.image]), 1, /config file .*broken\.yaml is not valid YAML/, {});
  });
  add('unknown preset: a suggestion', async () => {
    assertCliError(await rcnnInProcess(['predict', '--config', 'maskrcnn_resnet50', MASK.image]), 1, /unknown preset "maskrcnn_resnet50"/, { hint: /did you mean maskrcnn_resnet50_fpn\?/, only: true });
  });
  add('unknown registry name: the registered names', async () => {
    assertCliError(await rcnnInProcess(['predict', ...MODEL, '--set', 'FAST_RCNN.ROI_BOX_HEAD=my_head', MASK.image]), 1, /no RoI box head named "my_head" \(FAST_RCNN\.ROI_BOX_HEAD\)\. Registered RoI box head implementations: /, { only: true });
  });
  add('TEST.DETECTIONS_PER_IM above its bound', async () => {
    const r = await rcnnInProcess(['predict', ...MODEL, '--set', 'TEST.DETECTIONS_PER_IM=10001', MASK.image]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^rcnn predict: error: config key TEST\.DETECTIONS_PER_IM must be an integer in \[1, 10000\], got 10001\n/);
  });
  add('a config error through the built binary', async () => {
    const r = await rcnnBinary(['predict', ...MODEL, '--set', 'TEST.NMSS=0.3', MASK.image]);
    assertCliError(r, 1, /unknown config key TEST\.NMSS/, { hint: /did you mean NMS\?/, only: true });
  });

  // --- weights ---
  add('missing weights file', async (ctx) => {
    assertCliError(await rcnnInProcess(['predict', '--config', MASK.config, '--weights', join(ctx.tmp.path, 'w.safetensors'), MASK.image]), 1, /cannot read weights file .*w\.safetensors: no such file/, { only: true });
  });
  add('truncated safetensors', async (ctx) => {
    const f = ctx.tmp.file('cut.safetensors', readFileSync(MASK.weights).subarray(0, 5000));
    assertCliError(await rcnnInProcess(['predict', '--config', MASK.config, '--weights', f, MASK.image]), 1, /cut\.safetensors: .*(truncated|past the end)/);
  });
  add('Keypoint R-CNN weights with the Mask R-CNN config: key and shapes', async () => {
    const r = await rcnnInProcess(['predict', '--config', MASK.config, '--weights', caseFiles('keypointrcnn_tiny').weights, MASK.image]);
    assertCliError(r, 1, /tensor "roi_heads\.box_predictor\.cls_score\.weight" has shape \[2, 64\], expected \[5, 64\]/, { hint: /does not match the weights/, only: true });
  });
  add('NaN weights: refused; run with --non-finite warn', async (ctx) => {
    const t = readTensors(MASK.weights);
    const key = 'roi_heads.mask_predictor.mask_fcn_logits.weight';
    const old = t.get(key)!;
    const data = (old.data as Float32Array).slice();
    data[1] = Number.NaN;
    t.set(key, hostTensor('float32', old.dims, data));
    const f = ctx.tmp.file('nan.safetensors', writeSafetensors(t));
    assertCliError(await rcnnInProcess(['predict', '--config', MASK.config, '--weights', f, MASK.image]), 1, /nan\.safetensors: tensor "roi_heads\.mask_predictor\.mask_fcn_logits\.weight" holds NaN at flat index 1/, { only: true });
    const r = await rcnnInProcess(['predict', '--config', MASK.config, '--weights', f, '--non-finite', 'warn', MASK.image]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: .*"roi_heads\.mask_predictor\.mask_fcn_logits\.weight" holds NaN/);
    assertCliError(await rcnnInProcess(['predict', '--config', MASK.config, '--weights', f, '--non-finite', 'maybe', MASK.image]), 2, /--non-finite must be one of error, warn, ignore/);
  });
  for (const ext of ['pkl', 'pth'] as const) {
    add(`a pickle that would write a file (--weights evil.${ext}, built binary): refused, no file`, async (ctx) => {
      const target = join(ctx.tmp.path, `cli-owned-${ext}.txt`);
      const pickle = fileWritingPickle(target);
      const f = ctx.tmp.file(`evil.${ext}`, ext === 'pkl' ? pickle : torchArchive(pickle));
      const r = await rcnnBinary(['predict', '--config', MASK.config, '--weights', f, MASK.image]);
      assertCliError(r, 1, new RegExp(`evil\\.${ext}.*refers to global "builtins\\.open", which is not on the allow-list`), { only: true });
      assert.equal(existsSync(target), false, 'no file was written');
    });
  }

  // --- images and limits ---
  add('a corrupt image among good ones (built binary): its own error line, the others print, exit 1', async (ctx) => {
    const bad = ctx.tmp.file('broken.png', (await encode(pattern(80, 60, 2), 'png')).subarray(0, 300));
    const r = await rcnnBinary(['predict', ...MODEL, MASK.image, bad, MASK.image]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout.trim().split('\n').filter((l) => l.includes('image_0.png: ')).length, 2, `both good images reported:\n${r.stdout}`);
    assert.match(r.stderr, new RegExp(`rcnn predict: error: ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} cannot be decoded`));
    assert.match(r.stderr, /\n {2}hint: /);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });
  add('an image over LIMITS.MAX_IMAGE_SIDE: its own error naming the limit', async () => {
    const r = await rcnnInProcess(['predict', ...MODEL, '--set', 'LIMITS.MAX_IMAGE_SIDE=100', MASK.image]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /image_0\.png: image is 260 x 200, longer than LIMITS\.MAX_IMAGE_SIDE \(100\)/);
    assert.match(r.stderr, /hint: downscale the image, or raise LIMITS\.MAX_IMAGE_SIDE/);
  });
  add('--batch above LIMITS.MAX_BATCH', async () => {
    assertCliError(await rcnnInProcess(['predict', ...MODEL, '--batch', '33', MASK.image]), 1, /batch size 33 exceeds LIMITS\.MAX_BATCH \(32\)/, { hint: /raise LIMITS\.MAX_BATCH/, only: true });
  });
  add('--batch 0 and an unknown option: usage errors (exit 2)', async () => {
    assertCliError(await rcnnInProcess(['predict', ...MODEL, '--batch', '0', MASK.image]), 2, /--batch must be an integer >= 1, got "0"/);
    assertCliError(await rcnnInProcess(['predict', ...MODEL, '--weigths', 'x', MASK.image]), 2, /Unknown option '--weigths'/);
  });
  add('weights whose naming convention cannot be told: the hint names rcnn convert --from, not a library option', async (ctx) => {
    const tensors = new Map<string, PickleValue>([['my_layer.w', hostTensor('float32', [2], new Float32Array([1, 2]))]]);
    const f = ctx.tmp.file('unknown-names.pkl', writeNumpyPickle(new Map<string, PickleValue>([['model', tensors]]), 'py3'));
    const r = await rcnnInProcess(['predict', '--config', MASK.config, '--weights', f, MASK.image]);
    assertCliError(r, 1, /cannot tell the naming convention/, { hint: /rcnn convert .*--from torchvision\|detectron2\|detectron/, only: true });
    assert.doesNotMatch(r.stderr, /pass from:/);
  });
  add('a missing image: fails before the model is built', async (ctx) => {
    assertCliError(await rcnnInProcess(['predict', ...MODEL, join(ctx.tmp.path, 'nope.jpg')]), 1, /nope\.jpg/);
  });
  return cases;
}
