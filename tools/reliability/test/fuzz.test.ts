/**
 * Bounded fuzzing (src/fuzz): every target with a fixed seed and a few hundred inputs. Any error
 * that is not an rcnn-node typed error, a broken invariant or a hang fails the test with the
 * shrunk input. `node tools/reliability/build/src/long.js --fuzz-runs N` runs many more.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { tempDir } from '../src/common.js';
import { formatOutcomes, runFuzz } from '../src/fuzz/run.js';
import { fuzzTargets } from '../src/fuzz/targets.js';

const RUNS: Readonly<Record<string, number>> = {
  'safetensors-mutation': 400,
  'safetensors-header': 400,
  'checkpoint-pth-bytes': 150,
  'checkpoint-pth-pickle': 200,
  'checkpoint-pkl': 300,
  'pickle-opcodes': 400,
  'config-document': 400,
  'config-set': 400,
  'image-decode': 300,
  'api-options': 400,
  'api-predict': 200,
};

const dir = tempDir();
after(() => dir.remove());
const targets = await fuzzTargets(dir.path);

describe('fuzzing (seed 42)', () => {
  it('covers every target', () => {
    assert.deepEqual(targets.map((t) => t.name).sort(), Object.keys(RUNS).sort());
  });
  for (const target of targets) {
    it(`${target.name}: only typed errors, no broken invariant, no hang`, async () => {
      const report = await runFuzz(target, { runs: RUNS[target.name], seed: 42 }).finally(() => target.close?.());
      assert.equal(report.bug, undefined, report.bug && `bug: ${report.bug.error}\ninput: ${report.bug.input}\nreplay path: ${report.bug.path}`);
      assert.equal(report.runs, RUNS[target.name]);
      const total = Object.values(report.outcomes).reduce((a, b) => a + b, 0);
      assert.equal(total, report.runs, `every run counted: ${formatOutcomes(report.outcomes)}`);
      // The mutations must exercise the error paths; a target whose inputs all pass would test nothing.
      assert.ok(Object.keys(report.outcomes).some((k) => k !== 'ok'), `some inputs were refused: ${formatOutcomes(report.outcomes)}`);
    });
  }
});
