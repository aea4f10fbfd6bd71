/**
 * What the fuzzer attacks: the safetensors parser and WeightStore, the checkpoint readers (zip,
 * torch archive, pickles), the config loader (documents and `--set` strings) and the image decoder.
 * Each target turns a generated input into a call of the public API; a thrown error that is not an
 * rcnn-node typed error (or a result that breaks an invariant) is a bug.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ZipArchive, exportCheckpoint, readCheckpoint } from '@rcnn/checkpoint';
import { type PickleValue, writeNumpyPickle } from '@rcnn/testing';
import { CORE_SECTIONS, type HostTensor, SAFETENSORS_DTYPE_SIZE, WeightStore, WeightsError, elementCount, hostTensor, loadConfig, parseSafetensors, writeSafetensors } from '@rcnn/core';
import { decodeImage } from '@rcnn/runtime';
import fc from 'fast-check';
import sharp from 'sharp';
import { caseFiles } from '../common.js';
import { type Pixels, encode, pattern } from '../craft/images.js';
import { crc32, joinSafetensors, readTensors, storedZip, splitSafetensors } from '../craft/weights.js';
import { type Mutation, type Region, applyMutations, describeMutations, mutations } from './mutate.js';
import { apiOptionsTarget, apiPredictTarget } from './api-targets.js';

/** A fuzz target: an arbitrary of inputs and the call that consumes one. */
export interface FuzzTarget<T = unknown> {
  readonly name: string;
  /** One line on what is fuzzed and how. */
  readonly description: string;
  readonly arbitrary: fc.Arbitrary<T>;
  /** Consumes one input; resolves on success, throws what the API threw. Broken invariants throw {@link InvariantError}. */
  run(input: T): Promise<void> | void;
  /** A short description of an input for reports. */
  show(input: T): string;
  /** Releases what the target holds (a detector); called once after its run. */
  close?(): Promise<void>;
}

/** A result that came back but is wrong: always a bug. */
export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new InvariantError(message);
}

/** Checks a host tensor's data length matches its dims. */
function checkTensor(key: string, t: HostTensor): void {
  check(t.dims.every((d) => Number.isSafeInteger(d) && d >= 0), `tensor ${key} has dims ${JSON.stringify(t.dims)}`);
  check(t.data.length === elementCount(t.dims), `tensor ${key}: ${t.data.length} values for dims [${t.dims.join(', ')}]`);
}

/** A base file of a mutation target; `repair` runs after the edits (e.g. to fix checksums so the edits reach deeper code). */
interface Base {
  readonly label: string;
  readonly bytes: Uint8Array;
  readonly regions?: readonly Region[];
  readonly repair?: (bytes: Uint8Array) => Uint8Array;
}

/** A mutation target over one or more base files. */
function mutationTarget(
  name: string,
  description: string,
  bases: readonly Base[],
  consume: (bytes: Uint8Array, label: string) => Promise<void> | void,
  options: { maxEdits?: number } = {},
): FuzzTarget<{ base: number; edits: Mutation[] }> {
  const arbitrary = fc.oneof(
    ...bases.map((b, i) =>
      mutations(b.bytes.length, { regions: b.regions, maxEdits: options.maxEdits }).map((edits) => ({ base: i, edits })),
    ),
  );
  return {
    name,
    description,
    arbitrary,
    run: ({ base, edits }) => {
      const b = bases[base]!;
      const mutated = applyMutations(b.bytes, edits);
      return consume(b.repair ? b.repair(mutated) : mutated, b.label);
    },
    show: ({ base, edits }) => `${bases[base]!.label}: ${describeMutations(edits)}`,
  };
}

// ---------------------------------------------------------------- safetensors

