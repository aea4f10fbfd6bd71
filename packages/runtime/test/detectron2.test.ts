/**
 * Detectron2 in the runtime: model-zoo presets, Detectron2 config files with their notes, and
 * weights that bring their conventions under the user's config (which wins).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WeightStore, hostTensor } from '@rcnn/core';
import { findRepoRoot, publicCaseDir } from '@rcnn/testing';
import { PRESETS, findPreset, resolveConfig } from '../src/index.js';
import { conventionSource, weightConventionLayers } from '../src/setup.js';

describe('Detectron2 presets', () => {
  it('cover the model-zoo R-50/R-101 FPN and C4 configs with Detectron2 semantics', () => {
    const names = PRESETS.filter((p) => p.family === 'detectron2').map((p) => p.name);
    for (const n of ['faster_rcnn_R_50_FPN_3x', 'faster_rcnn_R_101_FPN_3x', 'mask_rcnn_R_50_FPN_3x', 'mask_rcnn_R_101_FPN_3x', 'keypoint_rcnn_R_50_FPN_3x', 'faster_rcnn_R_50_C4_3x', 'faster_rcnn_R_101_C4_3x']) {
      assert.ok(names.includes(n), n);
    }
    assert.equal(findPreset('COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml')?.name, 'mask_rcnn_R_50_FPN_3x');
    const mask = resolveConfig('mask_rcnn_R_50_FPN_3x').config;
    assert.deepEqual([mask.MODEL.NUM_CLASSES, mask.MODEL.MASK_ON, mask.MODEL.CONV_BODY], [81, true, 'FPN.add_fpn_ResNet50_conv5_body']);
    assert.deepEqual([mask.INPUT.RESIZE_RULE, mask.RPN.ANCHOR_GENERATOR, mask.MRCNN.PASTE_METHOD, mask.TEST.RPN_MIN_SIZE_RULE], ['detectron2', 'detectron2', 'detectron2', 'detectron2']);
    const c4 = resolveConfig('faster_rcnn_R_101_C4_3x').config;
    assert.deepEqual([c4.MODEL.CONV_BODY, c4.FPN.FPN_ON, c4.FAST_RCNN.ROI_BOX_HEAD, c4.INPUT.SIZE_DIVISIBILITY, c4.TEST.RPN_PRE_NMS_TOP_N], ['ResNet.add_ResNet101_conv4_body', false, 'ResNet.add_ResNet_roi_conv5_head', 0, 6000]);
  });
});

describe('Detectron2 config files and weights conventions', () => {
  const dir = join(findRepoRoot(), 'fixtures', 'd2', 'd2_maskrcnn_R50FPN_tiny_pub');

  it('a Detectron2 config.yaml resolves with a note listing the ignored keys', () => {
    const r = resolveConfig(join(dir, 'config.yaml'));
    assert.equal(r.config.INPUT.RESIZE_RULE, 'detectron2');
    assert.equal(r.notes.length, 1);
    assert.match(r.notes[0]!, /is a Detectron2 config: .* \d+ key\(s\) without effect at inference ignored \(CUDNN_BENCHMARK, DATALOADER \(6 keys\)/);
  });

  it('weights conventions go under the config: the config and --set win', () => {
    const store = WeightStore.fromTensors(new Map([['x', hostTensor('float32', [1], new Float32Array(1))]]), 'w.pkl');
    assert.deepEqual(weightConventionLayers(store.conventions, store.description), { layers: [] });
    const conventions = { convention: 'detectron2', conventions: { INPUT: { RESIZE_RULE: 'detectron2' }, TEST: { SCALE: 600 } }, architecture: { MODEL: { NUM_CLASSES: 6 } } };
    const brought = weightConventionLayers(conventions, 'model_final.pth');
    assert.match(brought.note ?? '', /model_final\.pth are a detectron2 checkpoint: applying its conventions \(2 keys\) and the architecture .*MODEL\.NUM_CLASSES=6/);
    const alone = resolveConfig(undefined, { base: brought.layers });
    assert.deepEqual([alone.config.INPUT.RESIZE_RULE, alone.config.TEST.SCALE, alone.config.MODEL.NUM_CLASSES, alone.source], ['detectron2', 600, 6, '<weights>']);
    const overridden = resolveConfig({ TEST: { SCALE: 320 } }, { base: brought.layers, set: ['MODEL.NUM_CLASSES=3'] });
    assert.deepEqual([overridden.config.INPUT.RESIZE_RULE, overridden.config.TEST.SCALE, overridden.config.MODEL.NUM_CLASSES], ['detectron2', 320, 3]);
    // A preset or a parity case states its own conventions: only the architecture goes under it.
    assert.deepEqual(conventionSource('maskrcnn_resnet50_fpn'), { what: 'preset maskrcnn_resnet50_fpn', family: 'torchvision' });
    const caseSource = conventionSource(join(publicCaseDir('maskrcnn_tiny'), 'case.json'));
    assert.match(caseSource?.what ?? '', /^parity case .*case\.json$/);
    assert.equal(conventionSource(join(dir, 'config.yaml')), undefined);
    const underCase = weightConventionLayers(conventions, 'x.pkl', caseSource);
    assert.deepEqual(underCase.layers, [conventions.architecture]);
    assert.match(underCase.note ?? '', /states its own conventions: those are used/);
    assert.equal(weightConventionLayers(conventions, 'x.pkl', { what: 'preset mask_rcnn_R_50_FPN_3x', family: 'detectron2' }).note, undefined);
    // torchvision weights bring torchvision's defaults without a line on stderr.
    assert.equal(weightConventionLayers({ ...conventions, convention: 'torchvision' }, 'w.pth').note, undefined);
  });
});
