/**
 * Reads the `metadata_props` of serialised ModelProto bytes without decoding the graph: a walk
 * over the top-level protobuf fields that skips everything but field 14. No protobuf schema, no
 * Node API — a browser page reads an exported model's config this way (onnxruntime-web does not
 * expose custom metadata).
 */
import { InputError } from '../errors.js';

/** ModelProto field number of `metadata_props` (repeated StringStringEntryProto). */
const METADATA_PROPS = 14;

class Reader {
  pos = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly end = bytes.byteLength,
  ) {}

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new InputError('ONNX model: truncated varint');
      const b = this.bytes[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new InputError('ONNX model: malformed varint');
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) {
      const length = this.varint(); // read first: `pos += varint()` would add to the old position
      this.pos += length;
    }
    else if (wire === 5) this.pos += 4;
    else throw new InputError(`ONNX model: unsupported protobuf wire type ${wire} at byte ${this.pos}`);
    if (this.pos > this.end) throw new InputError('ONNX model: truncated field');
  }
}

/**
 * The string key/value pairs of a model's `metadata_props` (rcnn-node writes `rcnn.config`,
 * `rcnn.kind`, `rcnn.host_postprocessors`; core's MODEL_METADATA). Throws an InputError for bytes
 * that are not a protobuf message.
 */
export function readModelMetadata(model: Uint8Array): Map<string, string> {
  const text = new TextDecoder();
  const r = new Reader(model);
  const out = new Map<string, string>();
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field !== METADATA_PROPS || wire !== 2) {
      r.skip(wire);
      continue;
    }
    const length = r.varint();
    const entry = new Reader(model, r.pos + length);
    entry.pos = r.pos;
    if (entry.end > r.end) throw new InputError('ONNX model: truncated metadata entry');
    let key = '';
    let value = '';
    while (entry.pos < entry.end) {
      const t = entry.varint();
      if (t === (1 << 3) + 2 || t === (2 << 3) + 2) {
        const n = entry.varint();
        const s = text.decode(model.subarray(entry.pos, entry.pos + n));
        entry.pos += n;
        if (t >> 3 === 1) key = s;
        else value = s;
      } else entry.skip(t % 8);
    }
    out.set(key, value);
    r.pos = entry.end;
  }
  return out;
}
