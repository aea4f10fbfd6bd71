/**
 * Detectron2 configs (cfg.dump() and model-zoo YAMLs with _BASE_) read as rcnn-node config:
 * mapped keys, Detectron2 defaults for missing keys, ignored inference-irrelevant keys, and a
 * ConfigError naming every key that would change results and is not supported.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { ConfigError, loadConfig, summariseIgnoredKeys } from '../src/index.js';
import { isDetectron2ConfigDocument, readDetectron2Config } from '../src/config/detectron2.js';
import { fixturesDir } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rcnn-d2cfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const maskCase = join(fixturesDir(), '..', 'd2', 'd2_maskrcnn_R50FPN_tiny_pub', 'config.yaml');
const keypointCase = join(fixturesDir(), '..', 'd2', 'd2_keypointrcnn_R50FPN_tiny_pub', 'config.yaml');

let files = 0;
function write(doc: unknown, name = `cfg${files++}.yaml`): string {
  const path = join(dir, name);
  writeFileSync(path, typeof doc === 'string' ? doc : stringify(doc));
  return path;
}

/** The mask case's cfg.dump() with `change` applied to its parsed document. */
function variant(change: (doc: Record<string, Record<string, Record<string, unknown>>>) => void): string {
  const doc = parse(readFileSync(maskCase, 'utf8')) as Record<string, Record<string, Record<string, unknown>>>;
  change(doc);
  return write(doc);
}

function refused(path: string, key: string): void {
  assert.throws(
    () => loadConfig({ layers: [path] }),
    (e: unknown) => e instanceof ConfigError && e.key === key && e.message.includes(key),
    `expected a ConfigError naming ${key}`,
  );
}

