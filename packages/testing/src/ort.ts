/** Running built graphs in onnxruntime-node from tests. */
import type { HostTensor } from '@rcnn/core';
import ort from 'onnxruntime-node';

const ORT_TYPES = {
  float32: 'float32',
  int64: 'int64',
  int32: 'int32',
  uint8: 'uint8',
  bool: 'bool',
  float16: 'float16',
  float64: 'float64',
  int8: 'int8',
} as const;

/** Converts a host tensor to an ORT tensor (no copy). */
export function toOrtTensor(t: HostTensor): ort.Tensor {
  return new ort.Tensor(ORT_TYPES[t.dtype], t.data as never, [...t.dims]);
}

/** Converts an ORT tensor to a host tensor (no copy). */
export function fromOrtTensor(t: ort.Tensor): HostTensor {
  const dtype = t.type === 'float32' || t.type === 'int64' || t.type === 'int32' || t.type === 'uint8' || t.type === 'bool' ? t.type : undefined;
  if (!dtype) throw new Error(`unsupported ORT output type ${t.type}`);
  return { dtype, dims: [...t.dims], data: t.data as never } as HostTensor;
}

/** Creates a CPU session (single-threaded by default, for deterministic, quiet tests). */
export async function createTestSession(model: Uint8Array, threads = 1): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
}

/** Runs a model once with host-tensor feeds; returns every output as a host tensor. */
export async function runModel(model: Uint8Array | ort.InferenceSession, feeds: Readonly<Record<string, HostTensor>>): Promise<Map<string, HostTensor>> {
  const session = model instanceof Uint8Array ? await createTestSession(model) : model;
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrtTensor(v);
  const out = await session.run(ortFeeds);
  const result = new Map<string, HostTensor>();
  for (const [k, v] of Object.entries(out)) result.set(k, fromOrtTensor(v));
  if (model instanceof Uint8Array) await session.release();
  return result;
}