/** Every tensor of a parsed file through a WeightStore (conversion, finiteness, shape checks). */
function consumeSafetensors(bytes: Uint8Array): void {
  const file = parseSafetensors(bytes, 'fuzz.safetensors');
  for (const e of file.entries.values()) {
    check(e.bytes.byteLength === e.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_SIZE[e.dtype], `entry ${e.name}: ${e.bytes.byteLength} bytes for ${e.dtype} [${e.shape.join(', ')}]`);
    check(e.bytes.byteOffset >= bytes.byteOffset && e.bytes.byteOffset + e.bytes.byteLength <= bytes.byteOffset + bytes.byteLength, `entry ${e.name} views outside the file`);
  }
  const store = WeightStore.fromSafetensors(file, { nonFinite: 'ignore' });
  for (const [key, e] of file.entries) {
    try {
      const data = store.take(key, e.shape);
      check(data instanceof Float32Array && data.length === elementCount(e.shape), `take(${key}) gave ${data.length} values for [${e.shape.join(', ')}]`);
    } catch (err) {
      // Integer tensors are refused as weights (typed); anything else propagates.
      if (!(err instanceof WeightsError)) throw err;
    }
  }
}

/** A small safetensors file with every decodable dtype (taken from the maskrcnn_tiny weights). */
function safetensorsBase(): Uint8Array {
  const all = readTensors(caseFiles('maskrcnn_tiny').weights);
  const picked = [...all].filter(([, t]) => t.data.length <= 600).slice(0, 10);
  const f = picked[0]![1].data as Float32Array;
  const extra: [string, HostTensor][] = [
    ['half', hostTensor('float16', [4], Uint16Array.of(0x3c00, 0xc000, 0x7c00, 0x7e00))],
    ['double', hostTensor('float64', [3], Float64Array.of(1, -2.5, 1e300))],
    ['long', hostTensor('int64', [2], BigInt64Array.of(1n, -1n))],
    ['int', hostTensor('int32', [2], Int32Array.of(7, -7))],
    ['bytes', hostTensor('uint8', [5], Uint8Array.of(1, 2, 3, 4, 5))],
    ['flags', hostTensor('bool', [3], Uint8Array.of(1, 0, 1))],
    ['nan', hostTensor('float32', [2], Float32Array.of(f[0]!, Number.NaN))],
  ];
  const bytes = writeSafetensors([...picked, ...extra]);
  // One BF16 tensor too (writeSafetensors has no BF16 type): re-label a 4-byte F32 tensor as 2 x BF16.
  const { header, data } = splitSafetensors(bytes);
  const h = header as Record<string, { dtype: string; shape: number[] }>;
  h.int = { ...h.int, dtype: 'BF16', shape: [4] };
  return joinSafetensors(h, data);
}

/** Mutations of a valid safetensors file, biased to its header. */
function safetensorsMutation(): FuzzTarget<{ base: number; edits: Mutation[] }> {
  const base = safetensorsBase();
  const n = Number(new DataView(base.buffer, base.byteOffset).getBigUint64(0, true));
  return mutationTarget(
    'safetensors-mutation',
    'mutated bytes of a valid safetensors file (every dtype; edits biased to the length field and JSON header) through parseSafetensors and WeightStore.take',
    [{ label: 'small.safetensors', bytes: base, regions: [{ start: 0, end: 8 }, { start: 8, end: 8 + n }] }],
    consumeSafetensors,
  );
}

const DTYPES = Object.keys(SAFETENSORS_DTYPE_SIZE);

/** Generated headers: real and invented dtypes, shapes and offsets, any JSON in their place, lying lengths. */
function safetensorsHeader(): FuzzTarget<{ header: Record<string, unknown>; data: number; lie: bigint | null }> {
  const dim = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: -2, max: 2 ** 33 }), fc.double());
  const entry = fc.oneof(
    { weight: 4, arbitrary: fc.record({ dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.string({ maxLength: 4 })), shape: fc.array(dim, { maxLength: 4 }), data_offsets: fc.tuple(fc.integer({ min: -4, max: 300 }), fc.integer({ min: -4, max: 300 })) }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );
  const key = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__metadata__', '__proto__', 'constructor', 'w'));
  const arbitrary = fc.record({
    header: fc.dictionary(key, entry, { maxKeys: 5 }),
    data: fc.integer({ min: 0, max: 256 }),
    lie: fc.option(fc.constantFrom(0n, 1n, 7n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n)),
  });
  return {
    name: 'safetensors-header',
    description: 'generated headers (known and invented dtypes, odd shapes and offsets, any JSON, __proto__ keys) and lying header lengths',
    arbitrary,
    run: ({ header, data, lie }) => consumeSafetensors(joinSafetensors(header, new Uint8Array(data).fill(0x3f), lie ?? undefined)),
    show: (x) => JSON.stringify({ ...x, lie: x.lie?.toString() }).slice(0, 300),
  };
}

