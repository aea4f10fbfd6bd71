/** Test helpers: feature-map inputs for an isolated RPN graph and per-image slicing of its outputs. */
import type { FeatureMap, GraphBuilder, HostTensor } from '@rcnn/core';
import { seededRandom } from '@rcnn/core';

/** FPN level of a torchvision feature name ('0'..'3' = P2..P5, 'pool' = P6). */
export function fpnLevel(name: string): number {
  return name === 'pool' ? 6 : 2 + Number(name);
}

/** Declares a graph input `backbone.<name>` [N,C,h,w] and returns it as a FeatureMap. */
export function featureInput(g: GraphBuilder, name: string, channels: number, level: number): FeatureMap {
  const blob = g.input(`backbone.${name}`, 'float32', ['N', channels, `h_${name}`, `w_${name}`]);
  return { name, blob, channels, spatialScale: 2 ** -level, level };
}

/** Rows [start, start+count) of image `i` of a padded [N,K,…] float tensor, as a [count,…] tensor. */
export function imageRows(t: HostTensor, i: number, count: number): HostTensor<'float32'> {
  const k = t.dims[1]!;
  const inner = t.dims.slice(2).reduce((a, b) => a * b, 1);
  const data = (t.data as Float32Array).slice(i * k * inner, (i * k + count) * inner);
  return { dtype: 'float32', dims: [count, ...t.dims.slice(2)], data };
}

/** The int64 entries of a tensor as numbers. */
export function ints(t: HostTensor): number[] {
  return Array.from(t.data as BigInt64Array, Number);
}

/** An int64 host tensor. */
export function int64Tensor(dims: readonly number[], values: readonly number[]): HostTensor<'int64'> {
  return { dtype: 'int64', dims, data: BigInt64Array.from(values, (v) => BigInt(v)) };
}

/** Core's seeded PRNG (mulberry32), for reproducible random test inputs. */
export const rng = seededRandom;

/** A float32 tensor of normal(0, std) values. */
export function randomTensor(dims: readonly number[], seed: number, std = 1): HostTensor<'float32'> {
  const r = rng(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = std * Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
  return { dtype: 'float32', dims, data };
}
