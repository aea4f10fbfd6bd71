/**
 * Fuzz targets for the library's argument validation: arbitrary values (fast-check's `anything`,
 * mixed with well-typed ones) for every option of createDetector / exportModel / predict and for
 * predict's inputs. Whatever is passed, the API must throw a typed error or accept it — and what it
 * accepts must satisfy an independent statement of the options' types (the invariant).
 */
import { WeightStore } from '@rcnn/core';
import { type Detector, type ImageInput, validateDetectorOptions, validateExportOptions, validatePredictOptions } from '@rcnn/runtime';
import fc from 'fast-check';
import { isTypedError, toyDetector } from '../common.js';
import { type FuzzTarget, InvariantError } from './targets.js';

const check = (cond: boolean, message: string): void => {
  if (!cond) throw new InvariantError(message);
};
const isInt = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
/** A value for a message, even one without a prototype (String() would throw). */
const show = (v: unknown): string => {
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
};
const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The option types, stated independently of the runtime's validator: what an accepted options object must satisfy. */
function assertWellTyped(o: unknown, keys: ReadonlySet<string>): void {
  if (o === undefined) return;
  check(isPlain(o), 'accepted options that are not an object');
  const opt = o as Record<string, unknown>;
  const has = (k: string): boolean => keys.has(k) && Object.prototype.hasOwnProperty.call(opt, k) && opt[k] !== undefined;
  const v = (k: string): unknown => opt[k];
  if (has('config')) check(typeof v('config') === 'string' || isPlain(v('config')), `accepted config ${show(v('config'))}`);
  if (has('set')) check(Array.isArray(v('set')) && (v('set') as unknown[]).every((s) => typeof s === 'string'), 'accepted a set that is not string[]');
  if (has('weights')) check((typeof v('weights') === 'string' && (v('weights') as string).length > 0) || v('weights') instanceof WeightStore, 'accepted weights that are neither a path nor a WeightStore');
  if (has('seed')) check(isInt(v('seed'), 0, 2 ** 32 - 1), `accepted seed ${show(v('seed'))}`);
  if (has('devices')) check(typeof v('devices') === 'string' || (Array.isArray(v('devices')) && (v('devices') as unknown[]).every((d) => typeof d === 'string')), 'accepted bad devices');
  if (has('threads')) {
    const t = v('threads');
    check(isPlain(t) && Object.keys(t).every((k) => (k === 'intraOp' || k === 'interOp') && (t[k] === undefined || isInt(t[k], 1, 1024))), `accepted threads ${JSON.stringify(t)}`);
  }
  if (has('maxInFlight')) check(isInt(v('maxInFlight'), 1, 64), `accepted maxInFlight ${show(v('maxInFlight'))}`);
  if (has('batchSize')) check(isInt(v('batchSize'), 1, Number.MAX_SAFE_INTEGER), `accepted batchSize ${show(v('batchSize'))}`);
  if (has('precision')) check(v('precision') === 'float32' || v('precision') === 'float16', `accepted precision ${show(v('precision'))}`);
  if (has('nonFinite')) check(['error', 'warn', 'ignore'].includes(v('nonFinite') as string), 'accepted a bad nonFinite');
  if (has('logLevel')) check(['verbose', 'info', 'warning', 'error', 'fatal'].includes(v('logLevel') as string), 'accepted a bad logLevel');
  for (const k of ['strict', 'intermediates', 'allowSpecialFiles', 'calibrateRandomWeights', 'keepImages', 'keepOutputs']) {
    if (has(k)) check(typeof v(k) === 'boolean', `accepted ${k} ${show(v(k))}`);
  }
  if (has('onWarning')) check(typeof v('onWarning') === 'function', 'accepted a non-function onWarning');
  if (has('register')) check(Array.isArray(v('register')) && (v('register') as unknown[]).every((f) => typeof f === 'function'), 'accepted a bad register');
  if (has('profile')) check(typeof v('profile') === 'string', 'accepted a non-string profile');
}

const SOURCE_KEYS = ['config', 'set', 'weights', 'seed', 'nonFinite', 'onWarning', 'register', 'calibrateRandomWeights'];
/** The options each entry point reads (what its validation answers for). */
const VALIDATED: readonly [(o: unknown) => void, ReadonlySet<string>][] = [
  [validateDetectorOptions, new Set([...SOURCE_KEYS, 'devices', 'threads', 'maxInFlight', 'batchSize', 'precision', 'logLevel', 'strict', 'intermediates', 'allowSpecialFiles', 'profile'])],
  [validateExportOptions, new Set([...SOURCE_KEYS, 'intermediates', 'precision'])],
  [validatePredictOptions, new Set(['batchSize', 'keepImages', 'keepOutputs'])],
];

const KEYS = [
  'config', 'set', 'weights', 'seed', 'devices', 'threads', 'maxInFlight', 'batchSize', 'precision', 'nonFinite', 'logLevel', 'strict',
  'intermediates', 'allowSpecialFiles', 'calibrateRandomWeights', 'onWarning', 'register', 'profile', 'container', 'labels', 'keepImages', 'keepOutputs',
] as const;

