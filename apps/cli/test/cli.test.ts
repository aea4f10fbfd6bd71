import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { MODEL_INPUTS, decodeEntry, readSafetensorsFile, writeSafetensors } from '@rcnn/core';
import { decodeImage } from '@rcnn/runtime';
import { toyTransform } from '@rcnn/runtime/toy';
import { runModel } from '@rcnn/testing';
import { loadConfig } from '@rcnn/core';
import { toyConfig } from '@rcnn/runtime/toy';
import { runCli } from '../src/cli.js';
import type { Command } from '../src/command.js';
import { EXIT } from '../src/errors.js';
import { say } from '../src/io.js';
import { errorLines, rcnn, tempDir, writePhoto, writeToyConfig, writeToyWeights } from './helpers.js';

const dir = tempDir();
const TOY = ['--plugin', '@rcnn/runtime/toy'];
const config = writeToyConfig(dir);
const weights = writeToyWeights(dir);
const photo = await writePhoto(dir, 'photo.png');
const photo2 = await writePhoto(dir, 'second.png', 40, 70);

/** An error is two lines (message, hint), a non-zero status and no stack trace. */
function assertError(r: Awaited<ReturnType<typeof rcnn>>, status: number, message: RegExp, hint?: RegExp): void {
  assert.equal(r.status, status, `exit status; stderr: ${r.stderr}`);
  const [line, hintLine] = errorLines(r);
  assert.match(line, /^rcnn( \w+)?: error: /);
  assert.match(line, message);
  assert.match(hintLine, /^ {2}hint: \S/);
  if (hint) assert.match(hintLine, hint);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
}

