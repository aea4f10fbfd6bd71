/**
 * Library API misuse from JavaScript: wrong types and values for every option of createDetector,
 * exportModel and predict must be a ConfigError (options) or an InputError (images) naming the
 * option — not a TypeError, an onnxruntime `std::bad_alloc`, or weights `{}` silently becoming
 * random weights.
 */
import assert from 'node:assert/strict';
import { ConfigError, InputError } from '@rcnn/core';
import { type Detector, type DetectorOptions, createDetector, exportModel } from '@rcnn/runtime';
import { register as toy, toyConfig } from '@rcnn/runtime/toy';
import { type CaseContext, type ReliabilityCase, assertTyped, thrown } from '../cases.js';
import { caseFiles } from '../common.js';

/** Options that make a valid toy detector; each case replaces one of them with something wrong. */
function toyOptions(): DetectorOptions {
  return { config: toyConfig({ mask: true }), register: [toy], onWarning: () => undefined, threads: { intraOp: 1 } };
}

/** [option path, the wrong value, what the message must say]. */
export const BAD_DETECTOR_OPTIONS: readonly (readonly [string, unknown, RegExp])[] = [
  ['set', 'MODEL.NUM_CLASSES=3', /option set must be an array of strings, got "MODEL\.NUM_CLASSES=3"/],
  ['set', [3], /option set must be an array of strings/],
  ['devices', [1], /option devices must be a string or an array of strings, got an array of 1/],
  ['onWarning', 'x', /option onWarning must be a function, got "x"/],
  ['maxInFlight', 0, /option maxInFlight must be an integer in \[1, 64\], got 0/],
  ['maxInFlight', 1.5, /option maxInFlight must be an integer in \[1, 64\]/],
  ['weights', 42, /option weights must be a weights file path or a WeightStore .*got 42/],
  ['weights', {}, /option weights must be a weights file path or a WeightStore .*got an object with keys \[\]/],
  ['weights', '', /option weights must be a non-empty file path/],
  ['threads', { intraOp: 1e9 }, /option threads\.intraOp must be an integer in \[1, 1024\], got 1000000000/],
  ['threads', { intraOp: 0 }, /option threads\.intraOp must be an integer in \[1, 1024\], got 0/],
  ['threads', { intra: 2 }, /option threads\.intra must be absent/],
  ['threads', 4, /option threads must be an object, got 4/],
  ['precision', 'bfloat64', /option precision must be one of "float32", "float16", got "bfloat64"/],
  ['seed', -1, /option seed must be an integer in \[0, 4294967295\], got -1/],
  ['seed', 1.5, /option seed must be an integer/],
  ['seed', '7', /option seed must be an integer/],
  ['batchSize', '4', /option batchSize must be an integer >= 1, got "4"/],
  ['strict', 'yes', /option strict must be true or false/],
  ['nonFinite', 'maybe', /option nonFinite must be one of "error", "warn", "ignore"/],
  ['logLevel', 'loud', /option logLevel must be one of/],
  ['config', 42, /option config must be a preset name, a config file path or a config object/],
  ['config', null, /option config must be a preset name/],
  ['register', toy, /option register must be an array of functions/],
  ['container', {}, /option container must be a DependencyContainer/],
  ['allowSpecialFiles', 1, /option allowSpecialFiles must be true or false, got 1/],
];

/** Every API-misuse case. */
export function apiCases(): ReliabilityCase[] {
  const cases: ReliabilityCase[] = [];
  const add = (name: string, run: (ctx: CaseContext) => Promise<void>): void => {
    cases.push({ category: 'api', name, run });
  };
  for (const options of [null, 'maskrcnn_resnet50_fpn', 42, []] as const) {
    add(`createDetector(${JSON.stringify(options)}): a ConfigError`, async () => {
      const e = await thrown(() => createDetector(options as unknown as DetectorOptions));
      assertTyped(e, ConfigError, /createDetector: options must be an object/);
    });
  }
  for (const [key, value, pattern] of BAD_DETECTOR_OPTIONS) {
    add(`createDetector({ ${key}: ${typeof value === 'function' ? 'a function' : JSON.stringify(value)} }): a ConfigError naming ${key}`, async () => {
      let detector: Detector | undefined;
      const e = await thrown(async () => {
        detector = await createDetector({ ...toyOptions(), [key]: value } as DetectorOptions);
      });
      await detector?.close();
      assertTyped(e, ConfigError, pattern);
      assert.ok(e.key?.startsWith(key), `the error's key ${e.key} names ${key}`);
    });
  }
  add('exportModel validates its options too (weights {} , precision)', async () => {
    assertTyped(await thrown(() => exportModel({ ...toyOptions(), weights: {} } as never)), ConfigError, /exportModel: option weights must be/);
    assertTyped(await thrown(() => exportModel({ ...toyOptions(), precision: 'int4' } as never)), ConfigError, /exportModel: option precision must be one of/);
    assertTyped(await thrown(() => exportModel(null as never)), ConfigError, /exportModel: options must be an object/);
  });
  for (const [label, inputs] of [
    ['predict(null)', null],
    ['predict("a.png")', 'a.png'],
    ['predict(123)', 123],
    ['predict({})', {}],
  ] as const) {
    add(`${label}: an InputError (inputs must be an array)`, async (ctx) => {
      const d = await ctx.toy();
      assertTyped(await thrown(() => d.predict(inputs as never)), InputError, /predict: inputs must be an array of images/);
    });
  }
  add('predict([{}, 123, null, { data: "x", name: "n" }, { data: bytes, name: 5 }, good]): each bad item fails alone with an InputError, the good one runs', async (ctx) => {
    const d = await ctx.toy();
    const good = { data: new Uint8Array(40 * 30 * 3).fill(128), width: 40, height: 30, maxValue: 255 };
    const outcomes = await d.predict([{}, 123, null, { data: 'x', name: 'n' }, { data: new Uint8Array(4), name: 5 }, good] as never[], { batchSize: 3 });
    assert.equal(outcomes.length, 6);
    for (const [i, o] of outcomes.slice(0, 5).entries()) {
      assert.ok(!o.ok, `item ${i} fails`);
      assertTyped(o.error, InputError, new RegExp(`<input ${i}>: `));
      assert.equal(o.source, `<input ${i}>`);
    }
    assert.ok(outcomes[5]!.ok, 'the good image runs');
  });
  for (const [label, options, pattern] of [
    ['null', null, /predict: options must be an object/],
    ['{ batchSize: "2" }', { batchSize: '2' }, /predict: option batchSize must be an integer >= 1/],
    ['{ keepImages: 1 }', { keepImages: 1 }, /predict: option keepImages must be true or false/],
  ] as const) {
    add(`predict([], ${label}): a ConfigError`, async (ctx) => {
      const d = await ctx.toy();
      assertTyped(await thrown(() => d.predict([], options as never)), ConfigError, pattern);
    });
  }
  add('weights {} no longer falls back to random weights', async () => {
    const warnings: string[] = [];
    const e = await thrown(() => createDetector({ config: caseFiles('maskrcnn_tiny').config, weights: {} as never, onWarning: (m) => warnings.push(m) }));
    assertTyped(e, ConfigError, /option weights/);
    assert.deepEqual(warnings, [], 'no "RANDOM WEIGHTS" warning: nothing was built');
  });
  return cases;
}
