/** Element types the graph builder can declare, by their TypeScript-friendly names. */
export type DataType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

/** ONNX `TensorProto.DataType` code of each {@link DataType}. */
export const ONNX_DATA_TYPE: Readonly<Record<DataType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

/** Bytes per element of each {@link DataType}. */
export const DATA_TYPE_SIZE: Readonly<Record<DataType, number>> = {
  float32: 4,
  float16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Typed-array storage used for each {@link DataType} on the host (float16 as raw bits). */
export interface TypedArrayOf {
  float32: Float32Array;
  float16: Uint16Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

/** Any host array a tensor may be stored in. */
export type TensorArray = TypedArrayOf[DataType];

/** A dense host tensor: element type, dimensions and row-major data. */
export interface HostTensor<D extends DataType = DataType> {
  readonly dtype: D;
  readonly dims: readonly number[];
  readonly data: TypedArrayOf[D];
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Builds a {@link HostTensor}, checking that the data length matches the dimensions. */
export function hostTensor<D extends DataType>(dtype: D, dims: readonly number[], data: TypedArrayOf[D]): HostTensor<D> {
  const n = elementCount(dims);
  if (data.length !== n) {
    throw new RangeError(`tensor of shape [${dims.join(', ')}] needs ${n} ${dtype} elements, got ${data.length}`);
  }
  return { dtype, dims: [...dims], data };
}
