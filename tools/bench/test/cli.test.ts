import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { publicCaseDir } from '@rcnn/testing';
import { type CaseReport, runNode } from '../src/index.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'bench-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the perf bench end to end (tiny fixture)', () => {
  it('times rcnn-node and a baseline alternately, in separate processes, and writes JSON and Markdown', async () => {
    // A stand-in baseline that answers like time_peer.js.
    const peer = join(dir, 'peer.js');
    writeFileSync(peer, "const a=process.argv.slice(2);const r=Number(a[a.indexOf('--runs')+1]);process.stdout.write(JSON.stringify({create_ms:5,first_ms:50,runs_ms:Array.from({length:r},()=>40),median_ms:40,detections:16})+'\\n');\n");
    const json = join(dir, 'report.json');
    const md = join(dir, 'report.md');
    const out = await runNode([cli, '--sections', 'steady', '--rounds', '2', '--runs', '1', '--peer-tool', peer, '--json', json, '--markdown', md, publicCaseDir('maskrcnn_tiny')], { timeoutMs: 120_000 });
    assert.match(out.stderr, /round 1\/2 A rcnn-node[\s\S]*round 1\/2 B baseline[\s\S]*round 2\/2 A rcnn-node[\s\S]*round 2\/2 B baseline/);
    assert.match(out.stdout, /steady-state time per image +[\d.]+ ms +40\.0 ms +[\d.]+x/);
    assert.match(out.stdout, /peak RSS +\d+ MB/);
    const report = JSON.parse(readFileSync(json, 'utf8')) as { reports: CaseReport[] };
    const r = report.reports[0]!;
    assert.equal(r.name, 'maskrcnn_tiny');
    assert.equal(r.rcnn.steady.length, 2);
    assert.equal(r.peer!.steady.length, 2);
    assert.ok(r.rcnn.steady.every((s) => s.detections === 16 && s.runs.length === 1 && s.peakRssMb > 50));
    assert.match(readFileSync(md, 'utf8'), /## maskrcnn_tiny/);
  });

  it('profiles rcnn-node, counts FLOPs, checks outputs against the reference and probes a conv', async () => {
    const out = await runNode([cli, '--no-peer', '--sections', 'profile,conv', '--probe', '16,32,32', publicCaseDir('maskrcnn_tiny')], { timeoutMs: 120_000 });
    assert.match(out.stdout, /forward: [\d.]+ GFLOP \(conv [\d.]+, deconv [\d.]+, gemm [\d.]+/);
    assert.match(out.stdout, /one 3x3 conv 0\.0 GFLOP: \d+ GFLOP\/s/);
    assert.match(out.stdout, /ORT profile, rcnn-node .*Conv [\d.]+%.*outside Conv\/ConvTranspose\/Gemm kernels: [\d.]+%/);
    assert.match(out.stdout, /ok det\.boxes\.0 \(\+scores, labels\) \(16 detections, 0 unmatched/);
    assert.match(out.stdout, /ok det\.masks\.0/);
  });

  it('--explain-placement reports each node\'s execution provider (CPU here: no CUDA provider libraries)', async () => {
    const out = await runNode([cli, '--explain-placement', 'cuda:0', publicCaseDir('maskrcnn_tiny')], { timeoutMs: 120_000 });
    assert.match(out.stdout, /node placement on cuda:0 \(float32\), session provider (cpu|cuda)/);
    // Either the CUDA provider ran (a GPU machine: nodes per provider) or the reason it could not.
    assert.match(out.stdout, /CUDAExecutionProvider: \d+ of \d+ nodes|onnxruntime could not use cuda:0: .+\nCPUExecutionProvider: (\d+) of \1 nodes/);
  });

  it('rejects an unknown section with the known ones', async () => {
    await assert.rejects(runNode([cli, '--sections', 'bogus', publicCaseDir('maskrcnn_tiny')]), /unknown section\(s\) bogus; known: steady, profile, conv, throughput/);
  });
});
