/**
 * Turning storages and numpy buffers into core {@link HostTensor}s (row-major, little-endian), and
 * the row operations the name maps need (class-order permutations, background rows).
 */
import { DATA_TYPE_SIZE, type DataType, type HostTensor, type TensorArray, elementCount } from '@rcnn/core';
import { CheckpointError } from './errors.js';
import type { NdArrayRecord, TorchDType } from './pickle/allow-list.js';

/** Bytes per element of each host {@link DataType}. */
export const HOST_DTYPE_SIZE: Readonly<Record<DataType, number>> = DATA_TYPE_SIZE;

/** numpy type codes the reader decodes, with their host type. */
const NUMPY_CODES: Readonly<Record<string, DataType>> = {
  f4: 'float32',
  f2: 'float16',
  f8: 'float64',
  i8: 'int64',
  i4: 'int32',
  i1: 'int8',
  u1: 'uint8',
  b1: 'bool',
};

/** The raw little-endian bytes of a host tensor (a view, no copy). */
export function tensorBytes(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Wraps little-endian bytes (already row-major) as a host tensor; views when aligned, else copies. */
export function hostFromBytes(dtype: DataType, dims: readonly number[], bytes: Uint8Array): HostTensor {
  const size = HOST_DTYPE_SIZE[dtype];
  const b = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const len = b.byteLength / size;
  let data: TensorArray;
  switch (dtype) {
    case 'float32':
      data = new Float32Array(b.buffer, b.byteOffset, len);
      break;
    case 'float16':
      data = new Uint16Array(b.buffer, b.byteOffset, len);
      break;
    case 'float64':
      data = new Float64Array(b.buffer, b.byteOffset, len);
      break;
    case 'int64':
      data = new BigInt64Array(b.buffer, b.byteOffset, len);
      break;
    case 'int32':
      data = new Int32Array(b.buffer, b.byteOffset, len);
      break;
    case 'int8':
      data = new Int8Array(b.buffer, b.byteOffset, len);
      break;
    case 'uint8':
    case 'bool':
      data = b;
      break;
  }
  return { dtype, dims: [...dims], data } as HostTensor;
}

/**
 * Gathers a strided view (`offset`, `size`, `stride` in elements) of `storage` into contiguous
 * row-major bytes. Bounds were checked when the view was unpickled; they are checked again here
 * against the actual bytes, so a bug upstream cannot read outside the buffer.
 */
export function gatherStrided(storage: Uint8Array, elementSize: number, offset: number, size: readonly number[], stride: readonly number[], where: string): Uint8Array {
  const numel = elementCount(size);
  if (numel === 0) return new Uint8Array(0);
  let last = offset;
  for (let i = 0; i < size.length; i++) last += (size[i]! - 1) * stride[i]!;
  if ((last + 1) * elementSize > storage.byteLength) {
    throw new CheckpointError('view-out-of-bounds', `${where}: view reaches element ${last} but the storage holds ${storage.byteLength / elementSize}`);
  }
  // Contiguous row-major: one slice.
  let contiguous = true;
  let expect = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== expect) contiguous = false;
    expect *= size[i]!;
  }
  if (contiguous) return storage.subarray(offset * elementSize, (offset + numel) * elementSize);
  const out = new Uint8Array(numel * elementSize);
  const rank = size.length;
  const index = new Array<number>(rank).fill(0);
  let src = offset;
  for (let e = 0; e < numel; e++) {
    const from = src * elementSize;
    for (let k = 0; k < elementSize; k++) out[e * elementSize + k] = storage[from + k]!;
    // Odometer increment over the dims, last dim fastest.
    for (let d = rank - 1; d >= 0; d--) {
      index[d]!++;
      src += stride[d]!;
      if (index[d]! < size[d]!) break;
      src -= stride[d]! * size[d]!;
      index[d] = 0;
    }
  }
  return out;
}