// ---------------------------------------------------------------- checkpoints

function consumeCheckpoint(bytes: Uint8Array, label: string): void {
  const result = readCheckpoint(bytes, { source: label });
  for (const [k, t] of result.tensors) checkTensor(k, t);
}

/** Mutations of the keypointrcnn_tiny `weights.pth` (torch.save zip), biased to zip records and data.pkl. */
function pthBytes(): FuzzTarget<{ base: number; edits: Mutation[] }> {
  const bytes = new Uint8Array(readFileSync(caseFiles('keypointrcnn_tiny').pth));
  const zip = ZipArchive.parse(bytes, 'weights.pth');
  const regions: Region[] = [];
  let firstData = bytes.length;
  for (const e of zip.entries.values()) {
    regions.push({ start: e.localHeaderOffset, end: e.localHeaderOffset + 30 });
    if (e.name.endsWith('data.pkl')) regions.push({ start: e.localHeaderOffset, end: e.localHeaderOffset + 64 + e.compressedSize });
    firstData = Math.min(firstData, e.localHeaderOffset);
  }
  const lastLocal = Math.max(...[...zip.entries.values()].map((e) => e.localHeaderOffset + 64 + e.compressedSize));
  regions.push({ start: Math.min(lastLocal, bytes.length - 1), end: bytes.length }); // central directory, ZIP64 records, EOCD
  return mutationTarget(
    'checkpoint-pth-bytes',
    'mutated bytes of fixtures/parity/keypointrcnn_tiny/weights.pth (torch.save zip; edits biased to local headers, data.pkl and the central directory) through readCheckpoint',
    [{ label: 'weights.pth', bytes, regions }],
    consumeCheckpoint,
  );
}

/** Mutations of the pickle inside weights.pth, re-zipped with valid CRCs so the unpickler and storage checks see them. */
function pthPickle(): FuzzTarget<Mutation[]> {
  const bytes = new Uint8Array(readFileSync(caseFiles('keypointrcnn_tiny').pth));
  const zip = ZipArchive.parse(bytes, 'weights.pth');
  const names = [...zip.entries.keys()];
  const pklName = names.find((n) => n.endsWith('/data.pkl'))!;
  const others = names.filter((n) => n !== pklName).map((n) => {
    const data = zip.read(n);
    return [n, data, crc32(data)] as const;
  });
  const pkl = zip.read(pklName);
  return {
    name: 'checkpoint-pth-pickle',
    description: 'mutated data.pkl of weights.pth, re-zipped with valid CRCs (reaches the restricted unpickler, persistent ids, storage and view checks) through readCheckpoint',
    arbitrary: mutations(pkl.length, { maxEdits: 3 }),
    run: (edits) => consumeCheckpoint(storedZip([[pklName, applyMutations(pkl, edits)], ...others]), 'rezipped.pth'),
    show: (edits) => `data.pkl: ${describeMutations(edits)}`,
  };
}

