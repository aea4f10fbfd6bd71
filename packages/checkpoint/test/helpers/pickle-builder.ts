/**
 * Builds pickles opcode by opcode, so tests can craft exactly the bytes a hostile or unusual file
 * would hold (nothing here runs Python).
 */
export class PickleBuilder {
  private readonly out: number[] = [];

  /** Raw bytes. */
  raw(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }
  proto(n: number): this {
    return this.raw(0x80, n);
  }
  private u32(n: number): number[] {
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  }
  private text(s: string): number[] {
    return [...new TextEncoder().encode(s)];
  }
  /** GLOBAL 'module\nname\n' (protocols 0-3). */
  global(module: string, name: string): this {
    return this.raw(0x63, ...this.text(`${module}\n${name}\n`));
  }
  /** SHORT_BINUNICODE module, SHORT_BINUNICODE name, STACK_GLOBAL (protocol 4+). */
  stackGlobal(module: string, name: string): this {
    return this.shortUnicode(module).shortUnicode(name).raw(0x93);
  }
  /** INST 'module\nname\n' (protocol 0 instantiation). */
  inst(module: string, name: string): this {
    return this.raw(0x69, ...this.text(`${module}\n${name}\n`));
  }
  unicode(s: string): this {
    const b = this.text(s);
    return this.raw(0x58, ...this.u32(b.length), ...b);
  }
  shortUnicode(s: string): this {
    const b = this.text(s);
    return this.raw(0x8c, b.length, ...b);
  }
  /** SHORT_BINSTRING (a Python 2 str). */
  binstring(s: string): this {
    return this.raw(0x55, s.length, ...Array.from(s, (c) => c.charCodeAt(0)));
  }
  binbytes(b: readonly number[]): this {
    return this.raw(0x42, ...this.u32(b.length), ...b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw(0x4b, n);
    if (n >= 0 && n < 65536) return this.raw(0x4d, n & 0xff, n >> 8);
    return this.raw(0x4a, ...this.u32(n >>> 0));
  }
  mark(): this {
    return this.raw(0x28);
  }
  tuple(): this {
    return this.raw(0x74);
  }
  tuple1(): this {
    return this.raw(0x85);
  }
  tuple2(): this {
    return this.raw(0x86);
  }
  emptyTuple(): this {
    return this.raw(0x29);
  }
  emptyDict(): this {
    return this.raw(0x7d);
  }
  emptyList(): this {
    return this.raw(0x5d);
  }
  setitem(): this {
    return this.raw(0x73);
  }
  setitems(): this {
    return this.raw(0x75);
  }
  append(): this {
    return this.raw(0x61);
  }
  reduce(): this {
    return this.raw(0x52);
  }
  build(): this {
    return this.raw(0x62);
  }
  newobj(): this {
    return this.raw(0x81);
  }
  persid(): this {
    return this.raw(0x51);
  }
  binput(i: number): this {
    return this.raw(0x71, i);
  }
  binget(i: number): this {
    return this.raw(0x68, i);
  }
  none(): this {
    return this.raw(0x4e);
  }
  bool(v: boolean): this {
    return this.raw(v ? 0x88 : 0x89);
  }
  stop(): this {
    return this.raw(0x2e);
  }
  /** A tuple of small ints: MARK ints TUPLE. */
  ints(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
  toBytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

/** One tensor of a crafted torch state dict. */
export interface CraftedTensor {
  readonly name: string;
  /** torch storage type, e.g. FloatStorage. */
  readonly storageType: string;
  readonly key: string;
  /** Elements the persistent id declares for the storage. */
  readonly numel: number;
  readonly offset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
  /** Wrap in torch._utils._rebuild_parameter (an nn.Parameter). */
  readonly parameter?: boolean;
}

/**
 * The data.pkl of `torch.save(state_dict)` for the given tensors (protocol 2, as torch writes it),
 * optionally wrapped as `{wrapper: state_dict}`. `legacy` writes the 6-field persistent ids of the
 * pre-zip format.
 */
export function torchStateDictPickle(tensors: readonly CraftedTensor[], options: { wrapper?: string; legacy?: boolean } = {}): Uint8Array {
  const p = new PickleBuilder().proto(2);
  if (options.wrapper) p.emptyDict().unicode(options.wrapper);
  p.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  for (const t of tensors) {
    p.unicode(t.name);
    if (t.parameter) p.global('torch._utils', '_rebuild_parameter').mark();
    p.global('torch._utils', '_rebuild_tensor_v2').mark();
    p.mark().unicode('storage').global('torch', t.storageType).unicode(t.key).unicode('cpu').int(t.numel);
    if (options.legacy) p.none();
    p.tuple().persid();
    p.int(t.offset).ints(t.size).ints(t.stride).bool(false).global('collections', 'OrderedDict').emptyTuple().reduce();
    p.tuple().reduce();
    if (t.parameter) p.bool(true).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  }
  p.setitems();
  if (options.wrapper) p.setitem();
  return p.stop().toBytes();
}
