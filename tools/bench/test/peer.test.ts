import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { defaultOrtNodeDir, timePeer } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'fake-peer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in for time_peer.js: same arguments, same one JSON line, a known busy time. */
function fakePeer(exitCode = 0): string {
  const tool = join(dir, `time_peer_${exitCode}.js`);
  writeFileSync(
    tool,
    `const a = process.argv.slice(2);
const runs = Number(a[a.indexOf('--runs') + 1]);
const check = a.includes('--check');
if (!process.env.ORT_NODE_DIR) throw new Error('ORT_NODE_DIR not passed');
const end = Date.now() + 150; while (Date.now() < end);
const res = { create_ms: 11, first_ms: 22, runs_ms: Array.from({ length: runs }, (_, i) => 30 + i), median_ms: 30, case: 'fake', threads: Number(a[a.indexOf('--threads') + 1]), detections: 7 };
if (check) res.check = { pass: ${exitCode === 0}, detections: { reference: 7, peer: 7 } };
process.stdout.write(JSON.stringify(res) + '\\n');
process.exitCode = ${exitCode};
`,
  );
  return tool;
}

describe('the baseline through time_peer.js', () => {
  it('passes the case, runs and threads, and adds peak RSS and the time to the first result', async () => {
    const r = await timePeer({ tool: fakePeer(), ortNodeDir: defaultOrtNodeDir() }, '/some/case', { runs: 3, threads: 2 });
    assert.equal(r.createMs, 11);
    assert.equal(r.firstMs, 22);
    assert.deepEqual(r.runsMs, [30, 31, 32]);
    assert.equal(r.detections, 7);
    assert.ok(r.peakRssMb > 10 && r.peakRssMb < 1000, String(r.peakRssMb));
    // The process was busy ~150 ms before printing; the timed runs are subtracted from its exit time.
    assert.ok(r.firstResultAtMs > 100 && r.firstResultAtMs < 5000, String(r.firstResultAtMs));
    assert.equal(r.check, undefined);
  });

  it('keeps the --check verdict, also when it fails (exit status 1)', async () => {
    const ok = await timePeer({ tool: fakePeer(0), ortNodeDir: defaultOrtNodeDir() }, '/c', { runs: 0, threads: 1, check: true });
    assert.equal(ok.check?.pass, true);
    const bad = await timePeer({ tool: fakePeer(1), ortNodeDir: defaultOrtNodeDir() }, '/c', { runs: 0, threads: 1, check: true });
    assert.equal(bad.check?.pass, false);
  });

  it('names a missing tool', async () => {
    await assert.rejects(timePeer({ tool: join(dir, 'nope.js'), ortNodeDir: '/x' }, '/c', { runs: 1, threads: 1 }), /peer tool .*nope\.js not found/);
  });
});