describe('rcnn --help', () => {
  it('every command has --help (exit 0, its usage on stdout)', async () => {
    for (const command of ['predict', 'export', 'bench']) {
      for (const flag of ['--help', '-h']) {
        const r = await rcnn([command, flag]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^Usage: rcnn ${command}`));
      }
    }
    const global = await rcnn(['--help']);
    assert.equal(global.status, 0);
    assert.match(global.stdout, /Commands:\n {2}predict .*\n {2}export .*\n {2}bench /);
    assert.match((await rcnn(['help', 'export'])).stdout, /^Usage: rcnn export/);
    const none = await rcnn([]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /^Usage: rcnn <command>/);
    assert.match((await rcnn(['--version'])).stdout, /^\d+\.\d+\.\d+/);
  });
});

describe('rcnn errors: one line, a hint, a non-zero status', () => {
  it('a missing image file', async () => {
    assertError(await rcnn(['predict', ...TOY, '--config', config, join(dir, 'missing.png')]), 1, /cannot read image .*missing\.png: no such file/, /check the path/);
  });

  it('an unreadable image', async () => {
    const junk = join(dir, 'junk.png');
    writeFileSync(junk, 'this is not a png');
    const r = await rcnn(['predict', ...TOY, '--config', config, '--weights', weights, junk, photo]);
    assertError(r, 1, /junk\.png is not a readable image/, /supported formats/);
    assert.match(r.stdout, /photo\.png: \d+ detections?/, 'the readable image still gets its result');
  });

  it('an unknown preset', async () => {
    assertError(await rcnn(['predict', '--config', 'maskrcnn_resnet51_fpn', photo]), 1, /unknown preset "maskrcnn_resnet51_fpn"; presets: maskrcnn_resnet50_fpn, .*e2e_mask_rcnn_R-50-FPN_1x/, /did you mean maskrcnn_resnet50_fpn/);
  });

  it('an unknown device', async () => {
    assertError(await rcnn(['predict', ...TOY, '--config', config, '--device', 'tpu:0', photo]), 1, /unknown device "tpu:0"/, /cpu, .*cuda:all/);
  });

  it('weights that do not match the config', async () => {
    const five = writeToyConfig(dir, { mask: true, numClasses: 5 }, 'toy5.json');
    assertError(
      await rcnn(['predict', ...TOY, '--config', five, '--weights', weights, photo]),
      1,
      /toy\.safetensors: tensor "toy\.cls\.weight" has shape \[4, 8\], expected \[5, 8\]/,
      /config .* does not match the weights/,
    );
  });

  it('NaN weights: refused by default, run with --non-finite warn (one warning naming the tensor)', async () => {
    const store = readSafetensorsFile(weights);
    const tensors = new Map([...store.entries.keys()].map((k) => [k, decodeEntry(store.entries.get(k)!)] as const));
    const cls = tensors.get('toy.cls.weight')!;
    const data = (cls.data as Float32Array).slice();
    data[2] = Number.POSITIVE_INFINITY;
    tensors.set('toy.cls.weight', { ...cls, data } as typeof cls);
    const inf = join(dir, 'inf.safetensors');
    writeFileSync(inf, writeSafetensors(tensors));
    assertError(await rcnn(['predict', ...TOY, '--config', config, '--weights', inf, photo]), 1, /inf\.safetensors: tensor "toy\.cls\.weight" holds Inf at flat index 2/, /nonFinite/);
    const r = await rcnn(['predict', ...TOY, '--config', config, '--weights', inf, '--non-finite', 'warn', photo]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => /"toy\.cls\.weight" holds Inf/.test(l)).length, 1, r.stderr);
    assertError(await rcnn(['predict', ...TOY, '--config', config, '--weights', inf, '--non-finite', 'sometimes', photo]), 2, /--non-finite must be one of error, warn, ignore/);
  });

  it('a typed error without a hint of its own still gets a hint line (regression)', async () => {
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'MODEL: {NUM_CLASSES: [3\n');
    assertError(await rcnn(['predict', ...TOY, '--config', broken, photo]), 1, /broken\.yaml is not valid YAML/, /docs\/config\.md/);
    const cut = join(dir, 'cut.safetensors');
    writeFileSync(cut, readFileSync(weights).subarray(0, 40));
    assertError(await rcnn(['predict', ...TOY, '--config', config, '--weights', cut, photo]), 1, /cut\.safetensors: /, /weights file is complete/);
  });

  it('a weights file of unknown format, a missing weights file, a bad option value, an unknown option', async () => {
    const odd = join(dir, 'weights.bin');
    writeFileSync(odd, 'x');
    assertError(await rcnn(['predict', ...TOY, '--config', config, '--weights', odd, photo]), 1, /no reader for weights file .*weights\.bin/);
    assertError(await rcnn(['predict', ...TOY, '--config', config, '--weights', join(dir, 'nope.safetensors'), photo]), 1, /cannot read weights file .*nope\.safetensors: no such file/);
    assertError(await rcnn(['predict', ...TOY, '--config', config, '--batch', 'many', photo]), 2, /--batch must be an integer >= 1, got "many"/);
    assertError(await rcnn(['predict', '--frobnicate', photo]), 2, /Unknown option '--frobnicate'/, /rcnn predict --help/);
    assertError(await rcnn(['frobnicate']), 2, /unknown command "frobnicate"/);
    assertError(await rcnn(['predict', ...TOY, '--config', config, '--set', 'TEST.NMSS=0.3', photo]), 1, /unknown config key TEST\.NMSS/, /did you mean NMS\?/);
    assertError(await rcnn(['predict', '--plugin', './no-such-plugin.js', '--config', config, photo]), 2, /plugin \.\/no-such-plugin\.js cannot be found/);
  });
});

describe('rcnn predict', () => {
  it('writes COCO JSON, drawings and a dump with the fixtures\' names', async () => {
    const out = join(dir, 'results.json');
    const draw = join(dir, 'drawings');
    const dump = join(dir, 'dump.safetensors');
    const r = await rcnn(['predict', ...TOY, '--config', config, '--weights', weights, '--out', out, '--draw', draw, '--dump', dump, '--dump-intermediates', photo, photo2]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /photo\.png: \d+ detections?/);
    assert.match(r.stdout, /dump: \d+ tensors written/);
    assert.doesNotMatch(r.stderr, /RANDOM WEIGHTS/, 'weights were given');
    const doc = JSON.parse(readFileSync(out, 'utf8')) as { warning?: string; images: { file_name: string }[]; annotations: { bbox: number[]; segmentation: { counts: string } }[] };
    assert.equal(doc.warning, undefined);
    assert.deepEqual(doc.images.map((i) => i.file_name), [photo, photo2]);
    assert.ok(doc.annotations.length > 0 && typeof doc.annotations[0]!.segmentation.counts === 'string');
    assert.ok(existsSync(join(draw, 'photo.png')) && existsSync(join(draw, 'second.png')));
    const file = readSafetensorsFile(dump);
    for (const name of ['transform.images', 'transform.image_sizes', 'backbone.0', 'rpn.proposals.1', 'roi.box_features', 'det.boxes.0', 'det.labels.1', 'det.masks.0', 'det.mask_probs.1']) {
      assert.ok(file.entries.has(name), `dump has ${name}`);
    }
    assert.equal(file.entries.get('det.labels.0')!.dtype, 'I64');
    assert.equal(file.entries.get('det.masks.0')!.dtype, 'U8');
  });

  it('says loudly when the weights are random', async () => {
    const out = join(dir, 'random.json');
    const r = await rcnn(['predict', ...TOY, '--config', config, '--out', out, photo]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /RANDOM WEIGHTS/);
    assert.match(JSON.parse(readFileSync(out, 'utf8')).warning, /RANDOM WEIGHTS/);
  });

  it('falls back to CPU with one warning when CUDA is unavailable, and --strict fails', async () => {
    const r = await rcnn(['predict', ...TOY, '--config', config, '--weights', weights, '--device', 'cuda:0', photo]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => /CUDA/.test(l)).length, 1, `one warning line: ${r.stderr}`);
    assert.match(r.stdout, /\[cuda:0→cpu /);
    assertError(await rcnn(['predict', ...TOY, '--config', config, '--weights', weights, '--device', 'cuda:0', '--strict', photo]), 1, /cuda:0: onnxruntime cannot use CUDA .* strict mode/, /Enabling CUDA/);
  });
});

describe('rcnn export', () => {
  it('writes an ONNX model that gives the same detections in a fresh session as rcnn predict', async () => {
    const model = join(dir, 'toy.onnx');
    const r = await rcnn(['export', ...TOY, '--config', config, '--weights', weights, '--out', model]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /inputs:\n {2}images +float32 +\[N, 3, H, W\]/);
    assert.match(r.stdout, /host post-processing the client must do: Toy\.paste_masks/);
    const dump = join(dir, 'predict.safetensors');
    assert.equal((await rcnn(['predict', ...TOY, '--config', config, '--weights', weights, '--dump', dump, photo, photo2])).status, 0);
    const predicted = readSafetensorsFile(dump);

    const cfg = loadConfig({ layers: [toyConfig({ mask: true })] });
    const limits = { maxPixels: 1e8, maxSide: 1e5 };
    const batch = toyTransform.prepare([await decodeImage(photo, limits), await decodeImage(photo2, limits)], cfg);
    const out = await runModel(readFileSync(model), {
      [MODEL_INPUTS.images]: batch.images,
      [MODEL_INPUTS.imageSizes]: batch.imageSizes,
      [MODEL_INPUTS.originalSizes]: batch.originalSizes,
    });
    const index = Array.from(out.get('det.batch_index')!.data as BigInt64Array, Number);
    for (const i of [0, 1]) {
      const rows = index.flatMap((b, k) => (b === i ? [k] : []));
      assert.ok(rows.length > 0, `image ${i} has detections`);
      for (const [name, width] of [
        ['det.boxes', 4],
        ['det.scores', 1],
      ] as const) {
        const all = out.get(name)!.data as Float32Array;
        const fresh = rows.flatMap((k) => Array.from(all.subarray(k * width, (k + 1) * width)));
        assert.deepEqual(fresh, Array.from(decodeEntry(predicted.entries.get(`${name}.${i}`)!).data as Float32Array), `${name}.${i}`);
      }
    }
  });
});

describe('rcnn bench', () => {
  it('times the model, prints per-stage times and percentiles, and writes JSON and self-contained HTML', async () => {
    const json = join(dir, 'bench.json');
    const html = join(dir, 'bench.html');
    const r = await rcnn(['bench', ...TOY, '--config', config, '--runs', '2', '--json', json, '--html', html, photo, photo2]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /RANDOM WEIGHTS/);
    assert.match(r.stdout, /decode +preprocess +session run +thread transfer +post-process +total/);
    assert.match(r.stdout, /latency p50 [\d.]+ s {2}p95 [\d.]+ s {2}[\d.]+ images\/s/);
    const report = JSON.parse(readFileSync(json, 'utf8')) as { measurements: unknown[]; total: { latencyMs: { p50: number } }; model: { randomWeights: boolean } };
    assert.equal(report.measurements.length, 4);
    assert.ok(report.total.latencyMs.p50 > 0);
    assert.equal(report.model.randomWeights, true);
    const page = readFileSync(html, 'utf8');
    assert.match(page, /<svg /);
    assert.doesNotMatch(page, /<(script|link|img|iframe)\b|\b(src|href)=|url\(/, 'no external assets');
  });

  it('times a baseline model on the same images, alternating, and prints the ratio', async () => {
    const model = join(dir, 'baseline.onnx');
    assert.equal((await rcnn(['export', ...TOY, '--config', config, '--out', model])).status, 0);
    const r = await rcnn(['bench', ...TOY, '--config', config, '--runs', '1', '--warmup', '0', '--baseline', model, '--no-report', photo]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /baseline .*baseline\.onnx \(rcnn input\): p50 [\d.]+ s vs rcnn-node [\d.]+ s/);
    assert.match(r.stdout, /ratio baseline \/ rcnn-node: [\d.]+/);
  });

  it('--explain-placement reports where every node ran, per replica (CUDA requested: fallback named)', async () => {
    const r = await rcnn(['bench', ...TOY, '--config', config, '--explain-placement', '--device', 'cpu,cuda:0', photo]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /replica 0: cpu → onnxruntime provider cpu\n {2}CPUExecutionProvider: (\d+) of \1 nodes/);
    assert.match(r.stdout, /replica 1: cuda:0 → onnxruntime provider cpu \(fallback: .+\)/);
    assert.equal(r.stdout.match(/CPUExecutionProvider: \d+ of \d+ nodes/g)?.length, 2);
  });
});

describe('a reader that leaves stdout while the last write is in flight', () => {
  it('ends with the quiet broken-pipe status, not success (the EPIPE arrives after the command returned)', async () => {
    // A pipe whose reader has gone: the write is accepted, its EPIPE comes back on a later tick.
    const stdout = new Writable({
      write(_chunk, _encoding, callback) {
        setImmediate(() => callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })));
      },
    });
    let stderr = '';
    const stderrStream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        stderr += chunk.toString();
        callback();
      },
    });
    const printsAndReturns: Command = {
      name: 'print',
      summary: 'prints one line',
      help: 'Usage: rcnn print',
      options: {},
      positionals: false,
      run: (_values, _positionals, io) => {
        say(io, 'a line nobody reads');
        return Promise.resolve(EXIT.ok);
      },
    };
    const status = await runCli(['print'], { stdout, stderr: stderrStream }, [printsAndReturns]);
    assert.equal(status, EXIT.brokenPipe, stderr);
    assert.equal(stderr, '', 'a closed stdout is a quiet stop');
  });

  it('a command that wrote nothing is not affected by the flush', async () => {
    const stdout = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    const quiet: Command = { name: 'quiet', summary: 'prints nothing', help: 'Usage: rcnn quiet', options: {}, positionals: false, run: () => Promise.resolve(EXIT.ok) };
    assert.equal(await runCli(['quiet'], { stdout, stderr: stdout }, [quiet]), EXIT.ok);
  });
});
