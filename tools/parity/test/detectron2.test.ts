/**
 * Detectron2 checkpoints give Detectron2's results, through the CLI exactly as a user runs it
 * (issue 21): `rcnn predict --config <case>/config.yaml --weights <case>/model_final.{pth,pkl}
 * --dump out.safetensors <image>`, one image per run as Detectron2's DefaultPredictor, against
 * `fixtures/d2/<case>/reference.safetensors` (see fixtures/d2/README.md): every det.* and the RPN
 * proposals within the inference parity tolerances ({@link compareDetectron2Image}).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type HostTensor, SLOTS, createContainer, decodeEntry, listImplementations, readSafetensorsFile } from '@rcnn/core';
import { findRepoRoot } from '@rcnn/testing';
import { BUILT_IN_PACKAGES, compareDetectron2Image } from '../src/index.js';

const run = promisify(execFile);
const root = findRepoRoot();
const cli = join(root, 'apps', 'cli', 'build', 'src', 'main.js');
const out = mkdtempSync(join(tmpdir(), 'rcnn-d2-'));
after(() => rmSync(out, { recursive: true, force: true }));

function load(path: string): Map<string, HostTensor> {
  const file = readSafetensorsFile(path);
  return new Map([...file.entries].map(([k, e]) => [k, decodeEntry(e, path)]));
}

const CASES = ['d2_maskrcnn_R50FPN_tiny_pub', 'd2_keypointrcnn_R50FPN_tiny_pub'] as const;

for (const name of CASES) {
  const dir = join(root, 'fixtures', 'd2', name);
  const reference = load(join(dir, 'reference.safetensors'));
  describe(`${name} through rcnn predict`, () => {
    for (const weights of ['model_final.pth', 'model_final.pkl']) {
      for (const image of [0, 1]) {
        it(`${weights}, image_${image}: every det.* and the proposals match Detectron2`, async () => {
          const dump = join(out, `${name}.${weights}.${image}.safetensors`);
          const args = ['predict', '--config', join(dir, 'config.yaml'), '--weights', join(dir, weights), '--dump', dump, '--dump-intermediates', '--threads', '1', join(dir, `image_${image}.png`)];
          const { stderr } = await run(process.execPath, [cli, ...args], { cwd: root, maxBuffer: 1 << 24 });
          // The weights' conventions are announced once, the ignored Detectron2 keys once.
          assert.equal(stderr.match(/are a detectron2 checkpoint: applying its conventions/g)?.length, 1, stderr);
          assert.equal(stderr.match(/is a Detectron2 config: .* ignored \(CUDNN_BENCHMARK, DATALOADER/g)?.length, 1, stderr);
          const verdicts = compareDetectron2Image(load(dump), reference, image);
          // boxes, resized boxes, proposals, and masks + mask probabilities or keypoints + their score column.
          assert.equal(verdicts.length, 5, verdicts.map((v) => v.name).join(', '));
          for (const v of verdicts) assert.ok(v.pass, `${v.name}: ${v.detail}`);
        });
      }
    }
  });
}

describe('the conventions travel with the weights', () => {
  const dir = join(root, 'fixtures', 'd2', 'd2_maskrcnn_R50FPN_tiny_pub');
  const check = async (args: readonly string[], dump: string, image: number): Promise<void> => {
    await run(process.execPath, [cli, ...args], { cwd: root, maxBuffer: 1 << 24 });
    const verdicts = compareDetectron2Image(load(dump), load(join(dir, 'reference.safetensors')), image);
    for (const v of verdicts) assert.ok(v.pass, `${v.name}: ${v.detail}`);
  };

  it('rcnn convert keeps them: predict with the converted safetensors and config.yaml matches Detectron2', async () => {
    const converted = join(out, 'converted.safetensors');
    await run(process.execPath, [cli, 'convert', join(dir, 'model_final.pkl'), converted], { cwd: root });
    const dump = join(out, 'converted-dump.safetensors');
    await check(['predict', '--config', join(dir, 'config.yaml'), '--weights', converted, '--dump', dump, '--dump-intermediates', join(dir, 'image_1.png')], dump, 1);
  });

  it('without --config, the checkpoint alone (plus the test size) matches Detectron2', async () => {
    const dump = join(out, 'no-config.safetensors');
    const size = ['--set', 'TEST.SCALE=320', '--set', 'TEST.MAX_SIZE=512'];
    await check(['predict', '--weights', join(dir, 'model_final.pth'), ...size, '--dump', dump, '--dump-intermediates', join(dir, 'image_0.png')], dump, 0);
  });
});

describe('docs/config.md', () => {
  it('lists every registered conv body name and alias (MODEL.CONV_BODY)', () => {
    const container = createContainer();
    for (const register of BUILT_IN_PACKAGES) register(container);
    const docs = readFileSync(join(root, 'docs', 'config.md'), 'utf8');
    const row = docs.split('\n').find((l) => l.startsWith('| `MODEL.CONV_BODY`')) ?? '';
    const names = listImplementations(container, SLOTS.convBody).flatMap((impl) => [impl.name, ...(impl.aliases ?? [])]);
    assert.ok(names.length >= 20);
    for (const name of names) assert.ok(row.includes(name), `MODEL.CONV_BODY row misses ${name}`);
  });
});