/** Converts contiguous storage-typed bytes to a host tensor (bfloat16 is widened to float32, exactly). */
export function hostFromTorch(dtype: TorchDType, dims: readonly number[], bytes: Uint8Array): HostTensor {
  if (dtype !== 'bfloat16') return hostFromBytes(dtype, dims, bytes);
  const n = bytes.byteLength / 2;
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) bits[i] = (bytes[2 * i]! | (bytes[2 * i + 1]! << 8)) << 16;
  return { dtype: 'float32', dims: [...dims], data: out };
}

/** A numpy array as a host tensor, or the reason it cannot be one (unsupported dtype, object array). */
export function hostFromNdArray(arr: NdArrayRecord, where: string): HostTensor | { readonly unsupported: string } {
  if (!arr.built || !arr.dtype) return { unsupported: 'numpy array without data (never BUILT)' };
  if (arr.dtype.structured) return { unsupported: `structured numpy dtype ${arr.dtype.code}` };
  if (arr.data === undefined) return { unsupported: `numpy object array (dtype ${arr.dtype.code})` };
  const dtype = NUMPY_CODES[arr.dtype.code];
  if (!dtype) return { unsupported: `numpy dtype ${arr.dtype.byteOrder}${arr.dtype.code} (supported: ${Object.keys(NUMPY_CODES).join(', ')})` };
  const size = HOST_DTYPE_SIZE[dtype];
  if (arr.dtype.byteOrder === '>' && size > 1) {
    throw new CheckpointError('byte-order', `${where}: numpy array is big-endian (>${arr.dtype.code}); only little-endian weights are read`);
  }
  const numel = elementCount(arr.shape);
  if (arr.data.byteLength !== numel * size) {
    throw new CheckpointError(
      'storage-size',
      `${where}: numpy array of shape [${arr.shape.join(', ')}] and dtype ${arr.dtype.code} needs ${numel * size} bytes, its data has ${arr.data.byteLength}`,
    );
  }
  if (!arr.fortran || arr.shape.length < 2) return hostFromBytes(dtype, arr.shape, arr.data);
  // Fortran order: element (i0, i1, …) lives at i0 + i1*s0 + …; gather into row-major.
  const stride: number[] = [];
  let s = 1;
  for (const d of arr.shape) {
    stride.push(s);
    s *= d;
  }
  return hostFromBytes(dtype, arr.shape, gatherStrided(arr.data, size, 0, arr.shape, stride, where));
}

/** Rows of dim 0 reordered: output row r = input row `order[r]` (groups of `group` rows move together). */
export function permuteRows(t: HostTensor, order: readonly number[], group = 1): HostTensor {
  const rows = t.dims[0];
  if (order.length * group !== rows) throw new RangeError(`permutation of ${order.length} groups of ${group} does not cover ${rows} rows`);
  const src = tensorBytes(t);
  const rowBytes = src.byteLength / rows;
  const chunk = rowBytes * group;
  const out = new Uint8Array(src.byteLength);
  order.forEach((from, to) => out.set(src.subarray(from * chunk, (from + 1) * chunk), to * chunk));
  return hostFromBytes(t.dtype, t.dims, out);
}

/** `count` zero rows inserted before row 0 of dim 0. */
export function prependZeroRows(t: HostTensor, count: number): HostTensor {
  const src = tensorBytes(t);
  const rowBytes = t.dims[0] === 0 ? 0 : src.byteLength / t.dims[0]!;
  const out = new Uint8Array(src.byteLength + count * rowBytes);
  out.set(src, count * rowBytes);
  return hostFromBytes(t.dtype, [t.dims[0]! + count, ...t.dims.slice(1)], out);
}

/** The tensor without its first `count` rows of dim 0. */
export function dropLeadingRows(t: HostTensor, count: number): HostTensor {
  const src = tensorBytes(t);
  const rowBytes = src.byteLength / t.dims[0]!;
  return hostFromBytes(t.dtype, [t.dims[0]! - count, ...t.dims.slice(1)], src.slice(count * rowBytes));
}

/** A float32 tensor filled with `value`. */
export function filled(dims: readonly number[], value: number): HostTensor {
  return { dtype: 'float32', dims: [...dims], data: new Float32Array(elementCount(dims)).fill(value) };
}