/** Detectron2 (protocol 4) and Detectron (protocol 2) pickles of the small keypointrcnn_tiny tensors, mutated. */
function pklBytes(): FuzzTarget<{ base: number; edits: Mutation[] }> {
  const source = readCheckpoint(caseFiles('keypointrcnn_tiny').weights, { from: 'torchvision' });
  const small = new Map([...source.tensors].filter(([k, t]) => t.data.length <= 2048 || k.includes('conv1')));
  const d2 = exportCheckpoint(small, 'detectron2');
  const c2 = exportCheckpoint(small, 'detectron', { frozenBnEps: 1e-5 });
  return mutationTarget(
    'checkpoint-pkl',
    'mutated Detectron2 (py3, protocol 4) and Detectron (py2, protocol 2) numpy pickles made by @rcnn/checkpoint\'s writers (as tools/weights/export-fixture.mjs) through readCheckpoint',
    [
      { label: 'model_final.pkl', bytes: writeNumpyPickle(new Map<string, PickleValue>([['model', d2.tensors], ['__author__', 'fuzz']]), 'py3') },
      { label: 'detectron.pkl', bytes: writeNumpyPickle(new Map<string, PickleValue>([['blobs', c2.tensors], ['cfg', 'fuzz']]), 'py2') },
    ],
    consumeCheckpoint,
  );
}

/** Opcodes with plausible arguments: generated pickle programs. */
function pickleOpcodes(): FuzzTarget<(readonly number[])[]> {
  const u8 = fc.integer({ min: 0, max: 255 });
  const u32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
  const text = (s: string): number[] => [...new TextEncoder().encode(s)];
  const name = fc.constantFrom('collections', 'OrderedDict', 'torch._utils', '_rebuild_tensor_v2', 'torch', 'FloatStorage', 'numpy.core.multiarray', '_reconstruct', 'numpy', 'ndarray', 'dtype', 'builtins', 'open', 'posix', 'system', '_codecs', 'encode', 'x');
  const op: fc.Arbitrary<readonly number[]> = fc.oneof(
    fc.constantFrom<readonly number[]>(
      [0x28], // MARK
      [0x29], // EMPTY_TUPLE
      [0x5d], // EMPTY_LIST
      [0x7d], // EMPTY_DICT
      [0x4e], // NONE
      [0x88], // NEWTRUE
      [0x85], // TUPLE1
      [0x86], // TUPLE2
      [0x87], // TUPLE3
      [0x74], // TUPLE
      [0x6c], // LIST
      [0x64], // DICT
      [0x61], // APPEND
      [0x65], // APPENDS
      [0x73], // SETITEM
      [0x75], // SETITEMS
      [0x52], // REDUCE
      [0x81], // NEWOBJ
      [0x62], // BUILD
      [0x51], // BINPERSID
      [0x94], // MEMOIZE
      [0x30], // POP
      [0x31], // POP_MARK
      [0x32], // DUP
      [0x93], // STACK_GLOBAL
      [0x2e], // STOP
    ),
    u8.map((v) => [0x4b, v]), // BININT1
    fc.integer().map((v) => [0x4a, ...u32(v)]), // BININT
    u8.map((v) => [0x71, v]), // BINPUT
    u8.map((v) => [0x68, v]), // BINGET
    fc.tuple(u8, fc.uint8Array({ maxLength: 9 })).map(([n, b]) => [0x8a, n % 10, ...b]), // LONG1
    fc.string({ maxLength: 12 }).map((s) => [0x8c, text(s).length & 0xff, ...text(s)]), // SHORT_BINUNICODE
    fc.tuple(fc.uint8Array({ maxLength: 16 }), fc.integer({ min: 0, max: 20 })).map(([b, lie]) => [0x43, (b.length + lie) & 0xff, ...b]), // SHORT_BINBYTES, maybe lying
    fc.tuple(fc.uint8Array({ maxLength: 16 }), fc.constantFrom(0, 1, 2 ** 31, 2 ** 32 - 1)).map(([b, lie]) => [0x42, ...u32(b.length + lie), ...b]), // BINBYTES
    fc.tuple(name, name).map(([m, n]) => [0x63, ...text(`${m}\n${n}\n`)]), // GLOBAL
    fc.double().map((v) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v);
      return [0x47, ...b];
    }), // BINFLOAT
    u8.map((v) => [v]), // any byte
  );
  const arbitrary = fc.array(op, { minLength: 1, maxLength: 40 });
  return {
    name: 'pickle-opcodes',
    description: 'generated pickle programs (protocol 2 header, then random opcodes with plausible or lying arguments, allowed and forbidden globals) through readCheckpoint',
    arbitrary,
    run: (ops) => consumeCheckpoint(Uint8Array.from([0x80, 2, ...ops.flat(), 0x2e]), 'generated.pkl'),
    show: (ops) => ops.map((o) => o.map((b) => b.toString(16).padStart(2, '0')).join('')).join(' '),
  };
}

