import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import type { GraphBuilder, HostTensor } from '../src/index.js';

/** Runs a graph once on CPU with host-tensor feeds. */
export async function run(g: GraphBuilder, feeds: Record<string, HostTensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(g.toModelProto(), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(v.dtype as 'float32', v.data as Float32Array, [...v.dims]);
  const out = await session.run(ortFeeds);
  await session.release();
  return out;
}

export const f32 = (dims: number[], values: number[]): HostTensor => ({ dtype: 'float32', dims, data: Float32Array.from(values) });
export const i64 = (dims: number[], values: number[]): HostTensor => ({ dtype: 'int64', dims, data: BigInt64Array.from(values.map(BigInt)) });

/** fixtures/parity of the repository. */
export function fixturesDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'fixtures', 'parity'))) {
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('fixtures/parity not found');
    dir = up;
  }
  return join(dir, 'fixtures', 'parity');
}
