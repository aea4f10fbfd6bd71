import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { register as registerRes5Head } from '@rcnn/res5-head';
import { type HostTensor, caseConfigLayer, caseMappers, createContainer, loadConfig, parseSafetensors, readSafetensorsFile, decodeEntry, writeSafetensors, findRepoRootPath } from './helpers/core.js';
import { type PickleFlavor, type PickleValue, publicCaseDir, writeNumpyPickle } from '@rcnn/testing';
import {
  ALLOWED_GLOBALS,
  CHECKPOINT_FORMATS,
  CheckpointError,
  DETECTRON2_RULES,
  DETECTRON_RULES,
  TORCHVISION_RULES,
  convertToSafetensors,
  exportCheckpoint,
  readCheckpoint,
  rulesTable,
  suggestedConfigLayer,
} from '../src/index.js';

const CASES = ['keypointrcnn_tiny', 'maskrcnn_tiny', 'fasterrcnn_tiny_c4', 'fasterrcnn_tiny_x_batch2'] as const;
const FLAVORS: readonly PickleFlavor[] = ['py2', 'py3-protocol2', 'py3'];

const bytesOf = (t: HostTensor): Buffer => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
const f32 = (t: HostTensor): Float32Array => t.data as Float32Array;

function fixtureTensors(name: string): Map<string, HostTensor> {
  const file = readSafetensorsFile(join(publicCaseDir(name), 'weights.safetensors'));
  return new Map([...file.entries].map(([k, e]) => [k, decodeEntry(e)]));
}

/** Row r of dim 0 as bytes. */
function rowsOf(t: HostTensor, from: number, to: number): Buffer {
  const b = bytesOf(t);
  const row = b.length / t.dims[0]!;
  return b.subarray(from * row, to * row);
}

