/**
 * Byte-level mutation of valid files, as fast-check arbitraries (so failures shrink to a minimal
 * list of edits): bit flips, byte and "interesting integer" overwrites, truncation, deletion,
 * insertion and duplication of ranges. Positions can be biased towards regions that matter (a
 * header, a zip directory, an embedded pickle), where a uniform position would rarely land.
 */
import fc from 'fast-check';

/** One edit of a byte buffer. Positions are reduced modulo the current length. */
export type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'byte'; readonly at: number; readonly value: number }
  | { readonly kind: 'int'; readonly at: number; readonly width: 2 | 4 | 8; readonly value: bigint }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'copy'; readonly from: number; readonly at: number; readonly length: number };

/** Integers that break length and offset arithmetic (0, sign bits, all ones, 2^53, …). */
export const INTERESTING_INTS: readonly bigint[] = [
  0n,
  1n,
  0x7fn,
  0x80n,
  0xffn,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  2n ** 53n,
  2n ** 63n - 1n,
  2n ** 64n - 1n,
];

/** A byte range `[start, end)` where mutations should often land. */
export interface Region {
  readonly start: number;
  readonly end: number;
}

/** Positions: half of them uniform over the buffer, half inside the given regions. */
function position(length: number, regions: readonly Region[]): fc.Arbitrary<number> {
  const uniform = fc.integer({ min: 0, max: Math.max(0, length - 1) });
  const usable = regions.filter((r) => r.end > r.start);
  if (usable.length === 0) return uniform;
  return fc.oneof(uniform, ...usable.map((r) => fc.integer({ min: r.start, max: r.end - 1 })));
}

/** A list of 1..`maxEdits` mutations of a buffer of `length` bytes. */
export function mutations(length: number, options: { regions?: readonly Region[]; maxEdits?: number } = {}): fc.Arbitrary<Mutation[]> {
  const at = position(length, options.regions ?? []);
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('byte' as const), at, value: fc.integer({ min: 0, max: 255 }) }) },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('int' as const), at, width: fc.constantFrom(2 as const, 4 as const, 8 as const), value: fc.constantFrom(...INTERESTING_INTS) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 64 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('copy' as const), from: at, at, length: fc.integer({ min: 1, max: 256 }) }) },
  );
  return fc.array(mutation, { minLength: 1, maxLength: options.maxEdits ?? 4 });
}

/** Applies `edits` in order to a copy of `base`. */
export function applyMutations(base: Uint8Array, edits: readonly Mutation[]): Uint8Array {
  let b = base.slice();
  for (const m of edits) {
    const n = b.length;
    const at = n === 0 ? 0 : m.at % n;
    switch (m.kind) {
      case 'flip':
        if (n > 0) b[at]! ^= 1 << m.bit;
        break;
      case 'byte':
        if (n > 0) b[at] = m.value;
        break;
      case 'int':
        for (let i = 0; i < m.width && at + i < n; i++) b[at + i] = Number((m.value >> BigInt(8 * i)) & 0xffn);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'delete': {
        const out = new Uint8Array(n - Math.min(m.length, n - at));
        out.set(b.subarray(0, at));
        out.set(b.subarray(at + m.length), at);
        b = out;
        break;
      }
      case 'insert': {
        const out = new Uint8Array(n + m.bytes.length);
        out.set(b.subarray(0, at));
        out.set(m.bytes, at);
        out.set(b.subarray(at), at + m.bytes.length);
        b = out;
        break;
      }
      case 'copy': {
        const from = n === 0 ? 0 : m.from % n;
        const chunk = b.slice(from, from + m.length);
        b.set(chunk.subarray(0, Math.max(0, n - at)), at);
        break;
      }
    }
  }
  return b;
}

/** A short description of edits for reports (`flip@123.4, int32@8=0xffffffff`). */
export function describeMutations(edits: readonly Mutation[]): string {
  return edits
    .map((m) => {
      switch (m.kind) {
        case 'flip':
          return `flip@${m.at}.${m.bit}`;
        case 'byte':
          return `byte@${m.at}=${m.value}`;
        case 'int':
          return `int${m.width * 8}@${m.at}=0x${m.value.toString(16)}`;
        case 'truncate':
          return `truncate@${m.at}`;
        case 'delete':
          return `delete@${m.at}+${m.length}`;
        case 'insert':
          return `insert@${m.at}[${m.bytes.length}]`;
        case 'copy':
          return `copy@${m.from}->${m.at}+${m.length}`;
      }
    })
    .join(', ');
}
