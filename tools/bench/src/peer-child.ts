/**
 * Child process that profiles the peer (`<case>/peer.onnx`) with onnxruntime's profiler, using
 * time_peer.cjs's session options (CPU, intra-op threads, inter-op 1, sequential, optimisation
 * `all`) and its input (`input.f32`, one CHW image). One warm-up run, then the profiled runs.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOrtProfile } from '@rcnn/runtime';
import ort from 'onnxruntime-node';
import { reportResult } from './child.js';
import { medianOpTimes } from './profile-runs.js';
import type { PeerProfile } from './peer.js';

async function main(): Promise<void> {
  const { caseDir, threads, runs } = JSON.parse(process.argv[2] ?? '{}') as { caseDir: string; threads: number; runs: number };
  const caseJson = JSON.parse(readFileSync(join(caseDir, 'case.json'), 'utf8')) as { images: { height: number; width: number }[] };
  const first = caseJson.images[0];
  if (!first) throw new Error(`${join(caseDir, 'case.json')} lists no images`);
  const { height, width } = first;
  const raw = readFileSync(join(caseDir, 'input.f32'));
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const dir = mkdtempSync(join(tmpdir(), 'peer-profile-'));
  try {
    const session = await ort.InferenceSession.create(join(caseDir, 'peer.onnx'), {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      enableProfiling: true,
      profileFilePrefix: join(dir, 'peer'),
    });
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', data, [3, height, width]) };
    await session.run(feeds);
    for (let i = 0; i < runs; i++) await session.run(feeds);
    session.endProfiling();
    await session.release();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('onnxruntime wrote no profile');
    const result: PeerProfile = medianOpTimes(await readOrtProfile(join(dir, file)), runs);
    reportResult(result);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