// ---------------------------------------------------------------- config

const SECTION_NAMES = CORE_SECTIONS.map((s) => s.name);
const KEY_NAMES = [...new Set(CORE_SECTIONS.flatMap((s) => Object.keys(s.fields)))];
/** Real SECTION.KEY pairs, so that many generated assignments reach type and range checks. */
const REAL_KEYS = CORE_SECTIONS.flatMap((s) => Object.keys(s.fields).map((k) => [s.name, k] as const));

/** A value a config key might be given: right types, wrong types, edge numbers. */
const configValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.boolean(),
  fc.integer({ min: -5, max: 2000 }),
  fc.constantFrom(0, 1, 2, 1e9, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5, 1e-7, Number.MAX_SAFE_INTEGER),
  fc.double(),
  fc.constantFrom('RGB', 'BGR', 'torchvision', 'detectron', 'FPN.add_fpn_ResNet50_conv5_body', 'Toy.rpn', '', '1e400', '.inf', '!!binary aGk=', '&a [1]', '{a: *b}'),
  fc.string({ maxLength: 8 }),
  fc.array(fc.oneof(fc.integer({ min: -3, max: 600 }), fc.double()), { maxLength: 6 }),
  fc.array(fc.array(fc.integer({ min: 0, max: 600 }), { maxLength: 3 }), { maxLength: 6 }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Random sections and keys (mostly real names) with random values. */
const configDocument = fc.oneof(
  { weight: 2, arbitrary: fc.array(fc.tuple(fc.constantFrom(...REAL_KEYS), configValue), { maxLength: 5 }).map((pairs) => {
    const doc: Record<string, Record<string, unknown>> = {};
    for (const [[section, key], value] of pairs) (doc[section] ??= {})[key] = value;
    return doc;
  }) },
  { weight: 1, arbitrary: fc.dictionary(
  fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...SECTION_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }, { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor') }),
  fc.oneof(
    { weight: 6, arbitrary: fc.dictionary(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...KEY_NAMES) }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) }, { weight: 1, arbitrary: fc.constantFrom('__proto__', 'toString') }), configValue, { maxKeys: 4 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
  ),
  { maxKeys: 4 },
) },
);

/** A JSON path edit of a parity case.json: delete a field, or replace it with any JSON. */
function caseEdits(): fc.Arbitrary<{ path: number[]; replace: unknown; remove: boolean }[]> {
  return fc.array(fc.record({ path: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), replace: fc.jsonValue({ maxDepth: 2 }), remove: fc.boolean() }), { minLength: 1, maxLength: 4 });
}

function applyCaseEdit(doc: unknown, path: readonly number[], replace: unknown, remove: boolean): unknown {
  const root = JSON.parse(JSON.stringify(doc)) as Record<string, unknown>;
  let node: unknown = root;
  for (let i = 0; i < path.length; i++) {
    if (typeof node !== 'object' || node === null) return root;
    const keys = Object.keys(node);
    if (keys.length === 0) return root;
    const key = keys[path[i]! % keys.length]!;
    if (i === path.length - 1 || typeof (node as Record<string, unknown>)[key] !== 'object' || (node as Record<string, unknown>)[key] === null) {
      if (remove && !Array.isArray(node)) delete (node as Record<string, unknown>)[key];
      else (node as Record<string, unknown>)[key] = replace;
      return root;
    }
    node = (node as Record<string, unknown>)[key];
  }
  return root;
}

