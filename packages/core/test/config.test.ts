import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type CaseMapper, ConfigError, defineSection, describeConfig, field, loadConfig, sectionValues } from '../src/index.js';
import { fixturesDir } from './helpers.js';

const fails = (fn: () => unknown, key: string, pattern: RegExp): void =>
  assert.throws(fn, (e: unknown) => e instanceof ConfigError && e.key === key && pattern.test(e.message));

describe('config', () => {
  it('has torchvision defaults and Detectron implications', () => {
    const c = loadConfig();
    assert.equal(c.MODEL.NUM_CLASSES, 91);
    assert.equal(c.TEST.SCALE, 800);
    assert.equal(c.TEST.MAX_SIZE, 1333);
    assert.equal(c.RPN.RPN_ON, true, 'FASTER_RCNN implies RPN_ON');
    assert.equal(c.MODEL.BBOX_XFORM_CLIP, Math.log(1000 / 16));
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.MODEL));
  });

  it('merges YAML, JSON and --set overrides in order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rcnn-cfg-'));
    const yaml = join(dir, 'a.yaml');
    writeFileSync(yaml, 'MODEL:\n  NUM_CLASSES: 5\n  MASK_ON: true\nTEST:\n  NMS: 0.4\n');
    const json = join(dir, 'b.json');
    writeFileSync(json, JSON.stringify({ TEST: { NMS: 0.3 } }));
    const c = loadConfig({ layers: [yaml, json], set: ['TEST.DETECTIONS_PER_IM=7', 'RPN.SIZES=[8, 16]'] });
    assert.equal(c.MODEL.NUM_CLASSES, 5);
    assert.equal(c.MODEL.MASK_ON, true);
    assert.equal(c.TEST.NMS, 0.3);
    assert.equal(c.TEST.DETECTIONS_PER_IM, 7);
    assert.deepEqual(c.RPN.SIZES, [8, 16]);
  });

  it('names unknown keys with the allowed ones and a suggestion', () => {
    assert.throws(
      () => loadConfig({ set: ['MODEL.NUM_CLASSE=3'] }),
      (e: unknown) => e instanceof ConfigError && e.key === 'MODEL.NUM_CLASSE' && /MODEL has: .*NUM_CLASSES/.test(e.message) && e.hint === 'did you mean NUM_CLASSES?',
    );
    fails(() => loadConfig({ layers: [{ MODLE: { NUM_CLASSES: 3 } }] }), 'MODLE', /known sections: MODEL/);
  });

  it('rejects wrong types naming key and accepted values', () => {
    fails(() => loadConfig({ set: ['MODEL.NUM_CLASSES=abc'] }), 'MODEL.NUM_CLASSES', /an integer in \[2, 100000\]/);
    fails(() => loadConfig({ set: ['MODEL.NUM_CLASSES=2.5'] }), 'MODEL.NUM_CLASSES', /integer/);
    fails(() => loadConfig({ set: ['MODEL.MASK_ON=yes please'] }), 'MODEL.MASK_ON', /true or false/);
    fails(() => loadConfig({ set: ['INPUT.FORMAT=RBG'] }), 'INPUT.FORMAT', /one of "RGB", "BGR"/);
    fails(() => loadConfig({ set: ['MODEL.BBOX_REG_WEIGHTS=[1, 2]'] }), 'MODEL.BBOX_REG_WEIGHTS', /length 4/);
    fails(() => loadConfig({ set: ['TEST.NMS=1.5'] }), 'TEST.NMS', /in \[0, 1\]/);
  });

  it('rejects contradictory flags', () => {
    fails(() => loadConfig({ set: ['MODEL.MASK_ON=true', 'MODEL.RPN_ONLY=true'] }), 'MODEL.MASK_ON', /contradicts MODEL.RPN_ONLY/);
    fails(() => loadConfig({ set: ['RPN.RPN_ON=false'] }), 'RPN.RPN_ON', /MODEL.FASTER_RCNN/);
    fails(() => loadConfig({ set: ['FPN.ROI_MIN_LEVEL=5', 'FPN.ROI_MAX_LEVEL=3'] }), 'FPN.ROI_MIN_LEVEL', />/);
  });

  it('reports missing and malformed files', () => {
    assert.throws(() => loadConfig({ layers: ['/nonexistent/rcnn.yaml'] }), (e: unknown) => e instanceof ConfigError && /cannot read config file \/nonexistent\/rcnn.yaml/.test(e.message));
    const dir = mkdtempSync(join(tmpdir(), 'rcnn-cfg-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ "MODEL": ');
    assert.throws(() => loadConfig({ layers: [bad] }), /not valid JSON/);
    const list = join(dir, 'list.yaml');
    writeFileSync(list, '- 1\n- 2\n');
    assert.throws(() => loadConfig({ layers: [list] }), /mapping of sections/);
  });

  it('bounds the sizes that set the model input (regression: TEST.SCALE=30000 took 8.5 GB, then failed in onnxruntime)', () => {
    fails(() => loadConfig({ set: ['TEST.SCALE=30000', 'TEST.MAX_SIZE=30000'] }), 'TEST.SCALE', /an integer in \[1, 10000\]/);
    fails(() => loadConfig({ set: ['TEST.MAX_SIZE=10001'] }), 'TEST.MAX_SIZE', /an integer in \[1, 10000\]/);
    fails(() => loadConfig({ set: ['INPUT.SIZE_DIVISIBILITY=1000000000'] }), 'INPUT.SIZE_DIVISIBILITY', /an integer in \[0, 1024\]/);
    assert.equal(loadConfig({ set: ['TEST.SCALE=10000', 'TEST.MAX_SIZE=10000'] }).TEST.MAX_SIZE, 10000);
  });

  it('prints no YAML warnings on stderr (regression: yaml warned through process.emitWarning)', async () => {
    const seen: string[] = [];
    const listener = (w: Error): void => {
      seen.push(w.message);
    };
    process.on('warning', listener);
    try {
      const dir = mkdtempSync(join(tmpdir(), 'rcnn-cfg-'));
      const odd = join(dir, 'odd.yaml');
      writeFileSync(odd, '%FOO bar\n---\nTEST:\n  NMS: 0.4\n');
      assert.equal(loadConfig({ layers: [odd] }).TEST.NMS, 0.4);
      fails(() => loadConfig({ set: ['TEST.NMS=!weird 0.4'] }), 'TEST.NMS', /must be a number/);
      loadConfig({ set: ['MODEL.CONV_BODY=%directive'] });
      await new Promise((resolve) => setImmediate(resolve)); // process warnings are emitted on the next tick
    } finally {
      process.off('warning', listener);
    }
    assert.deepEqual(seen, []);
  });

  it('refuses keys inherited from Object.prototype as unknown keys (regression)', () => {
    // `section.fields[key]` once found `constructor`, `toString` and `__proto__` on the prototype and accepted them silently.
    for (const key of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      fails(() => loadConfig({ layers: [JSON.parse(`{"MODEL": {"${key}": 5}}`) as Record<string, Record<string, unknown>>] }), `MODEL.${key}`, /unknown config key/);
    }
    fails(() => loadConfig({ set: ['TEST.constructor=1'] }), 'TEST.constructor', /unknown config key TEST\.constructor/);
  });

  it('reports values JSON cannot show (BigInt, Infinity) as they are, in a ConfigError (regression)', () => {
    fails(() => loadConfig({ layers: [{ MODEL: { NUM_CLASSES: 5n } }] }), 'MODEL.NUM_CLASSES', /must be an integer .*got 5/);
    fails(() => loadConfig({ set: ['MODEL.NUM_CLASSES=1e400'] }), 'MODEL.NUM_CLASSES', /got Infinity$/);
  });

  it('refuses a malformed case.json with a ConfigError naming the file (regression)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rcnn-cfg-'));
    for (const [name, model] of [
      ['empty.json', { kind: 'maskrcnn' }],
      ['null-backbone.json', { kind: 'maskrcnn', backbone: null }],
    ] as const) {
      const path = join(dir, name);
      writeFileSync(path, JSON.stringify({ format_version: 1, model }));
      fails(() => loadConfig({ layers: [path] }), 'case.json', new RegExp(`${name.replace('.', '\\.')}: malformed parity case`));
    }
  });

  it('accepts plugin sections and types their values', () => {
    const section = defineSection('MY_HEAD', 'test section', 'test', { DEPTH: field.int(3, 'depth', { min: 1 }) });
    const c = loadConfig({ sections: [section], set: ['MY_HEAD.DEPTH=5'] });
    const v: number = sectionValues(c, section).DEPTH;
    assert.equal(v, 5);
    fails(() => loadConfig({ set: ['MY_HEAD.DEPTH=5'] }), 'MY_HEAD', /unknown config section/);
  });

  it('maps every public case.json (box head types through the registered mappers)', () => {
    // A stand-in for a plugin that maps `ResNetRes5Head` (the real one is @rcnn/res5-head's):
    // core knows no plugin, so the C4 case needs a registered mapper.
    const res5: CaseMapper = {
      name: 'test.res5',
      provider: 'test',
      slot: 'roi-box-head',
      caseTypes: ['ResNetRes5Head'],
      fromCase: (section, context) => {
        const r = context.layer.RESNETS as { STAGE_PLANES: number[]; STAGE_BLOCKS: number[] };
        const h = section as unknown as { planes: number; blocks: number };
        return { RESNETS: { STAGE_PLANES: [...r.STAGE_PLANES, h.planes], STAGE_BLOCKS: [...r.STAGE_BLOCKS, h.blocks] }, FAST_RCNN: { ROI_BOX_HEAD: 'test.res5' } };
      },
    };
    for (const name of ['maskrcnn_tiny', 'keypointrcnn_tiny', 'fasterrcnn_tiny_x_batch2', 'fasterrcnn_tiny_c4']) {
      const c = loadConfig({ layers: [join(fixturesDir(), name, 'case.json')], caseMapping: { mappers: [res5] } });
      assert.equal(c.MODEL.MASK_ON, name.startsWith('mask'));
      assert.equal(c.MODEL.KEYPOINTS_ON, name.startsWith('keypoint'));
      assert.equal(c.FPN.FPN_ON, name !== 'fasterrcnn_tiny_c4');
      assert.equal(c.TEST.SCALE, name === 'fasterrcnn_tiny_x_batch2' ? 160 : 224);
    }
    const path = join(fixturesDir(), 'fasterrcnn_tiny_c4', 'case.json');
    const c4 = loadConfig({ layers: [path], caseMapping: { mappers: [res5] } });
    assert.deepEqual(c4.RESNETS.STAGE_PLANES, [16, 32, 64, 128], 'res5 head planes appended as stage 4 by the mapper');
    assert.equal(c4.FAST_RCNN.ROI_BOX_HEAD, 'test.res5');
    assert.deepEqual(c4.RPN.SIZES, [32, 64, 128, 256, 512]);
    // Without a mapper for its box head the case fails naming the type and how to register one …
    fails(() => loadConfig({ layers: [path] }), 'case.json', /box head type "ResNetRes5Head" is not mapped by any registered implementation/);
    assert.throws(() => loadConfig({ layers: [path] }), (e: unknown) => e instanceof ConfigError && /--plugin/.test(e.hint ?? '') && /register/.test(e.hint ?? ''));
    // … unless the caller builds no box head from it.
    const body = loadConfig({ layers: [path], caseMapping: { unmappedHeads: 'omit' } });
    assert.deepEqual(body.RESNETS.STAGE_PLANES.slice(0, 3), [16, 32, 64]);
    assert.equal(body.MODEL.CONV_BODY, 'ResNet.add_ResNet_custom_conv4_body');
  });

  it('documents every key', () => {
    const md = describeConfig();
    assert.match(md, /\| `MODEL.NUM_CLASSES` \| `91` \|/);
    assert.match(md, /## KRCNN/);
  });
});

describe('docs/config.md', () => {
  it('is generated from the current sections (run `npm run docs:config` after changing a key)', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(join(fixturesDir(), '..', '..', 'docs', 'config.md'), 'utf8');
    assert.ok(doc.endsWith(describeConfig()), 'docs/config.md is stale');
  });
});
