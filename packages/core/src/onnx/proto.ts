import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { encodeMessage } from '../internal/onnx-encode.js';

/** Path of the vendored ONNX schema shipped with this package (`proto/onnx.proto`). */
export const ONNX_PROTO_PATH: string = fileURLToPath(new URL('../../../proto/onnx.proto', import.meta.url));

let root: protobuf.Root | undefined;

/** The protobufjs root of the vendored ONNX schema, loaded once on first use. */
export function onnxRoot(): protobuf.Root {
  // keepCase: field names stay snake_case exactly as in onnx.proto.
  root ??= new protobuf.Root().loadSync(ONNX_PROTO_PATH, { keepCase: true });
  return root;
}

/** Encodes a plain-object ModelProto (field names as in onnx.proto) to bytes. */
export function encodeModelProto(model: Record<string, unknown>): Uint8Array {
  const type = onnxRoot().lookupType('onnx.ModelProto');
  const problem = type.verify(model);
  if (problem) throw new Error(`invalid ModelProto: ${problem}`);
  return encodeMessage(type, model);
}

/** Decodes ModelProto bytes to a plain object (int64 as numbers, bytes as Uint8Array). */
export function decodeModelProto(bytes: Uint8Array): Record<string, unknown> {
  const type = onnxRoot().lookupType('onnx.ModelProto');
  const message = type.decode(bytes);
  return type.toObject(message, { longs: Number, enums: Number, bytes: Uint8Array, defaults: false, arrays: true });
}