/** A value that is often of a plausible type for some option, and often not. */
const optionValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ maxDepth: 2 }),
  fc.integer({ min: -5, max: 2 ** 33 }),
  fc.double(),
  fc.constantFrom('cpu', 'float16', 'bfloat64', 'warn', 'fatal', '', 'maskrcnn_resnet50_fpn', 'MODEL.NUM_CLASSES=3'),
  fc.boolean(),
  fc.constant(() => undefined),
  fc.record({ intraOp: fc.oneof(fc.integer({ min: -2, max: 2000 }), fc.double(), fc.constant(1e9)), interOp: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }) }, { requiredKeys: [] }),
  fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(() => undefined)), { maxLength: 3 }),
);

const optionsArbitrary: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.dictionary(fc.constantFrom(...KEYS), optionValue, { maxKeys: 5 }) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) },
);

/** `api-options`: arbitrary option objects through createDetector's, exportModel's and predict's validation. */
export function apiOptionsTarget(): FuzzTarget<unknown> {
  return {
    name: 'api-options',
    description: 'arbitrary values for every option of createDetector / exportModel / predict → their validation; accepted options must be well typed',
    arbitrary: optionsArbitrary,
    run(options) {
      const outcomes: unknown[] = [];
      for (const [validate, keys] of VALIDATED) {
        try {
          validate(options);
          assertWellTyped(options, keys);
        } catch (e) {
          if (e instanceof InvariantError || !isTypedError(e)) throw e;
          outcomes.push(e);
        }
      }
      // One label per input: the first refusal (createDetector's), or ok.
      if (outcomes.length > 0) throw outcomes[0];
    },
    show: (options) => {
      try {
        return JSON.stringify(options, (_k, v: unknown) => (typeof v === 'function' ? '<function>' : typeof v === 'bigint' ? `${v}n` : v)) ?? String(options);
      } catch {
        return String(options);
      }
    },
  };
}

const rawPixels = fc.record({
  data: fc.oneof(fc.constant(new Uint8Array(8 * 6 * 3).fill(90)), fc.uint8Array({ maxLength: 200 }), fc.anything()),
  width: fc.oneof(fc.constant(8), fc.integer({ min: -2, max: 30 }), fc.double()),
  height: fc.oneof(fc.constant(6), fc.integer({ min: -2, max: 30 })),
  maxValue: fc.oneof(fc.constant(255), fc.double(), fc.anything()),
});
const inputItem: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ maxDepth: 1 }),
  rawPixels,
  fc.uint8Array({ maxLength: 64 }),
  fc.record({ data: fc.oneof(fc.uint8Array({ maxLength: 32 }), fc.anything()), name: fc.oneof(fc.string(), fc.anything()) }),
  fc.constantFrom('', '/nonexistent/x.png', '/dev/zero'),
);

/** `api-predict`: arbitrary inputs and options to a live toy detector's predict(). */
export function apiPredictTarget(): FuzzTarget<{ inputs: unknown; options: unknown }> & { close(): Promise<void> } {
  let detector: Promise<Detector> | undefined;
  return {
    name: 'api-predict',
    description: 'arbitrary inputs (anything, raw pixels with wrong fields, bytes, { data, name }, special paths) and options → a toy detector\'s predict(); every outcome one per input, every error typed',
    arbitrary: fc.record({
      inputs: fc.oneof({ weight: 5, arbitrary: fc.array(inputItem, { maxLength: 4 }) }, { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) }),
      options: fc.oneof(fc.constant(undefined), fc.record({ batchSize: fc.oneof(fc.integer({ min: -1, max: 5 }), fc.anything()) }, { requiredKeys: [] }), fc.anything({ maxDepth: 1 })),
    }),
    async run({ inputs, options }) {
      detector ??= toyDetector({ toy: { mask: true }, threads: { intraOp: 1 } });
      const d = await detector;
      const outcomes = await d.predict(inputs as ImageInput[], options as never);
      check(Array.isArray(inputs) && outcomes.length === (inputs as unknown[]).length, 'one outcome per input');
      for (const [i, o] of outcomes.entries()) {
        check(o.index === i, `outcome ${i} has index ${o.index}`);
        if (!o.ok && !isTypedError(o.error)) throw o.error;
      }
      const failed = outcomes.find((o) => !o.ok);
      if (failed && !failed.ok) throw failed.error;
    },
    show: ({ inputs, options }) => {
      const s = (v: unknown): string => {
        try {
          return JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? `<${x.length} bytes>` : typeof x === 'bigint' ? `${x}n` : x)) ?? String(v);
        } catch {
          return String(v);
        }
      };
      return `inputs ${s(inputs)}, options ${s(options)}`;
    },
    async close() {
      const d = detector;
      detector = undefined;
      if (d) await (await d).close();
    },
  };
}
