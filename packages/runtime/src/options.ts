/**
 * Validation of the library's public arguments (`createDetector`, `exportModel`, `predict`,
 * `stream`): a JavaScript caller can pass anything, and a wrong type must be a {@link ConfigError}
 * (options) or an {@link InputError} (images) naming the option — never a TypeError from deep
 * inside, an onnxruntime `std::bad_alloc`, or a silent fallback (weights `{}` used to mean "random
 * weights"). The bounds here are the ones the CLI's flags use too ({@link OPTION_BOUNDS}).
 */
import { ConfigError, InputError, WeightStore } from '@rcnn/core';
import type { OrtLogLevel } from './session.js';

/** Numeric bounds of the options, shared with the `rcnn` flags (`--threads`, `--in-flight`, `--seed`, `--batch`). */
export const OPTION_BOUNDS = {
  /** onnxruntime threads per replica (`threads.intraOp`, `threads.interOp`, `--threads`). */
  threads: { min: 1, max: 1024 },
  /** Batches in flight per replica (`maxInFlight`, `--in-flight`). */
  maxInFlight: { min: 1, max: 64 },
  /** Seed of the random weights (`seed`, `--seed`). */
  seed: { min: 0, max: 2 ** 32 - 1 },
  /** Images per forward pass (`batchSize`, `--batch`; also at most LIMITS.MAX_BATCH). */
  batchSize: { min: 1, max: Number.MAX_SAFE_INTEGER },
} as const;

/** Values of the `precision` option. */
export const PRECISIONS = ['float32', 'float16'] as const;

/** Values of the `logLevel` option (onnxruntime's). */
export const ORT_LOG_LEVELS: readonly OrtLogLevel[] = ['verbose', 'info', 'warning', 'error', 'fatal'];

const HINT = 'see the options of createDetector / exportModel / predict in the @rcnn/runtime README';

/** A short, safe rendering of any value for a message. */
export function showArgument(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return Object.getPrototypeOf(v) === Object.prototype ? `an object with keys [${Object.keys(v as object).slice(0, 8).join(', ')}]` : `a ${(v as object).constructor?.name ?? 'object'}`;
  }
}

/** Checks one options object field by field; `where` prefixes messages (`createDetector`). */
class OptionChecker {
  constructor(
    private readonly where: string,
    private readonly options: Readonly<Record<string, unknown>>,
  ) {}

  fail(key: string, expected: string, value: unknown): never {
    throw new ConfigError(`${this.where}: option ${key} must be ${expected}, got ${showArgument(value)}`, { key, hint: HINT });
  }

  private get(key: string): unknown {
    return Object.prototype.hasOwnProperty.call(this.options, key) ? this.options[key] : undefined;
  }

  bool(key: string): this {
    const v = this.get(key);
    if (v !== undefined && typeof v !== 'boolean') this.fail(key, 'true or false', v);
    return this;
  }

  string(key: string): this {
    const v = this.get(key);
    if (v !== undefined && typeof v !== 'string') this.fail(key, 'a string', v);
    return this;
  }

  func(key: string): this {
    const v = this.get(key);
    if (v !== undefined && typeof v !== 'function') this.fail(key, 'a function', v);
    return this;
  }

  oneOf(key: string, values: readonly string[]): this {
    const v = this.get(key);
    if (v !== undefined && !values.includes(v as string)) this.fail(key, `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`, v);
    return this;
  }

  int(key: string, bounds: { readonly min: number; readonly max: number }, value: unknown = this.get(key)): this {
    if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < bounds.min || value > bounds.max)) {
      this.fail(key, `an integer ${bounds.max === Number.MAX_SAFE_INTEGER ? `>= ${bounds.min}` : `in [${bounds.min}, ${bounds.max}]`}`, value);
    }
    return this;
  }

  object(key: string, check?: (v: Readonly<Record<string, unknown>>) => void): this {
    const v = this.get(key);
    if (v === undefined) return this;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'an object', v);
    check?.(v as Readonly<Record<string, unknown>>);
    return this;
  }

  list(key: string, itemType: 'string' | 'function', single = false): this {
    const v = this.get(key);
    if (v === undefined) return this;
    if (single && typeof v === itemType) return this;
    if (!Array.isArray(v) || v.some((x) => typeof x !== itemType)) this.fail(key, `${single ? `a ${itemType} or ` : ''}an array of ${itemType}s`, v);
    return this;
  }

  value(key: string): unknown {
    return this.get(key);
  }
}

function asOptions(where: string, options: unknown): Readonly<Record<string, unknown>> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError(`${where}: options must be an object, got ${showArgument(options)}`, { hint: HINT });
  }
  return options as Readonly<Record<string, unknown>>;
}