/** Config documents: generated mappings (as JSON and YAML files), mutated YAML text, edited parity case.json files. */
function configDocuments(dir: string): FuzzTarget<{ kind: 'json' | 'yaml'; doc: unknown } | { kind: 'text'; edits: Mutation[] } | { kind: 'case'; edits: { path: number[]; replace: unknown; remove: boolean }[] }> {
  const yamlText = new TextEncoder().encode(
    'MODEL:\n  NUM_CLASSES: 5\n  MASK_ON: true\n  CONV_BODY: FPN.add_fpn_ResNet50_conv5_body\nTEST:\n  SCALE: 224\n  MAX_SIZE: 320\n  NMS: 0.5\n  DETECTIONS_PER_IM: 100\nRPN:\n  SIZES: [32, 64, 128]\nFPN:\n  RPN_ANCHOR_SIZES: [[32], [64], [128], [256], [512]]\nINPUT:\n  PIXEL_MEANS: [0.485, 0.456, 0.406]\n  FORMAT: RGB\n',
  );
  const caseDoc = JSON.parse(readFileSync(caseFiles('maskrcnn_tiny').config, 'utf8')) as unknown;
  const arbitrary = fc.oneof(
    fc.record({ kind: fc.constantFrom('json' as const, 'yaml' as const), doc: fc.oneof({ weight: 5, arbitrary: configDocument }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }) }),
    fc.record({ kind: fc.constant('text' as const), edits: mutations(yamlText.length, { maxEdits: 3 }) }),
    fc.record({ kind: fc.constant('case' as const), edits: caseEdits() }),
  );
  const jsonPath = join(dir, 'fuzz.json');
  const yamlPath = join(dir, 'fuzz.yaml');
  return {
    name: 'config-document',
    description: 'generated config mappings (real and invented sections/keys, values of every type, __proto__ keys) written as JSON and YAML, mutated YAML text, and parity case.json files with fields deleted or replaced, through loadConfig',
    arbitrary,
    run: (x) => {
      let path: string;
      if (x.kind === 'text') writeFileSync((path = yamlPath), applyMutations(yamlText, x.edits));
      else if (x.kind === 'case') writeFileSync((path = jsonPath), JSON.stringify(x.edits.reduce((d, e) => applyCaseEdit(d, e.path, e.replace, e.remove), caseDoc)));
      else writeFileSync((path = x.kind === 'json' ? jsonPath : yamlPath), JSON.stringify(x.doc)); // JSON is YAML too
      const c = loadConfig({ layers: [path] });
      check(Object.isFrozen(c) && SECTION_NAMES.every((s) => typeof c[s] === 'object'), 'a loaded config has every section, frozen');
    },
    show: (x) => JSON.stringify(x, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `<${v.length} bytes>` : v)).slice(0, 400),
  };
}

/** `--set` strings: well-formed assignments of random values to real or invented keys, and random text. */
function configSet(): FuzzTarget<string[]> {
  const sectionKey = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...REAL_KEYS) },
    { weight: 1, arbitrary: fc.tuple(fc.oneof(fc.constantFrom(...SECTION_NAMES), fc.string({ maxLength: 4 })), fc.oneof(fc.constantFrom(...KEY_NAMES), fc.string({ maxLength: 4 }))) },
  );
  const assignment = fc
    .tuple(sectionKey, fc.oneof(fc.string({ maxLength: 12 }), configValue.map((v) => JSON.stringify(v) ?? 'null')))
    .map(([[s, k], v]) => `${s}.${k}=${v}`);
  const arbitrary = fc.array(fc.oneof({ weight: 4, arbitrary: assignment }, { weight: 1, arbitrary: fc.string({ maxLength: 20 }) }), { minLength: 1, maxLength: 4 });
  return {
    name: 'config-set',
    description: '--set KEY=VALUE strings (random values as YAML, real and invented keys, free text) through loadConfig',
    arbitrary,
    run: (set) => {
      const c = loadConfig({ set });
      check(Object.isFrozen(c), 'frozen');
    },
    show: (set) => JSON.stringify(set),
  };
}

// ---------------------------------------------------------------- images

const IMAGE_LIMITS = { maxPixels: 4_000_000, maxSide: 8192 };

