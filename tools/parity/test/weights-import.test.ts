/**
 * Weight import end to end: a fixture's weights renamed to Detectron2's and Detectron's
 * conventions (tools/weights/export-fixture.mjs), loaded by `rcnn predict --weights` directly and
 * converted by `rcnn convert`, reproduce the fixture's outputs where the semantics are the same.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { findRepoRootOrThrow, readSafetensorsFileEntries } from './weights-helpers.js';
import { type HostTensor, createContainer } from '@rcnn/core';
import { BUILT_IN_PACKAGES } from '../src/index.js';
import { type ParityCase, compareCase, loadParityCase, publicCaseDir } from '@rcnn/testing';

const run = promisify(execFile);
const rcnnBin = createRequire(import.meta.url).resolve('@rcnn/cli/package.json').replace(/package\.json$/, 'build/src/main.js');
const exportTool = join(findRepoRootOrThrow(), 'tools', 'weights', 'export-fixture.mjs');

/**
 * Detectron2 has no background rows in bbox_pred nor a background mask channel: converted weights
 * give zeros there. Those columns feed nothing (torchvision drops class 0 before decoding and
 * selects the predicted class's mask), so the reference is compared with them zeroed.
 */
function withoutBackground(c: ParityCase): ParityCase {
  const zeroed = (name: string): HostTensor => {
    const t = c.reference(name);
    const data = Float32Array.from(t.data as Float32Array);
    const rows = t.dims[0]!;
    const per = data.length / rows;
    const background = name === 'roi.box_regression' ? 4 : per / t.dims[1]!;
    for (let r = 0; r < rows; r++) data.fill(0, r * per, r * per + background);
    return { ...t, data } as HostTensor;
  };
  return { ...c, reference: (name) => (name === 'roi.box_regression' || name === 'roi.mask_logits' ? zeroed(name) : c.reference(name)) };
}

async function predictDump(caseName: string, weights: string, extra: readonly string[] = [], adapt: (c: ParityCase) => ParityCase = (c) => c): Promise<string> {
  const dir = publicCaseDir(caseName);
  const container = createContainer();
  for (const register of BUILT_IN_PACKAGES) register(container);
  const c = adapt(loadParityCase(dir, { container }));
  const out = join(mkdtempSync(join(tmpdir(), 'rcnn-import-')), 'dump.safetensors');
  await run(process.execPath, [rcnnBin, 'predict', '--config', join(dir, 'case.json'), '--weights', weights, '--batch', String(c.imagePaths.length), '--dump', out, '--dump-intermediates', ...extra, ...c.imagePaths]);
  const failed = compareCase(c, readSafetensorsFileEntries(out)).filter((v) => !v.pass);
  return failed.map((v) => `${v.name}: ${v.detail}`).join('\n');
}

describe('weights import through the CLI', () => {
  it('rcnn convert turns the fixture .pth into a safetensors file equal to the fixture weights', async () => {
    const dir = publicCaseDir('keypointrcnn_tiny');
    const out = join(mkdtempSync(join(tmpdir(), 'rcnn-convert-')), 'w.safetensors');
    const { stdout } = await run(process.execPath, [rcnnBin, 'convert', join(dir, 'weights.pth'), out]);
    assert.match(stdout, /wrote .*w\.safetensors \(143 tensors\)/);
    const converted = readSafetensorsFileEntries(out);
    const original = readSafetensorsFileEntries(join(dir, 'weights.safetensors'));
    assert.deepEqual([...converted.keys()], [...original.keys()]);
    for (const [k, t] of original) assert.deepEqual(Buffer.from(converted.get(k)!.data.buffer, converted.get(k)!.data.byteOffset, converted.get(k)!.data.byteLength), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), k);
  });

  it('loads the fixture .pth directly with --weights and reproduces the reference', async () => {
    assert.equal(await predictDump('keypointrcnn_tiny', join(publicCaseDir('keypointrcnn_tiny'), 'weights.pth')), '');
  });

  for (const caseName of ['maskrcnn_tiny', 'fasterrcnn_tiny_c4'] as const) {
    it(`${caseName}: Detectron2- and Detectron-named renamings reproduce the reference`, async () => {
      const out = mkdtempSync(join(tmpdir(), 'rcnn-export-'));
      await run(process.execPath, [exportTool, '--case', caseName, '--out', out]);
      // Detectron2 names: same semantics as torchvision once renamed (class order is mapped back).
      assert.equal(await predictDump(caseName, join(out, `${caseName}.detectron2.pkl`), [], withoutBackground), '');
      // Detectron names: FrozenBN stored folded as AffineChannel; only the norm convention differs.
      assert.equal(await predictDump(caseName, join(out, `${caseName}.detectron.pkl`), ['--set', 'RESNETS.NORM=AffineChannel']), '');
      // and rcnn convert gives the same as loading directly
      const converted = join(out, 'converted.safetensors');
      await run(process.execPath, [rcnnBin, 'convert', join(out, `${caseName}.detectron2.pkl`), converted, '--from', 'detectron2']);
      assert.equal(await predictDump(caseName, converted, [], withoutBackground), '');
    });
  }

  it('refuses an unknown --from with a one-line error and a hint', async () => {
    await assert.rejects(run(process.execPath, [rcnnBin, 'convert', 'a.pth', 'b.safetensors', '--from', 'caffe']), (e: { code: number; stderr: string }) => e.code !== 0 && /unknown --from "caffe"/.test(e.stderr));
  });
});
