/**
 * A protobuf encoder driven by protobufjs's reflection of the vendored ONNX schema that writes a
 * message into one buffer allocated at its final size. protobufjs's own Writer queues every field
 * and copies each `bytes` field again when it finishes, which takes ~350 ms for an R-50-FPN model
 * (178 MB of initializers) — a third of a detector's start-up; this encoder copies each
 * initializer's bytes once (~70 ms). It writes what protobufjs writes (same wire types, packed
 * only where the schema says so, fields in field-number order), so either decodes to the same
 * message.
 */
import type protobuf from 'protobufjs';

type Message = Readonly<Record<string, unknown>>;

const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

const VARINT_TYPES = new Set(['int32', 'int64', 'uint32', 'uint64', 'bool', 'sint32', 'sint64']);
const FIXED32_TYPES = new Set(['float', 'fixed32', 'sfixed32']);
const FIXED64_TYPES = new Set(['double', 'fixed64', 'sfixed64']);

/** Wire type of a (non-packed) value of a field. */
function wireType(field: protobuf.Field): number {
  if (field.resolvedType && 'fieldsArray' in field.resolvedType) return WIRE.bytes;
  if (field.resolvedType) return WIRE.varint; // enum
  if (VARINT_TYPES.has(field.type)) return WIRE.varint;
  if (FIXED32_TYPES.has(field.type)) return WIRE.fixed32;
  if (FIXED64_TYPES.has(field.type)) return WIRE.fixed64;
  if (field.type === 'string' || field.type === 'bytes') return WIRE.bytes;
  throw new Error(`protobuf encoder: unsupported field type ${field.type} of ${field.fullName}`);
}

/** A varint's value as a non-negative bigint (negative int32/int64 are 64-bit two's complement, as protobuf encodes them). */
function varintValue(v: unknown, field: protobuf.Field): bigint | number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`protobuf encoder: ${field.fullName} = ${v} is not an integer`);
    return v >= 0 && v <= Number.MAX_SAFE_INTEGER ? v : BigInt.asUintN(64, BigInt(v));
  }
  if (typeof v === 'bigint') return BigInt.asUintN(64, v);
  throw new Error(`protobuf encoder: ${field.fullName} expects an integer, got ${typeof v}`);
}

function varintSize(v: bigint | number): number {
  if (typeof v === 'number') {
    let n = 1;
    while (v >= 128) {
      v = Math.floor(v / 128);
      n++;
    }
    return n;
  }
  let n = 1;
  while (v >= 128n) {
    v >>= 7n;
    n++;
  }
  return n;
}

/** UTF-8 length of a string without encoding it. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const sortedFields = new WeakMap<protobuf.Type, protobuf.Field[]>();

/** The fields of `type`, resolved, in field-number order (the order protobufjs writes them in). */
function fieldsOf(type: protobuf.Type): protobuf.Field[] {
  let fields = sortedFields.get(type);
  if (!fields) {
    fields = [...type.fieldsArray].sort((a, b) => a.id - b.id);
    for (const f of fields) f.resolve();
    sortedFields.set(type, fields);
  }
  return fields;
}

/** Two passes over a message tree: sizes (memoised per message object), then the bytes. */
class Encoder {
  private readonly sizes = new Map<Message, number>();
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  private readonly text = new TextEncoder();

  encode(type: protobuf.Type, message: Message): Uint8Array {
    const size = this.messageSize(type, message);
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
    this.writeMessage(type, message);
    if (this.pos !== size) throw new Error(`protobuf encoder: wrote ${this.pos} bytes, computed ${size}`);
    return this.buf;
  }

  private valueSize(field: protobuf.Field, v: unknown): number {
    const t = field.resolvedType;
    if (t && 'fieldsArray' in t) {
      const n = this.messageSize(t, v as Message);
      return varintSize(n) + n;
    }
    switch (wireType(field)) {
      case WIRE.varint:
        return varintSize(varintValue(v, field));
      case WIRE.fixed32:
        return 4;
      case WIRE.fixed64:
        return 8;
      default: {
        const n = typeof v === 'string' ? utf8Length(v) : (v as Uint8Array).byteLength;
        return varintSize(n) + n;
      }
    }
  }

  private messageSize(type: protobuf.Type, message: Message): number {
    const cached = this.sizes.get(message);
    if (cached !== undefined) return cached;
    let size = 0;
    for (const field of fieldsOf(type)) {
      const v = message[field.name];
      if (v === undefined || v === null) continue;
      const tag = varintSize(field.id << 3);
      if (field.repeated) {
        const list = v as readonly unknown[];
        if (list.length === 0) continue;
        if (field.packed && wireType(field) !== WIRE.bytes) {
          let body = 0;
          for (const x of list) body += this.valueSize(field, x);
          size += tag + varintSize(body) + body;
        } else {
          for (const x of list) size += tag + this.valueSize(field, x);
        }
      } else {
        size += tag + this.valueSize(field, v);
      }
    }
    this.sizes.set(message, size);
    return size;
  }

  private varint(v: bigint | number): void {
    if (typeof v === 'number') {
      while (v >= 128) {
        this.buf[this.pos++] = (v % 128) | 128;
        v = Math.floor(v / 128);
      }
      this.buf[this.pos++] = v;
      return;
    }
    while (v >= 128n) {
      this.buf[this.pos++] = Number(v & 127n) | 128;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  private writeValue(field: protobuf.Field, v: unknown): void {
    const t = field.resolvedType;
    if (t && 'fieldsArray' in t) {
      this.varint(this.sizes.get(v as Message)!);
      this.writeMessage(t, v as Message);
      return;
    }
    switch (wireType(field)) {
      case WIRE.varint:
        this.varint(varintValue(v, field));
        return;
      case WIRE.fixed32:
        if (field.type === 'float') this.view.setFloat32(this.pos, v as number, true);
        else this.view.setUint32(this.pos, v as number, true);
        this.pos += 4;
        return;
      case WIRE.fixed64:
        this.view.setFloat64(this.pos, v as number, true);
        this.pos += 8;
        return;
      default:
        if (typeof v === 'string') {
          this.varint(utf8Length(v));
          this.pos += this.text.encodeInto(v, this.buf.subarray(this.pos)).written;
        } else {
          const bytes = v as Uint8Array;
          this.varint(bytes.byteLength);
          this.buf.set(bytes, this.pos);
          this.pos += bytes.byteLength;
        }
    }
  }

  private writeMessage(type: protobuf.Type, message: Message): void {
    for (const field of fieldsOf(type)) {
      const v = message[field.name];
      if (v === undefined || v === null) continue;
      const wire = wireType(field);
      if (field.repeated) {
        const list = v as readonly unknown[];
        if (list.length === 0) continue;
        if (field.packed && wire !== WIRE.bytes) {
          let body = 0;
          for (const x of list) body += this.valueSize(field, x);
          this.varint((field.id << 3) | WIRE.bytes);
          this.varint(body);
          for (const x of list) this.writeValue(field, x);
        } else {
          for (const x of list) {
            this.varint((field.id << 3) | wire);
            this.writeValue(field, x);
          }
        }
      } else {
        this.varint((field.id << 3) | wire);
        this.writeValue(field, v);
      }
    }
  }
}

/** Encodes a plain-object message of `type` (field names as in the schema) into one exactly sized buffer. */
export function encodeMessage(type: protobuf.Type, message: Readonly<Record<string, unknown>>): Uint8Array {
  return new Encoder().encode(type, message);
}