/** Recomputes every PNG chunk CRC, so that edits of IHDR, PLTE or IDAT reach the decoder instead of its CRC check. */
export function fixPngCrcs(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  let pos = 8;
  while (pos + 12 <= out.length) {
    const length = view.getUint32(pos);
    if (pos + 12 + length > out.length) break;
    view.setUint32(pos + 8 + length, crc32(out.subarray(pos + 4, pos + 8 + length)));
    pos += 12 + length;
  }
  return out;
}

async function imageBases(): Promise<Base[]> {
  const px: Pixels = pattern(48, 32, 9);
  const raw = () => sharp(Buffer.from(px.data), { raw: { width: 48, height: 32, channels: 3 } });
  const gray = await raw().toColourspace('b-w').png().toBuffer();
  const head = (b: Uint8Array): Region[] => [{ start: 0, end: Math.min(b.length, 200) }];
  const png = await encode(px, 'png');
  const palette = await raw().png({ palette: true, colours: 16 }).toBuffer();
  const interlaced = await raw().png({ progressive: true }).toBuffer();
  return [
    { label: 'photo.png', bytes: png },
    // With their CRCs repaired the edits reach IHDR semantics, palettes, interlacing and inflate.
    { label: 'photo.png (CRCs repaired)', bytes: png, regions: head(png), repair: fixPngCrcs },
    { label: 'palette.png (CRCs repaired)', bytes: palette, regions: head(palette), repair: fixPngCrcs },
    { label: 'interlaced.png (CRCs repaired)', bytes: interlaced, regions: head(interlaced), repair: fixPngCrcs },
    { label: 'gray.png', bytes: gray },
    { label: 'photo.jpg', bytes: await encode(px, 'jpeg') },
    { label: 'progressive.jpg', bytes: await encode(px, 'jpeg', { progressive: true }) },
    { label: 'rotated.jpg', bytes: await encode(px, 'jpeg', { orientation: 6 }) },
    { label: 'photo.webp', bytes: await encode(px, 'webp') },
    { label: 'photo.gif', bytes: await encode(px, 'gif') },
    { label: 'photo.tiff', bytes: await encode(px, 'tiff') },
  ];
}

/** Mutated PNG, JPEG, WebP, GIF and TIFF bytes through the runtime's decoder (header check, EXIF, conversion). */
async function imageDecode(): Promise<FuzzTarget<{ base: number; edits: Mutation[] }>> {
  const bases = await imageBases();
  return mutationTarget(
    'image-decode',
    'mutated PNG (also palette and interlaced, with chunk CRCs repaired after the edits), gray PNG, JPEG (baseline, progressive, EXIF-rotated), WebP, GIF and TIFF bytes through the runtime\'s decodeImage (limits 4 MP / 8192 px)',
    bases.map((b) => ({ ...b, regions: b.regions ?? [{ start: 0, end: Math.min(b.bytes.length, 200) }] })),
    async (bytes, label) => {
      const img = await decodeImage(bytes, IMAGE_LIMITS, label);
      check(Number.isInteger(img.width) && Number.isInteger(img.height) && img.width > 0 && img.height > 0, `decoded size ${img.width} x ${img.height}`);
      check(img.width * img.height <= IMAGE_LIMITS.maxPixels && Math.max(img.width, img.height) <= IMAGE_LIMITS.maxSide, `decoded ${img.width} x ${img.height} is over the limits`);
      check(img.data.length === img.width * img.height * 3 && img.maxValue === 255, `decoded ${img.data.length} values for ${img.width} x ${img.height} RGB`);
    },
    { maxEdits: 2 },
  );
}

/** Every fuzz target (the config targets write their files into `dir`). */
export async function fuzzTargets(dir: string): Promise<FuzzTarget<never>[]> {
  // Each target has its own input type; the runner only passes a target's inputs back to it.
  const targets = [
    safetensorsMutation(),
    safetensorsHeader(),
    pthBytes(),
    pthPickle(),
    pklBytes(),
    pickleOpcodes(),
    configDocuments(dir),
    configSet(),
    await imageDecode(),
    apiOptionsTarget(),
    apiPredictTarget(),
  ] as FuzzTarget<never>[];
  return targets;
}