describe('Detectron2 config.yaml', () => {
  it('maps a cfg.dump() to the architecture, thresholds and Detectron2 conventions', () => {
    const c = loadConfig({ layers: [maskCase] });
    assert.equal(c.MODEL.CONV_BODY, 'FPN.add_fpn_ResNet_custom_conv5_body');
    assert.deepEqual(c.RESNETS.STAGE_PLANES, [8, 16, 32, 64]);
    assert.deepEqual(c.RESNETS.STAGE_BLOCKS, [3, 4, 6, 3]);
    assert.equal(c.RESNETS.WIDTH_PER_GROUP, 64, 'Detectron2 width 8 at 8 planes is rcnn-node width-per-group 64');
    assert.equal(c.RESNETS.STEM_OUT_CHANNELS, 16);
    assert.equal(c.MODEL.NUM_CLASSES, 6);
    assert.equal(c.MODEL.MASK_ON, true);
    assert.equal(c.FPN.DIM, 32);
    assert.equal(c.FAST_RCNN.MLP_HEAD_DIM, 64);
    assert.equal(c.MRCNN.CONV_HEAD_DIM, 24);
    assert.equal(c.MRCNN.DIM_REDUCED, 24);
    assert.deepEqual([c.TEST.SCALE, c.TEST.MAX_SIZE], [320, 512]);
    assert.deepEqual(c.FPN.RPN_ANCHOR_SIZES, [[32], [64], [128], [256], [512]]);
    // The conventions.
    assert.equal(c.INPUT.RESIZE_RULE, 'detectron2');
    assert.equal(c.INPUT.FORMAT, 'BGR');
    assert.deepEqual(c.INPUT.PIXEL_MEANS, [103.53, 116.28, 123.675]);
    assert.equal(c.RPN.ANCHOR_GENERATOR, 'detectron2');
    assert.equal(c.TEST.RPN_MIN_SIZE_RULE, 'detectron2');
    assert.equal(c.MRCNN.PASTE_METHOD, 'detectron2');
    assert.equal(c.KRCNN.KEYPOINT_SCORE, 'detectron2');
    assert.equal(c.FAST_RCNN.ROI_XFORM_ALIGNED, true);
    assert.equal(c.FAST_RCNN.ROI_XFORM_SAMPLING_RATIO, 0);
    const k = loadConfig({ layers: [keypointCase] });
    assert.deepEqual([k.MODEL.NUM_CLASSES, k.MODEL.KEYPOINTS_ON, k.KRCNN.NUM_STACKED_CONVS, k.KRCNN.CONV_HEAD_DIM, k.KRCNN.HEATMAP_SIZE], [2, true, 8, 24, 56]);
    assert.equal(k.KRCNN.LOSS_WEIGHT, 1);
  });

  it('maps MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT to KRCNN.LOSS_WEIGHT (training)', () => {
    const doc = parse(readFileSync(keypointCase, 'utf8')) as Record<string, Record<string, Record<string, unknown>>>;
    doc.MODEL!.ROI_KEYPOINT_HEAD!.LOSS_WEIGHT = 4.0;
    const k = loadConfig({ layers: [write(doc)] });
    assert.equal(k.KRCNN.LOSS_WEIGHT, 4);
    assert.ok(!readDetectron2Config(write(doc)).ignored.includes('MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT'), 'mapped, not ignored');
  });

  it('accepts and reports the keys that change nothing at inference', () => {
    const r = readDetectron2Config(maskCase);
    for (const key of ['CUDNN_BENCHMARK', 'SOLVER.BASE_LR', 'DATALOADER.NUM_WORKERS', 'MODEL.DEVICE', 'MODEL.RPN.BATCH_SIZE_PER_IMAGE', 'MODEL.RETINANET.NUM_CONVS']) {
      assert.ok(r.ignored.includes(key), key);
    }
    assert.ok(!r.ignored.includes('MODEL.RPN.NMS_THRESH'), 'a mapped key is not ignored');
    assert.match(summariseIgnoredKeys(r.ignored), /^CUDNN_BENCHMARK, DATALOADER \(6 keys\)/);
  });

  it('reads model-zoo YAMLs through their _BASE_ chain with Detectron2 defaults', () => {
    write({ MODEL: { META_ARCHITECTURE: 'GeneralizedRCNN', BACKBONE: { NAME: 'build_resnet_fpn_backbone' }, RESNETS: { OUT_FEATURES: ['res2', 'res3', 'res4', 'res5'] }, FPN: { IN_FEATURES: ['res2', 'res3', 'res4', 'res5'] }, ANCHOR_GENERATOR: { SIZES: [[32], [64], [128], [256], [512]], ASPECT_RATIOS: [[0.5, 1.0, 2.0]] }, RPN: { IN_FEATURES: ['p2', 'p3', 'p4', 'p5', 'p6'], PRE_NMS_TOPK_TEST: 1000, POST_NMS_TOPK_TEST: 1000 }, ROI_HEADS: { NAME: 'StandardROIHeads', IN_FEATURES: ['p2', 'p3', 'p4', 'p5'] }, ROI_BOX_HEAD: { NAME: 'FastRCNNConvFCHead', NUM_FC: 2, POOLER_RESOLUTION: 7 }, ROI_MASK_HEAD: { NAME: 'MaskRCNNConvUpsampleHead', NUM_CONV: 4, POOLER_RESOLUTION: 14 } }, SOLVER: { IMS_PER_BATCH: 16 }, INPUT: { MIN_SIZE_TRAIN: [640, 800] }, VERSION: 2 }, 'Base-RCNN-FPN.yaml');
    const child = write({ _BASE_: 'Base-RCNN-FPN.yaml', MODEL: { WEIGHTS: 'detectron2://x.pkl', MASK_ON: true, RESNETS: { DEPTH: 101 } }, SOLVER: { STEPS: [1, 2] } });
    assert.ok(isDetectron2ConfigDocument({ _BASE_: 'x.yaml' }));
    const c = loadConfig({ layers: [child] });
    assert.equal(c.MODEL.CONV_BODY, 'FPN.add_fpn_ResNet101_conv5_body');
    assert.deepEqual([c.MODEL.NUM_CLASSES, c.MODEL.MASK_ON, c.TEST.SCALE, c.TEST.MAX_SIZE, c.FPN.DIM, c.FAST_RCNN.MLP_HEAD_DIM], [81, true, 800, 1333, 256, 1024]);
    assert.deepEqual(readDetectron2Config(child).files.length, 2);
    refused(write({ _BASE_: 'missing-base.yaml' }), '_BASE_');
  });

  it('maps the C4 layout to the res5 box head', () => {
    const c4 = write({ MODEL: { META_ARCHITECTURE: 'GeneralizedRCNN', RPN: { PRE_NMS_TOPK_TEST: 6000 }, ROI_HEADS: { NAME: 'Res5ROIHeads' } } });
    const c = loadConfig({ layers: [c4] });
    assert.deepEqual([c.MODEL.CONV_BODY, c.FPN.FPN_ON, c.FAST_RCNN.ROI_BOX_HEAD, c.INPUT.SIZE_DIVISIBILITY, c.TEST.RPN_PRE_NMS_TOP_N], ['ResNet.add_ResNet50_conv4_body', false, 'ResNet.add_ResNet_roi_conv5_head', 0, 6000]);
    assert.deepEqual(c.RPN.SIZES, [32, 64, 128, 256, 512]);
  });

  it('maps a C4 cfg.dump() (every key present) without refusing its unused FPN and box-head keys', () => {
    const c4 = variant((d) => {
      const m = d.MODEL as Record<string, Record<string, unknown>>;
      m.BACKBONE!.NAME = 'build_resnet_backbone';
      m.RESNETS!.OUT_FEATURES = ['res4'];
      m.RESNETS!.RES2_OUT_CHANNELS = 256;
      m.RESNETS!.STEM_OUT_CHANNELS = 64;
      m.RESNETS!.WIDTH_PER_GROUP = 64;
      m.RPN!.IN_FEATURES = ['res4'];
      m.RPN!.PRE_NMS_TOPK_TEST = 6000;
      m.ROI_HEADS!.NAME = 'Res5ROIHeads';
      m.ROI_HEADS!.IN_FEATURES = ['res4'];
      m.ROI_BOX_HEAD!.POOLER_RESOLUTION = 14;
      (d.MODEL as Record<string, unknown>).MASK_ON = false;
      m.ANCHOR_GENERATOR!.SIZES = [[32, 64, 128, 256, 512]];
    });
    const c = loadConfig({ layers: [c4] });
    assert.deepEqual([c.MODEL.CONV_BODY, c.FPN.FPN_ON, c.FAST_RCNN.ROI_XFORM_RESOLUTION, c.MODEL.NUM_CLASSES], ['ResNet.add_ResNet50_conv4_body', false, 14, 6]);
    assert.ok(readDetectron2Config(c4).ignored.includes('MODEL.FPN.OUT_CHANNELS'));
  });

  it('refuses what changes results and is not supported, naming the key', () => {
    refused(variant((d) => ((d.MODEL!.RESNETS as Record<string, unknown>).DEFORM_ON_PER_STAGE = [false, true, true, true])), 'MODEL.RESNETS.DEFORM_ON_PER_STAGE');
    refused(variant((d) => ((d.MODEL!.ROI_HEADS as Record<string, unknown>).NAME = 'CascadeROIHeads')), 'MODEL.ROI_HEADS.NAME');
    refused(variant((d) => ((d.MODEL as Record<string, unknown>).META_ARCHITECTURE = 'RetinaNet')), 'MODEL.META_ARCHITECTURE');
    refused(variant((d) => ((d.MODEL!.ROI_BOX_HEAD as Record<string, unknown>).NUM_CONV = 4)), 'MODEL.ROI_BOX_HEAD.NUM_CONV');
    refused(variant((d) => ((d.MODEL!.ROI_MASK_HEAD as Record<string, unknown>).NORM = 'GN')), 'MODEL.ROI_MASK_HEAD.NORM');
    refused(variant((d) => ((d.MODEL!.RESNETS as Record<string, unknown>).NORM = 'GN')), 'MODEL.RESNETS.NORM');
    refused(variant((d) => ((d.MODEL!.FPN as Record<string, unknown>).NORM = 'GN')), 'MODEL.FPN.NORM');
    refused(variant((d) => ((d.TEST as Record<string, unknown>).AUG = { ENABLED: true })), 'TEST.AUG.ENABLED');
    refused(variant((d) => ((d.MODEL!.ROI_BOX_HEAD as Record<string, unknown>).POOLER_TYPE = 'ROIPool')), 'MODEL.ROI_BOX_HEAD.POOLER_TYPE');
    refused(variant((d) => ((d.MODEL!.RESNETS as Record<string, unknown>).DEPTH = 18)), 'MODEL.RESNETS.DEPTH');
    refused(variant((d) => ((d.MODEL!.RPN as Record<string, unknown>).SOME_NEW_KEY = 1)), 'MODEL.RPN.SOME_NEW_KEY');
    refused(variant((d) => ((d.MODEL as Record<string, unknown>).LOAD_PROPOSALS = true)), 'MODEL.LOAD_PROPOSALS');
    refused(variant((d) => ((d.MODEL!.ROI_BOX_HEAD as Record<string, unknown>).USE_SIGMOID_CE = true)), 'MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE');
  });

  it('contradicting anchor conventions fail', () => {
    assert.throws(() => loadConfig({ layers: [{ RPN: { ANCHOR_GENERATOR: 'detectron2' }, MODEL: { LEGACY_PLUS_ONE: true } }] }), (e: unknown) => e instanceof ConfigError && e.key === 'RPN.ANCHOR_GENERATOR');
  });
});