const tmp = mkdtempSync(join(tmpdir(), 'rcnn-maps-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('Detectron2 names', () => {
  CASES.forEach((name, i) => {
    const flavor = FLAVORS[i % FLAVORS.length];
    it(`${name}: torchvision -> Detectron2 .pkl (${flavor}) -> torchvision is exact except the unused background rows`, () => {
      const tv = fixtureTensors(name);
      const exported = exportCheckpoint(tv, 'detectron2');
      assert.ok([...exported.tensors.keys()].every((k) => /^(backbone|proposal_generator|roi_heads)\./.test(k)));
      assert.ok(!exported.tensors.has('roi_heads.box_predictor.bbox_pred.weight') || exported.tensors.get('roi_heads.box_predictor.bbox_pred.weight')!.dims[0] === 4 * (tv.get('roi_heads.box_predictor.cls_score.weight')!.dims[0]! - 1));
      const pkl = writeNumpyPickle(new Map<string, PickleValue>([['model', exported.tensors], ['__author__', 'rcnn-node test']]), flavor);
      const back = readCheckpoint(pkl, { source: `${name}.d2.pkl` });
      assert.equal(back.format, 'detectron2');
      assert.deepEqual(back.report.unmapped, []);
      assert.deepEqual([...back.tensors.keys()].sort(), [...tv.keys()].sort());
      const classes = tv.get('roi_heads.box_predictor.cls_score.weight')!.dims[0]!;
      for (const [key, t] of tv) {
        const u = back.tensors.get(key)!;
        assert.deepEqual(u.dims, t.dims, key);
        assert.equal(u.dtype, t.dtype, key);
        if (/^roi_heads\.box_predictor\.bbox_pred\./.test(key)) {
          // Background group: Detectron2 has none; reading fills zeros. Every class row is exact.
          assert.ok(rowsOf(u, 4, 4 * classes).equals(rowsOf(t, 4, 4 * classes)), key);
          assert.ok([...f32(u).subarray(0, f32(u).length / classes)].every((x) => x === 0), key);
        } else if (/^roi_heads\.mask_predictor\.mask_fcn_logits\./.test(key)) {
          assert.ok(rowsOf(u, 1, classes).equals(rowsOf(t, 1, classes)), key);
          assert.ok([...f32(u).subarray(0, f32(u).length / classes)].every((x) => x === 0), key);
        } else assert.ok(bytesOf(u).equals(bytesOf(t)), `${key}: bytes differ`);
      }
      assert.ok(back.report.synthesized.some((s) => s.key === 'roi_heads.box_predictor.bbox_pred.weight'));
    });
  });

  it('moves the background class and reorders multi-size anchors as Detectron2 defines them', () => {
    const tv = fixtureTensors('fasterrcnn_tiny_c4');
    const d2 = exportCheckpoint(tv, 'detectron2').tensors;
    // cls_score: Detectron2 row K (last) is torchvision's background row 0.
    const cls = tv.get('roi_heads.box_predictor.cls_score.bias')!;
    assert.deepEqual([...f32(d2.get('roi_heads.box_predictor.cls_score.bias')!)], [...f32(cls).subarray(1), f32(cls)[0]]);
    // 15 anchors = 5 sizes x 3 ratios: torchvision a = r*5 + s, Detectron2 a = s*3 + r.
    const tvObj = f32(tv.get('rpn.head.cls_logits.bias')!);
    const d2Obj = f32(d2.get('proposal_generator.rpn_head.objectness_logits.bias')!);
    for (let r = 0; r < 3; r++) for (let s = 0; s < 5; s++) assert.equal(d2Obj[s * 3 + r], tvObj[r * 5 + s]);
    const tvDelta = tv.get('rpn.head.bbox_pred.weight')!;
    const d2Delta = d2.get('proposal_generator.rpn_head.anchor_deltas.weight')!;
    for (let r = 0; r < 3; r++) for (let s = 0; s < 5; s++) assert.ok(rowsOf(d2Delta, 4 * (s * 3 + r), 4 * (s * 3 + r) + 4).equals(rowsOf(tvDelta, 4 * (r * 5 + s), 4 * (r * 5 + s) + 4)));
    assert.ok(d2.has('backbone.stem.conv1.weight') && d2.has('roi_heads.res5.0.conv1.norm.running_var'), 'C4 names: no bottom_up, res5 in roi_heads');
  });

  it('fills missing FrozenBN statistics, keeps pixel_mean as a config hint and reports unknown keys', () => {
    const t = (dims: number[], v: number): HostTensor => ({ dtype: 'float32', dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(v) });
    const d2 = new Map<string, HostTensor>([
      ['backbone.bottom_up.stem.conv1.weight', t([4, 3, 7, 7], 1)],
      ['backbone.bottom_up.stem.conv1.norm.weight', t([4], 2)],
      ['backbone.bottom_up.stem.conv1.norm.bias', t([4], 3)],
      ['roi_heads.box_head.conv1.weight', t([2, 2, 3, 3], 0)],
      ['pixel_mean', { dtype: 'float32', dims: [3, 1, 1], data: Float32Array.of(103.53, 116.28, 123.675) }],
      ['pixel_std', { dtype: 'float32', dims: [3, 1, 1], data: Float32Array.of(57.375, 57.12, 58.395) }],
    ]);
    const r = readCheckpoint(writeNumpyPickle(new Map([['model', d2]]), 'py3'));
    assert.equal(r.format, 'detectron2');
    assert.deepEqual([...f32(r.tensors.get('backbone.body.bn1.running_mean')!)], [0, 0, 0, 0]);
    assert.deepEqual([...f32(r.tensors.get('backbone.body.bn1.running_var')!)], [1, 1, 1, 1]);
    assert.deepEqual(r.report.unmapped, ['roi_heads.box_head.conv1.weight']);
    assert.ok(r.tensors.has('roi_heads.box_head.conv1.weight'), 'unmapped keys are kept, not dropped');
    assert.deepEqual(r.report.ignored.map((i) => i.key).sort(), ['pixel_mean', 'pixel_std']);
    const layer = r.suggestedConfig as { INPUT: { PIXEL_MEANS: number[]; PIXEL_STDS: number[] } };
    assert.deepEqual(layer.INPUT.PIXEL_MEANS, [103.53, 116.28, 123.675]);
    assert.deepEqual(layer.INPUT.PIXEL_STDS, [57.375, 57.12, 58.395]);
  });
});

