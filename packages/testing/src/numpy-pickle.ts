/**
 * Writes numpy weight pickles the way Detectron (Python 2, protocol 2) and Detectron2 (Python 3)
 * files look, so tools and tests can produce `.pkl` files in those conventions without Python.
 * The output uses only opcodes and globals the restricted unpickler accepts, and loads in Python
 * with `pickle.load(f, encoding="latin1")` as dicts of numpy arrays.
 */
import type { DataType, HostTensor } from '@rcnn/core';

/** How the pickle is spelled. */
export type PickleFlavor =
  /** Python 2 `cPickle.dump(obj, f, 2)`: str keys and array data as byte strings (BINSTRING). */
  | 'py2'
  /** Python 3 `pickle.dump(obj, f, protocol=2)`: array data through `_codecs.encode(str, "latin1")`. */
  | 'py3-protocol2'
  /** Python 3 protocol 4: STACK_GLOBAL, SHORT_BINUNICODE and BINBYTES array data. */
  | 'py3';

/** Values the writer accepts: tensors (as numpy arrays), scalars, strings and string-keyed dicts. */
export type PickleValue = HostTensor | string | number | boolean | null | PickleDict;

/** A dict of {@link PickleValue}s, written in iteration order. */
export type PickleDict = ReadonlyMap<string, PickleValue>;

const NUMPY_CODE: Readonly<Record<DataType, string>> = {
  float32: 'f4',
  float16: 'f2',
  float64: 'f8',
  int64: 'i8',
  int32: 'i4',
  int8: 'i1',
  uint8: 'u1',
  bool: 'b1',
};