/** Checks the options every model source takes (`config`, `set`, `weights`, `seed`, …); see `ModelSourceOptions`. */
export function validateModelSourceOptions(options: unknown, where = 'createDetector'): void {
  const o = asOptions(where, options);
  const c = new OptionChecker(where, o);
  const config = c.value('config');
  if (config !== undefined && typeof config !== 'string' && (typeof config !== 'object' || config === null || Array.isArray(config))) {
    c.fail('config', 'a preset name, a config file path or a config object ({ SECTION: { KEY: value } })', config);
  }
  const weights = c.value('weights');
  if (weights !== undefined && typeof weights !== 'string' && !(weights instanceof WeightStore)) {
    // {} or 42 used to fall through to random weights with a warning that "no weights were given".
    c.fail('weights', 'a weights file path or a WeightStore (omit it for seeded random weights)', weights);
  }
  if (typeof weights === 'string' && weights.length === 0) c.fail('weights', 'a non-empty file path', weights);
  c.list('set', 'string').oneOf('nonFinite', ['error', 'warn', 'ignore']).func('onWarning').int('seed', OPTION_BOUNDS.seed).bool('calibrateRandomWeights');
  c.list('register', 'function').object('labels');
  c.object('container', (v) => {
    if (typeof v.resolve !== 'function' || typeof v.register !== 'function') c.fail('container', 'a DependencyContainer (createContainer())', v);
  });
}

/** Checks {@link validateModelSourceOptions} plus the detector's own options (devices, threads, batch, …). */
export function validateDetectorOptions(options: unknown): void {
  validateModelSourceOptions(options, 'createDetector');
  const o = asOptions('createDetector', options);
  const c = new OptionChecker('createDetector', o);
  c.list('devices', 'string', true).bool('strict').int('batchSize', OPTION_BOUNDS.batchSize).int('maxInFlight', OPTION_BOUNDS.maxInFlight);
  c.object('threads', (t) => {
    for (const k of Object.keys(t)) if (k !== 'intraOp' && k !== 'interOp') c.fail(`threads.${k}`, 'absent (threads has intraOp and interOp)', t[k]);
    c.int('threads.intraOp', OPTION_BOUNDS.threads, t.intraOp).int('threads.interOp', OPTION_BOUNDS.threads, t.interOp);
  });
  c.bool('intermediates').oneOf('logLevel', ORT_LOG_LEVELS).string('profile').oneOf('precision', PRECISIONS).bool('allowSpecialFiles');
}

/** Checks the options of `exportModel`. */
export function validateExportOptions(options: unknown): void {
  validateModelSourceOptions(options, 'exportModel');
  new OptionChecker('exportModel', asOptions('exportModel', options)).bool('intermediates').oneOf('precision', PRECISIONS);
}

/** Checks the options of `predict` / `stream` / `predictOne`. */
export function validatePredictOptions(options: unknown): void {
  const c = new OptionChecker('predict', asOptions('predict', options));
  c.bool('keepImages').bool('keepOutputs').int('batchSize', OPTION_BOUNDS.batchSize);
}

/** Checks that `inputs` is an array (a single image must be wrapped: `predict([image])`). */
export function validatePredictInputs(inputs: unknown): void {
  if (!Array.isArray(inputs)) {
    throw new InputError(`predict: inputs must be an array of images (file paths, encoded bytes, { data, name } or raw pixels), got ${showArgument(inputs)}`, {
      hint: typeof inputs === 'string' || inputs instanceof Uint8Array ? 'wrap a single image in an array, or call predictOne' : HINT,
    });
  }
}

/**
 * Why `input` (item `index` of a predict call) is not an image input, or undefined when its
 * shape is right (its content is checked when it is decoded).
 */
export function imageInputProblem(input: unknown): string | undefined {
  if (typeof input === 'string') return input.length === 0 ? 'an empty path' : undefined;
  if (input instanceof Uint8Array) return undefined;
  if (typeof input !== 'object' || input === null) return `${showArgument(input)} is not an image (a file path, encoded bytes, { data, name } or raw pixels { data, width, height, maxValue })`;
  const o = input as Record<string, unknown>;
  if ('width' in o || 'height' in o) return undefined; // raw pixels: checked in full by checkRawImage
  if (!(o.data instanceof Uint8Array)) return `${showArgument(input)} is not an image: { data, name } needs data as a Uint8Array of encoded bytes`;
  if (typeof o.name !== 'string') return `{ data, name } needs name as a string, got ${showArgument(o.name)}`;
  return undefined;
}