describe('Detectron (Caffe2) names', () => {
  CASES.forEach((name, i) => {
    const flavor = FLAVORS[(i + 1) % FLAVORS.length];
    it(`${name}: torchvision -> Detectron blobs (${flavor}) -> torchvision: exact except FrozenBN, folded into AffineChannel with the same function`, () => {
      const tv = fixtureTensors(name);
      const exported = exportCheckpoint(tv, 'detectron');
      assert.ok(exported.tensors.has('conv1_w') && exported.tensors.has('res_conv1_bn_s') && exported.tensors.has('cls_score_w'));
      const pkl = writeNumpyPickle(new Map<string, PickleValue>([['blobs', exported.tensors], ['cfg', 'MODEL: {}']]), flavor);
      for (const form of ['affine', 'frozen-bn'] as const) {
        const back = readCheckpoint(pkl, { source: `${name}.c2.pkl`, affineChannel: form });
        assert.equal(back.format, 'detectron');
        assert.deepEqual(back.report.unmapped, []);
        const norms = [...tv.keys()].filter((k) => k.endsWith('.running_var')).map((k) => k.slice(0, -'.running_var'.length));
        const expected = form === 'frozen-bn' ? [...tv.keys()] : [...tv.keys()].filter((k) => !/\.running_(mean|var)$/.test(k));
        assert.deepEqual([...back.tensors.keys()].sort(), expected.sort());
        for (const [key, t] of tv) {
          if (norms.some((n) => key.startsWith(`${n}.`))) continue;
          assert.ok(bytesOf(back.tensors.get(key)!).equals(bytesOf(t)), `${key}: bytes differ`);
        }
        for (const n of norms) {
          const [w, b, m, v] = ['weight', 'bias', 'running_mean', 'running_var'].map((p) => f32(tv.get(`${n}.${p}`)!)) as [Float32Array, Float32Array, Float32Array, Float32Array];
          const s = f32(back.tensors.get(`${n}.weight`)!);
          const o = f32(back.tensors.get(`${n}.bias`)!);
          if (form === 'frozen-bn') {
            assert.ok(f32(back.tensors.get(`${n}.running_mean`)!).every((x) => x === 0));
            assert.ok(f32(back.tensors.get(`${n}.running_var`)!).every((x) => x === 1));
          }
          // FrozenBatchNorm2d(eps 1e-5)(x) == x * s + o up to float32 rounding of s and o.
          for (let c = 0; c < w.length; c++) {
            for (const x of [-3, -0.5, 0, 1.25, 4]) {
              const ref = ((x - m[c]!) / Math.sqrt(v[c]! + 1e-5)) * w[c]! + b[c]!;
              assert.ok(Math.abs(x * s[c]! + o[c]! - ref) <= 1e-6 * Math.max(1, Math.abs(ref)) + 1e-6 * Math.abs(x * s[c]!), `${n}[${c}]`);
            }
          }
        }
        const resnets = (back.suggestedConfig as { RESNETS: Record<string, unknown> }).RESNETS;
        assert.equal(resnets.NORM, form === 'frozen-bn' ? 'FrozenBN' : 'AffineChannel');
        assert.equal(resnets.FROZEN_BN_EPS, 0);
      }
    });
  });

  it('puts res5 in the box head for C4 models and reports unknown blobs', () => {
    const tv = fixtureTensors('fasterrcnn_tiny_c4');
    const blobs = exportCheckpoint(tv, 'detectron').tensors;
    assert.ok(blobs.has('res5_0_branch2a_w') && blobs.has('conv_rpn_w') && !blobs.has('conv_rpn_fpn2_w'));
    blobs.set('fpn_6_subsampled_2x_w', { dtype: 'float32', dims: [1], data: Float32Array.of(1) });
    blobs.set('res2_0_branch2a_w_momentum', { dtype: 'float32', dims: [1], data: Float32Array.of(1) });
    const r = readCheckpoint(writeNumpyPickle(new Map([['blobs', blobs]]), 'py2'), { layout: 'c4' });
    assert.ok(r.tensors.has('roi_heads.box_head.res5.0.conv1.weight'));
    assert.deepEqual(r.report.unmapped, ['fpn_6_subsampled_2x_w']);
    assert.deepEqual(r.report.ignored.map((i) => i.key), ['res2_0_branch2a_w_momentum']);
    assert.equal(r.report.hints.layout, 'c4');
    assert.equal((r.suggestedConfig as { INPUT: Record<string, unknown> }).INPUT.SIZE_DIVISIBILITY, 0);
  });

  it('uses Detectron FPN blob names (last block of each stage, no _lateral on the top level)', () => {
    const blobs = exportCheckpoint(fixtureTensors('maskrcnn_tiny'), 'detectron').tensors;
    for (const k of ['fpn_inner_res5_0_sum_w', 'fpn_inner_res4_1_sum_lateral_w', 'fpn_inner_res2_0_sum_lateral_b', 'fpn_res3_0_sum_w', 'conv_rpn_fpn2_w', 'rpn_cls_logits_fpn2_b', 'rpn_bbox_pred_fpn2_w', 'fc6_w', '_[mask]_fcn1_w', 'conv5_mask_w', 'mask_fcn_logits_b']) {
      assert.ok(blobs.has(k), k);
    }
  });
});

