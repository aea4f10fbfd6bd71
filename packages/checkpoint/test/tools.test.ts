import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type HostTensor, readSafetensorsFile } from '@rcnn/core';
import { findRepoRoot, publicCaseDir } from '@rcnn/testing';
import { readCheckpoint } from '../src/index.js';

const out = mkdtempSync(join(tmpdir(), 'rcnn-weights-tool-'));
after(() => rmSync(out, { recursive: true, force: true }));

describe('tools/weights/export-fixture.mjs', () => {
  it('writes Detectron2- and Detectron-named .pkl files that load back to the fixture', () => {
    const script = join(findRepoRoot(), 'tools', 'weights', 'export-fixture.mjs');
    const stdout = execFileSync(process.execPath, [script, '--case', 'keypointrcnn_tiny', '--out', out], { encoding: 'utf8' });
    const paths = JSON.parse(stdout.trim().split('\n').pop()!) as { detectron2: string; detectron: string };
    const ref = readSafetensorsFile(join(publicCaseDir('keypointrcnn_tiny'), 'weights.safetensors'));
    const d2 = readCheckpoint(paths.detectron2);
    const c2 = readCheckpoint(paths.detectron, { affineChannel: 'frozen-bn' });
    assert.equal(d2.format, 'detectron2');
    assert.equal(c2.format, 'detectron');
    assert.deepEqual(c2.report.stateDictPath, ['blobs']);
    for (const r of [d2, c2]) assert.deepEqual([...r.tensors.keys()].sort(), [...ref.entries.keys()].sort());
    let identical = 0;
    for (const [key, entry] of ref.entries) {
      const same = (u: HostTensor): boolean => Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(entry.bytes));
      // Documented exceptions: Detectron2's missing background box rows; Detectron's folded norms.
      if (!key.startsWith('roi_heads.box_predictor.bbox_pred.')) assert.ok(same(d2.tensors.get(key)!), `detectron2 ${key}`);
      if (!/(\.bn\d|downsample\.1)\./.test(key)) assert.ok(same(c2.tensors.get(key)!), `detectron ${key}`);
      identical++;
    }
    assert.equal(identical, 143);
  });
});
