/**
 * fasterrcnn_tiny_c4 (Detectron's C4 layout): its box head is res5 (another package), so the 2-MLP
 * head does not apply. What the box head uses is still checked there: core's roiPooler with the
 * FAST_RCNN section on one feature map (plain 14x14 RoIAlign at 1/16) and the detection post-processing, fed the
 * reference class logits and box regression.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FeatureMap, type HostTensor, proposalsToRois, roiPooler } from '@rcnn/core';
import { compareDense, compareDetections, createTestContext, loadParityCase, publicCaseDir, runModel } from '@rcnn/testing';
import { detectionPostprocessOptions, postprocessDetections } from '../src/index.js';
import { batchFeeds, caseConfig, outputDetections, packProposals, proposalFeeds, proposalInputs, referenceProposals } from './harness.js';

describe('fasterrcnn_tiny_c4: single-level pooling and post-processing', () => {
  it('matches roi.box_features and the detections computed from the reference logits and deltas', async (t) => {
    const pc = loadParityCase(publicCaseDir('fasterrcnn_tiny_c4'));
    const config = caseConfig(pc);
    assert.equal(config.FPN.FPN_ON, false);
    const ctx = createTestContext(config);
    const g = ctx.graph;
    const ref = pc.reference('backbone.0');
    const feature: FeatureMap = { name: '0', blob: g.input('backbone.0', 'float32', ['N', ref.dims[1]!, 'H', 'W']), channels: ref.dims[1]!, spatialScale: 1 / 16, level: 4 };
    const proposals = proposalInputs(ctx);
    const pooled = roiPooler(ctx, [feature], proposalsToRois(g, proposals), config.FAST_RCNN);
    assert.equal(pooled.resolution, 14);
    g.output(pooled.features, 'roi.box_features', 'float32');
    const classes = config.MODEL.NUM_CLASSES;
    const classLogits = g.input('roi.class_logits', 'float32', ['R', classes]);
    const boxRegression = g.input('roi.box_regression', 'float32', ['R', 4 * classes]);
    const det = postprocessDetections(g, { classLogits, boxRegression, proposals, imageSizes: ctx.batch.imageSizes }, detectionPostprocessOptions(config));
    outputDetections(ctx, det);

    const feeds: Record<string, HostTensor> = {
      ...batchFeeds(pc),
      ...proposalFeeds(packProposals([referenceProposals(pc, 0)])),
      'backbone.0': ref,
      'roi.class_logits': pc.reference('roi.class_logits'),
      'roi.box_regression': pc.reference('roi.box_regression'),
    };
    const out = await runModel(g.toModelProto(), feeds);
    const verdicts = [
      compareDense('roi.box_features', out.get('roi.box_features')!, pc.reference('roi.box_features')),
      compareDetections(
        'det.boxes_resized/scores/labels.0',
        { boxes: out.get('det.boxes_resized')!, scores: out.get('det.scores')!, labels: out.get('det.labels')! },
        { boxes: pc.reference('det.boxes_resized.0'), scores: pc.reference('det.scores.0'), labels: pc.reference('det.labels.0') },
      ),
      compareDetections(
        'det.boxes.0 (original size)',
        { boxes: out.get('det.boxes')!, scores: out.get('det.scores')!, labels: out.get('det.labels')! },
        { boxes: pc.reference('det.boxes.0'), scores: pc.reference('det.scores.0'), labels: pc.reference('det.labels.0') },
      ),
    ];
    for (const v of verdicts) t.diagnostic(`${v.name}: ${v.pass ? 'ok' : 'FAIL'} ${v.detail}`);
    assert.deepEqual(
      verdicts.filter((v) => !v.pass).map((v) => `${v.name}: ${v.detail}`),
      [],
    );
  });
});