describe('torchvision names', () => {
  it('replays torchvision 0.14 upgrades of old checkpoints (FPN, RPNHead, MaskRCNNHeads) and drops num_batches_tracked', () => {
    const t: HostTensor = { dtype: 'float32', dims: [1], data: Float32Array.of(1) };
    const old = new Map<string, HostTensor>([
      ['backbone.fpn.inner_blocks.0.weight', t],
      ['backbone.fpn.layer_blocks.3.bias', t],
      ['rpn.head.conv.weight', t],
      ['roi_heads.mask_head.mask_fcn1.weight', t],
      ['roi_heads.mask_head.mask_fcn4.bias', t],
      ['backbone.body.layer1.0.bn1.num_batches_tracked', { dtype: 'int64', dims: [], data: BigInt64Array.of(5n) }],
      ['backbone.body.conv1.weight', t],
      ['fc.weight', t],
    ]);
    const r = readCheckpoint(writeSafetensors(old), { source: 'old.safetensors' });
    assert.equal(r.format, 'torchvision');
    assert.deepEqual([...r.tensors.keys()], [
      'backbone.fpn.inner_blocks.0.0.weight',
      'backbone.fpn.layer_blocks.3.0.bias',
      'rpn.head.conv.0.0.weight',
      'roi_heads.mask_head.0.0.weight',
      'roi_heads.mask_head.3.0.bias',
      'backbone.body.conv1.weight',
      'fc.weight',
    ]);
    assert.deepEqual(r.report.ignored.map((i) => i.key), ['backbone.body.layer1.0.bn1.num_batches_tracked']);
    assert.deepEqual(r.report.unmapped, ['fc.weight']);
    assert.equal(r.report.renamed.length, 5);
  });

  it('recognises torchvision legacy COCO_V1 checkpoints by name and suggests FrozenBN eps 0', () => {
    const path = join(tmp, 'keypointrcnn_resnet50_fpn_coco-fc266e95.pth');
    copyFileSync(join(publicCaseDir('keypointrcnn_tiny'), 'weights.pth'), path);
    const r = readCheckpoint(path);
    assert.equal(r.report.hints.legacyTorchvisionCoco, true);
    assert.equal(loadConfig({ layers: [r.suggestedConfig] }).RESNETS.FROZEN_BN_EPS, 0);
    assert.equal(loadConfig({ layers: [readCheckpoint(join(publicCaseDir('keypointrcnn_tiny'), 'weights.pth')).suggestedConfig] }).RESNETS.FROZEN_BN_EPS, 1e-5);
  });
});