class ByteSink {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private len = 0;
  byte(...bs: number[]): void {
    for (const b of bs) {
      if (this.len === this.cur.length) this.flush();
      this.cur[this.len++] = b;
    }
  }
  u32(n: number): void {
    this.byte(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  u64(n: number): void {
    this.u32(n >>> 0);
    this.u32(Math.floor(n / 2 ** 32));
  }
  bytes(b: Uint8Array): void {
    this.flush();
    this.chunks.push(b);
  }
  private flush(): void {
    if (this.len > 0) this.chunks.push(this.cur.slice(0, this.len));
    this.cur = new Uint8Array(1 << 16);
    this.len = 0;
  }
  concat(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.chunks.reduce((a, c) => a + c.byteLength, 0));
    let p = 0;
    for (const c of this.chunks) {
      out.set(c, p);
      p += c.byteLength;
    }
    return out;
  }
}

const isTensor = (v: PickleValue): v is HostTensor => typeof v === 'object' && v !== null && !(v instanceof Map) && 'dtype' in v && 'dims' in v;

/** Serialises `value` (typically `{model: {...}}` or `{blobs: {...}}`) as a pickle of the given flavor. */
export function writeNumpyPickle(value: PickleValue, flavor: PickleFlavor = 'py3'): Uint8Array {
  const out = new ByteSink();
  const text = new TextEncoder();
  const py2 = flavor === 'py2';
  const proto4 = flavor === 'py3';

  const unicode = (s: string): void => {
    const b = text.encode(s);
    if (proto4 && b.length < 256) out.byte(0x8c, b.length); // SHORT_BINUNICODE
    else {
      out.byte(0x58); // BINUNICODE
      out.u32(b.length);
    }
    out.bytes(b);
  };
  const str = (s: string): void => {
    // Python 2 `str` is bytes: write latin-1 strings as BINSTRING, anything wider as unicode.
    if (py2 && [...s].every((c) => c.charCodeAt(0) < 0x100)) {
      const b = Uint8Array.from(s, (c) => c.charCodeAt(0));
      if (b.length < 256) out.byte(0x55, b.length); // SHORT_BINSTRING
      else {
        out.byte(0x54); // BINSTRING
        out.u32(b.length);
      }
      out.bytes(b);
    } else unicode(s);
  };
  const global = (module: string, name: string): void => {
    if (proto4) {
      unicode(module);
      unicode(name);
      out.byte(0x93); // STACK_GLOBAL
    } else {
      out.byte(0x63); // GLOBAL
      out.bytes(text.encode(`${module}\n${name}\n`));
    }
  };
  const int = (n: number): void => {
    if (Number.isInteger(n) && n >= 0 && n < 256) out.byte(0x4b, n);
    else if (Number.isInteger(n) && n >= 0 && n < 65536) out.byte(0x4d, n & 0xff, n >> 8);
    else if (Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31) {
      out.byte(0x4a);
      out.u32(n >>> 0);
    } else if (Number.isSafeInteger(n)) {
      // LONG1: little-endian two's complement, 8 bytes is enough for any safe integer.
      let v = BigInt(n);
      out.byte(0x8a, 8);
      for (let i = 0; i < 8; i++) {
        out.byte(Number(v & 0xffn));
        v >>= 8n;
      }
    } else {
      out.byte(0x47); // BINFLOAT, big-endian
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, n, false);
      out.bytes(b);
    }
  };
  const rawBytes = (b: Uint8Array): void => {
    if (py2) {
      out.byte(0x54); // BINSTRING
      out.u32(b.length);
      out.bytes(b);
    } else if (flavor === 'py3-protocol2') {
      // Python 3 pickles bytes at protocol 2 as _codecs.encode(<latin-1 text>, "latin1").
      global('_codecs', 'encode');
      const utf8 = new Uint8Array(2 * b.length);
      let n = 0;
      for (const x of b) {
        if (x < 0x80) utf8[n++] = x;
        else {
          utf8[n++] = 0xc0 | (x >> 6);
          utf8[n++] = 0x80 | (x & 0x3f);
        }
      }
      out.byte(0x58);
      out.u32(n);
      out.bytes(utf8.subarray(0, n));
      unicode('latin1');
      out.byte(0x86, 0x52); // TUPLE2, REDUCE
    } else if (b.length < 256) {
      out.byte(0x43, b.length); // SHORT_BINBYTES
      out.bytes(b);
    } else if (b.length < 2 ** 32) {
      out.byte(0x42); // BINBYTES
      out.u32(b.length);
      out.bytes(b);
    } else {
      out.byte(0x8e); // BINBYTES8
      out.u64(b.length);
      out.bytes(b);
    }
  };
  const tuple = (items: (() => void)[]): void => {
    if (items.length === 0) return out.byte(0x29);
    if (items.length <= 3) {
      for (const it of items) it();
      return out.byte([0x85, 0x86, 0x87][items.length - 1]!);
    }
    out.byte(0x28);
    for (const it of items) it();
    out.byte(0x74);
  };
  const array = (t: HostTensor): void => {
    const code = NUMPY_CODE[t.dtype];
    global('numpy.core.multiarray', '_reconstruct');
    tuple([() => global('numpy', 'ndarray'), () => tuple([() => int(0)]), () => rawBytes(Uint8Array.of(0x62))]);
    out.byte(0x52); // REDUCE
    tuple([
      () => int(1),
      () => tuple(t.dims.map((d) => () => int(d))),
      () => {
        global('numpy', 'dtype');
        tuple([() => str(code), () => out.byte(0x89), () => out.byte(0x88)]);
        out.byte(0x52);
        const order = code.endsWith('1') ? '|' : '<';
        tuple([() => int(3), () => str(order), () => out.byte(0x4e), () => out.byte(0x4e), () => out.byte(0x4e), () => int(-1), () => int(-1), () => int(0)]);
        out.byte(0x62); // BUILD
      },
      () => out.byte(0x89),
      () => rawBytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
    ]);
    out.byte(0x62); // BUILD
  };
  const write = (v: PickleValue): void => {
    if (v === null) out.byte(0x4e);
    else if (typeof v === 'boolean') out.byte(v ? 0x88 : 0x89);
    else if (typeof v === 'number') int(v);
    else if (typeof v === 'string') str(v);
    else if (isTensor(v)) array(v);
    else {
      out.byte(0x7d); // EMPTY_DICT
      const entries = [...v];
      // pickle batches SETITEMS by 1000 pairs.
      for (let i = 0; i < entries.length; i += 1000) {
        out.byte(0x28);
        for (const [k, x] of entries.slice(i, i + 1000)) {
          str(k);
          write(x);
        }
        out.byte(0x75);
      }
    }
  };

  out.byte(0x80, proto4 ? 4 : 2);
  write(value);
  out.byte(0x2e);
  return out.concat();
}
