/**
 * Bad configurations through the public path (`createDetector({ config, set })`): unknown
 * sections and keys, wrong types, contradictory flags, missing and malformed files, bad `--set`
 * strings, unknown presets and registry names. Each must be a ConfigError (or RegistryError)
 * naming the key and what it accepts, before anything is built.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, RegistryError } from '@rcnn/core';
import type { DetectorOptions } from '@rcnn/runtime';
import { type CaseContext, type ReliabilityCase, assertTyped, thrown } from '../cases.js';
import { caseFiles, tinyDetector } from '../common.js';

/** Creates the maskrcnn_tiny detector with config overrides and returns what it threw (a created detector is closed and the case fails). */
async function createFails(options: Partial<DetectorOptions>): Promise<unknown> {
  return thrown(async () => (await tinyDetector('maskrcnn_tiny', options)).close());
}

/** Asserts a ConfigError with `key` whose message matches `patterns`. */
function configError(e: unknown, key: string | undefined, ...patterns: RegExp[]): ConfigError {
  assertTyped(e, ConfigError, ...patterns);
  if (key !== undefined) assert.equal(e.key, key, `the error names ${key}: ${e.message}`);
  return e;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Every config case. */
export function configCases(): ReliabilityCase[] {
  const cases: ReliabilityCase[] = [];
  const add = (name: string, run: (ctx: CaseContext) => Promise<void>): void => {
    cases.push({ category: 'config', name, run });
  };
  const setFails = (set: readonly string[], key: string | undefined, ...patterns: RegExp[]) => async (): Promise<void> => {
    configError(await createFails({ set }), key, ...patterns);
  };
  const fileFails = (name: string, text: string, key: string | undefined, ...patterns: RegExp[]) => async (ctx: CaseContext): Promise<void> => {
    const path = ctx.tmp.file(name, text);
    const e = configError(await createFails({ config: path }), key, ...patterns);
    assert.ok(e.message.includes(name), `the message names the file: ${e.message}`);
  };

  // --- unknown names ---
  add('unknown section in a YAML file: the known sections listed', fileFails('a.yaml', 'MODLE:\n  NUM_CLASSES: 3\n', 'MODLE', /unknown config section "MODLE" \(in .*a\.yaml\); known sections: MODEL, INPUT, TEST/));
  add('unknown key via --set: the section keys listed, a suggestion', async () => {
    const e = configError(await createFails({ set: ['MODEL.NUM_CLASES=3'] }), 'MODEL.NUM_CLASES', /unknown config key MODEL\.NUM_CLASES; MODEL has: .*NUM_CLASSES/);
    assert.equal(e.hint, 'did you mean NUM_CLASSES?');
  });
  add('unknown key in a JSON file', fileFails('b.json', JSON.stringify({ TEST: { NMS_THRESH: 0.4 } }), 'TEST.NMS_THRESH', /unknown config key TEST\.NMS_THRESH .*TEST has: .*\bNMS\b/));
  for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    add(`key inherited from Object.prototype (${key}): unknown, not silently accepted`, fileFails(`proto-${key.replace(/_/g, '')}.json`, `{"MODEL": {"${key}": 5}}`, `MODEL.${key}`, new RegExp(`unknown config key MODEL\\.${escape(key)}`)));
  }
  add('unknown preset: the presets listed, a suggestion', async () => {
    const e = configError(await thrown(async () => (await tinyDetector('maskrcnn_tiny', { config: 'maskrcnn_resnet50' })).close()), undefined, /unknown preset "maskrcnn_resnet50"; presets: .*maskrcnn_resnet50_fpn/);
    assert.equal(e.hint, 'did you mean maskrcnn_resnet50_fpn?');
  });
  add('unknown registry name (MODEL.CONV_BODY): the registered names listed', async () => {
    const e = await createFails({ set: ['MODEL.CONV_BODY=ResNet.add_ResNet9000_body'] });
    assertTyped(e, RegistryError, /no conv body named "ResNet\.add_ResNet9000_body" \(MODEL\.CONV_BODY\)\. Registered conv body implementations: .*FPN\.add_fpn_ResNet_custom_conv5_body/);
  });

  // --- wrong types and ranges: key and accepted values named ---
  for (const [assignment, key, accepts] of [
    ['MODEL.NUM_CLASSES=five', 'MODEL.NUM_CLASSES', /must be an integer in \[2, 100000\], got "five"/],
    ['MODEL.NUM_CLASSES=2.5', 'MODEL.NUM_CLASSES', /must be an integer in \[2, 100000\], got 2\.5/],
    ['MODEL.MASK_ON=yes please', 'MODEL.MASK_ON', /must be true or false, got "yes please"/],
    ['INPUT.FORMAT=RBG', 'INPUT.FORMAT', /must be one of "RGB", "BGR", got "RBG"/],
    ['TEST.NMS=1.5', 'TEST.NMS', /must be a number in \[0, 1\], got 1\.5/],
    ['TEST.SCORE_THRESH=-0.1', 'TEST.SCORE_THRESH', /must be a number in \[0, 1\]/],
    ['MODEL.BBOX_REG_WEIGHTS=[1, 2]', 'MODEL.BBOX_REG_WEIGHTS', /must be a list of numbers of length 4/],
    ['INPUT.PIXEL_MEANS=[a, b, c]', 'INPUT.PIXEL_MEANS', /must be a list of numbers of length 3/],
    ['RPN.SIZES=big', 'RPN.SIZES', /must be a list of numbers, got "big"/],
    ['TEST.SCALE=-5', 'TEST.SCALE', /must be an integer in \[1, 10000\]/],
    ['TEST.SCALE=30000', 'TEST.SCALE', /must be an integer in \[1, 10000\]/],
    ['TEST.DETECTIONS_PER_IM=0.5', 'TEST.DETECTIONS_PER_IM', /must be an integer in \[1, 10000\]/],
    ['MODEL.NUM_CLASSES=1e400', 'MODEL.NUM_CLASSES', /must be an integer in \[2, 100000\], got Infinity/],
    ['MODEL.NUM_CLASSES={a: 1}', 'MODEL.NUM_CLASSES', /must be an integer/],
    ['MODEL.NUM_CLASSES=!!binary aGVsbG8=', 'MODEL.NUM_CLASSES', /must be an integer/],
    ['FPN.RPN_ANCHOR_SIZES=[1, 2]', 'FPN.RPN_ANCHOR_SIZES', /must be a list of lists of numbers/],
  ] as const) {
    add(`wrong value ${assignment}`, setFails([assignment], key, accepts));
  }

  // --- contradictions ---
  add('MODEL.MASK_ON with MODEL.RPN_ONLY', setFails(['MODEL.RPN_ONLY=true'], 'MODEL.MASK_ON', /MODEL\.MASK_ON contradicts MODEL\.RPN_ONLY/));
  add('MODEL.KEYPOINTS_ON with MODEL.RPN_ONLY', async () => {
    configError(
      await thrown(async () => (await tinyDetector('keypointrcnn_tiny', { set: ['MODEL.RPN_ONLY=true'] })).close()),
      'MODEL.KEYPOINTS_ON',
      /MODEL\.KEYPOINTS_ON contradicts MODEL\.RPN_ONLY/,
    );
  });
  add('RPN.RPN_ON=false with MODEL.FASTER_RCNN', setFails(['RPN.RPN_ON=false'], 'RPN.RPN_ON', /RPN\.RPN_ON is false but MODEL\.FASTER_RCNN is true/));
  add('FPN.ROI_MIN_LEVEL above FPN.ROI_MAX_LEVEL', setFails(['FPN.ROI_MIN_LEVEL=5', 'FPN.ROI_MAX_LEVEL=3'], 'FPN.ROI_MIN_LEVEL', /FPN\.ROI_MIN_LEVEL \(5\) > FPN\.ROI_MAX_LEVEL \(3\)/));
  add('TEST.SCALE above TEST.MAX_SIZE', setFails(['TEST.SCALE=400', 'TEST.MAX_SIZE=300'], 'TEST.SCALE', /TEST\.SCALE \(400\) > TEST\.MAX_SIZE \(300\)/));
  add('a zero in INPUT.PIXEL_STDS', setFails(['INPUT.PIXEL_STDS=[1, 0, 1]'], 'INPUT.PIXEL_STDS', /must not contain 0/));

  // --- files ---
  add('missing config file', async (ctx) => {
    configError(await createFails({ config: join(ctx.tmp.path, 'nope.yaml') }), undefined, /config file .*nope\.yaml not found/);
  });
  add('invalid YAML', fileFails('broken.yaml', 'MODEL:\n  NUM_CLASSES: [3\n', undefined, /is not valid YAML/));
  add('invalid JSON', fileFails('broken.json', '{"MODEL": {"NUM_CLASSES": 3,}}', undefined, /is not valid JSON/));
  add('JSON with a byte-order mark', fileFails('bom.json', '\ufeff{"MODEL": {"NUM_CLASSES": 3}}', undefined, /is not valid JSON/));
  add('YAML holding a list', fileFails('list.yaml', '- MODEL\n- TEST\n', undefined, /must hold a mapping of sections .* got a list/));
  add('YAML holding a scalar section', fileFails('scalar.yaml', 'MODEL: 5\n', 'MODEL', /config section MODEL must be a mapping of keys/));
  add('YAML with two documents', fileFails('two.yaml', 'MODEL:\n  NUM_CLASSES: 3\n---\nTEST:\n  NMS: 0.3\n', undefined, /is not valid YAML/));
  add('YAML with a duplicate key', fileFails('dup.yaml', 'MODEL:\n  NUM_CLASSES: 3\n  NUM_CLASSES: 4\n', undefined, /is not valid YAML: Map keys must be unique/));
  add('YAML alias bomb (billion laughs): refused quickly', async (ctx) => {
    const lines = ['a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]'];
    for (const [x, y] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd'], ['f', 'e'], ['g', 'f'], ['h', 'g']]) lines.push(`${x}: &${x} [${Array(9).fill(`*${y}`).join(', ')}]`);
    // 9^8 = 43 million expanded nodes would take gigabytes: refused before expanding means the heap stays small.
    const before = process.memoryUsage().heapUsed;
    await fileFails('bomb.yaml', `${lines.join('\n')}\n`, undefined, /(resource exhaustion|unknown config section)/)(ctx);
    const grew = (process.memoryUsage().heapUsed - before) / 2 ** 20;
    assert.ok(grew < 256, `the heap grew by ${grew.toFixed(0)} MiB: the aliases were expanded`);
  });
  add('YAML nested 100000 levels deep', fileFails('deep.yaml', `${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, undefined, /(not valid YAML|must hold a mapping)/));
  add('a parity case.json with only model.kind (malformed)', fileFails('case.json', JSON.stringify({ format_version: 1, model: { kind: 'maskrcnn' } }), 'case.json', /case\.json: malformed parity case/));
  add('a parity case.json of an unknown model kind', fileFails('odd.json', JSON.stringify({ format_version: 1, model: { kind: 'retinanet' } }), 'case.json', /model\.kind "retinanet" is unknown/));
  add('a parity case.json whose class count is a string', async (ctx) => {
    const doc = JSON.parse(readFileSync(caseFiles('maskrcnn_tiny').config, 'utf8')) as { model: { num_classes: unknown } };
    doc.model.num_classes = 'five';
    await fileFails('typed.json', JSON.stringify(doc), 'MODEL.NUM_CLASSES', /must be an integer in \[2, 100000\], got "five"/)(ctx);
  });

  // --- --set syntax ---
  for (const [assignment, pattern] of [
    ['MODEL', /override "MODEL" is not KEY=VALUE/],
    ['=5', /override "=5" is not KEY=VALUE/],
    ['MODEL.NUM_CLASSES', /is not KEY=VALUE/],
    ['A.B.C=1', /override key "A\.B\.C" must be SECTION\.KEY/],
    ['.NMS=0.3', /must be SECTION\.KEY/],
    ['TEST.=0.3', /must be SECTION\.KEY/],
  ] as const) {
    add(`--set "${assignment}"`, setFails([assignment], undefined, pattern));
  }
  add('a config layer object with a BigInt value (API)', async () => {
    configError(await createFails({ config: { MODEL: { NUM_CLASSES: 5n } } }), 'MODEL.NUM_CLASSES', /must be an integer in \[2, 100000\], got 5/);
  });
  add('a config layer that is an array (API)', async () => {
    configError(await createFails({ config: [1, 2] as unknown as Record<string, Record<string, unknown>> }), 'config', /option config must be a preset name, a config file path or a config object .*got an array of 2/);
  });
  return cases;
}