describe('format detection and config layers', () => {
  it('detects each convention and refuses keys it cannot place', () => {
    const t: HostTensor = { dtype: 'float32', dims: [1], data: Float32Array.of(1) };
    assert.throws(
      () => readCheckpoint(writeSafetensors(new Map([['foo.weight', t]]))),
      (e: unknown) => e instanceof CheckpointError && e.reason === 'name-map' && /cannot tell the naming convention/.test(e.message),
    );
    // An explicit convention is honoured, and nothing is lost.
    const r = readCheckpoint(writeSafetensors(new Map([['foo.weight', t]])), { from: 'detectron2' });
    assert.deepEqual(r.report.unmapped, ['foo.weight']);
  });

  it('suggests layers that load through core config with each convention\'s semantics', () => {
    for (const format of CHECKPOINT_FORMATS) {
      for (const hints of [{}, { layout: 'c4' as const, affineChannel: 'frozen-bn' as const, legacyTorchvisionCoco: true }]) {
        const c = loadConfig({ layers: [suggestedConfigLayer(format, hints)] });
        assert.equal(c.MODEL.LEGACY_PLUS_ONE, format === 'detectron');
        assert.equal(c.INPUT.FORMAT, format === 'torchvision' ? 'RGB' : 'BGR');
        assert.equal(c.INPUT.PIXEL_RANGE, format === 'torchvision' ? 1 : 255);
        assert.equal(c.RESNETS.STRIDE_1X1, format !== 'torchvision');
        assert.equal(c.INPUT.RESIZE_RULE, { torchvision: 'torchvision', detectron: 'detectron', detectron2: 'detectron2' }[format]);
        assert.equal(c.FAST_RCNN.ROI_XFORM_ALIGNED, format === 'detectron2');
      }
    }
  });

  /** A container with the C4 case's box head (the res5 plugin), whose mapping completes RESNETS.STAGE_*. */
  const res5Container = () => {
    const c = createContainer();
    registerRes5Head(c);
    return c;
  };

  for (const name of CASES) {
    it(`${name}: the inferred architecture layer agrees with case.json`, () => {
      const r = readCheckpoint(join(publicCaseDir(name), 'weights.safetensors'));
      const expected = loadConfig({ layers: [caseConfigLayer(JSON.parse(readFileSync(join(publicCaseDir(name), 'case.json'), 'utf8')), 'case.json', { mappers: caseMappers(res5Container()) })] }) as unknown as Record<string, Record<string, unknown>>;
      const inferred = r.inferredConfig as Record<string, Record<string, unknown>>;
      let checked = 0;
      for (const [section, keys] of Object.entries(inferred)) {
        for (const [key, value] of Object.entries(keys)) {
          assert.deepEqual(value, expected[section]![key], `${section}.${key}`);
          checked++;
        }
      }
      assert.ok(checked >= 5);
    });
  }

  it('converts to safetensors with the conventions recorded', () => {
    const tv = fixtureTensors('keypointrcnn_tiny');
    const pkl = writeNumpyPickle(new Map([['model', exportCheckpoint(tv, 'detectron2').tensors]]), 'py3');
    const { bytes, result } = convertToSafetensors(pkl, { source: 'model_final.pkl' });
    const file = parseSafetensors(bytes, 'converted');
    assert.equal(file.metadata.source_format, 'detectron2');
    assert.deepEqual(JSON.parse(file.metadata.suggested_config!), result.suggestedConfig);
    assert.deepEqual([...file.entries.keys()], [...result.tensors.keys()]);
    assert.ok(Buffer.from(file.entries.get('backbone.body.conv1.weight')!.bytes).equals(bytesOf(tv.get('backbone.body.conv1.weight')!)));
  });
});

describe('docs/weights.md', () => {
  const docs = readFileSync(join(findRepoRootPath(), 'docs', 'weights.md'), 'utf8');
  it('shows the name maps exactly as the code applies them', () => {
    assert.ok(docs.includes(rulesTable(TORCHVISION_RULES, ['torchvision (old)', 'torchvision 0.14'])), 'torchvision table out of date');
    assert.ok(docs.includes(rulesTable(DETECTRON2_RULES, ['Detectron2', 'torchvision'])), 'Detectron2 table out of date');
    assert.ok(docs.includes(rulesTable(DETECTRON_RULES, ['Detectron (Caffe2 blob)', 'torchvision'])), 'Detectron table out of date');
  });
  it('lists every allow-listed global', () => {
    for (const g of ALLOWED_GLOBALS) assert.ok(docs.includes(`\`${g.module}.${g.name}\``), `${g.module}.${g.name} missing from the allow-list table`);
  });
});
