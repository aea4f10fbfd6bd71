import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { HostTensor } from '@rcnn/core';
import { PUBLIC_CASES, compareCase, loadParityCase, produceCaseTensors, publicCaseDir, runCase } from '@rcnn/testing';
import { BUILT_IN_PACKAGES } from '../src/index.js';
import { readSafetensorsFileEntries } from './weights-helpers.js';

const run = promisify(execFile);
const rcnnBin = createRequire(import.meta.url).resolve('@rcnn/cli/package.json').replace(/package\.json$/, 'build/src/main.js');

const failures = (verdicts: readonly { pass: boolean; name: string; detail: string }[]): string =>
  verdicts.filter((v) => !v.pass).map((v) => `${v.name}: ${v.detail}`).join('\n');

describe('parity through the runtime API', () => {
  for (const name of PUBLIC_CASES) {
    it(`${name}: every reference tensor within tolerance`, async () => {
      const outcome = await runCase(publicCaseDir(name), { register: BUILT_IN_PACKAGES });
      const c = outcome.case;
      assert.ok(outcome.verdicts.length >= 10, `${outcome.verdicts.length} checks`);
      // every reference tensor is judged exactly once (scores/labels together with their boxes)
      const covered = outcome.verdicts.flatMap((v) => v.covers);
      assert.deepEqual([...covered].sort(), [...c.referenceNames()].sort());
      assert.equal(failures(outcome.verdicts), '');
    });
  }

  it('fails when a produced tensor is off by more than the tolerance', async () => {
    const c = loadParityCase(publicCaseDir('maskrcnn_tiny'));
    const produced = await produceCaseTensors(c, { register: BUILT_IN_PACKAGES });
    const logits = produced.get('roi.class_logits')!;
    const bad = Float32Array.from(logits.data as Float32Array);
    bad[7]! += 0.01;
    produced.set('roi.class_logits', { ...logits, data: bad } as HostTensor);
    produced.delete('det.masks.0');
    const verdicts = compareCase(c, produced);
    const failed = verdicts.filter((v) => !v.pass).map((v) => v.name);
    assert.deepEqual(failed.sort(), ['det.masks.0', 'roi.class_logits']);
  });
});

describe('parity through `rcnn predict --dump --dump-intermediates`', () => {
  for (const name of PUBLIC_CASES) {
    it(`${name}: the CLI dump reproduces the reference`, async () => {
      const dir = publicCaseDir(name);
      const c = loadParityCase(dir);
      const out = join(mkdtempSync(join(tmpdir(), 'rcnn-parity-')), 'dump.safetensors');
      await run(process.execPath, [rcnnBin, 'predict', '--config', join(dir, 'case.json'), '--weights', join(dir, 'weights.safetensors'), '--batch', String(c.imagePaths.length), '--dump', out, '--dump-intermediates', ...c.imagePaths]);
      assert.equal(failures(compareCase(c, readSafetensorsFileEntries(out))), '');
    });
  }
});

describe('npm run parity: errors become error + hint', () => {
  const cli = join(import.meta.dirname, '..', 'src', 'cli.js');
  it('a box head type no registered package maps names the type and --plugin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rcnn-parity-unmapped-'));
    const source = publicCaseDir('maskrcnn_tiny');
    const json = JSON.parse(readFileSync(join(source, 'case.json'), 'utf8')) as { model: { box: { head: { type: string } } } };
    json.model.box.head.type = 'SomeNewHead';
    writeFileSync(join(dir, 'case.json'), JSON.stringify(json));
    for (const f of ['weights.safetensors', 'reference.safetensors', 'image_0.png']) copyFileSync(join(source, f), join(dir, f));
    const result = await run(process.execPath, [cli, dir]).then(
      () => assert.fail('the run must fail'),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    assert.equal(result.code, 1);
    assert.match(result.stdout, /error: .*box head type "SomeNewHead" is not mapped/);
    assert.match(result.stdout, /hint: .*--plugin/);
    assert.doesNotMatch(result.stdout + result.stderr, /^\s+at /m, 'no stack trace');
  });

  it('a --plugin that cannot be found is an error with a hint', async () => {
    const result = await run(process.execPath, [cli, publicCaseDir('maskrcnn_tiny'), '--plugin', './no-such-plugin.js']).then(
      () => assert.fail('the run must fail'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /error: plugin \.\/no-such-plugin\.js cannot be found\n\s+hint: /);
  });
});
