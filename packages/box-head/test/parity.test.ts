/**
 * Parity of the box stage (TwoMLPHead + FastRCNNPredictor + post-processing) with torchvision on
 * the public FPN fixtures, fed the reference FPN features and proposals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HostTensor } from '@rcnn/core';
import { type Verdict, compareDense, compareDetections, loadParityCase, publicCaseDir } from '@rcnn/testing';
import { caseConfig, detectionRanges, imageCount, packProposals, referenceProposals, rows, runBoxStage, validProposalRows } from './harness.js';

const CASES = ['maskrcnn_tiny', 'keypointrcnn_tiny', 'fasterrcnn_tiny_x_batch2'] as const;

function report(t: { diagnostic(message: string): void }, v: Verdict): void {
  t.diagnostic(`${v.name}: ${v.pass ? 'ok' : 'FAIL'} ${v.detail}`);
}

for (const name of CASES) {
  describe(`box stage parity: ${name}`, () => {
    it('matches roi.box_features, roi.class_logits, roi.box_regression and every image\'s detections', async (t) => {
      const pc = loadParityCase(publicCaseDir(name));
      const n = imageCount(pc);
      const proposals = packProposals([...Array(n).keys()].map((i) => referenceProposals(pc, i)));
      const out = await runBoxStage(pc, caseConfig(pc), pc.weights(), proposals);

      const verdicts: Verdict[] = [];
      const check = (v: Verdict): void => {
        verdicts.push(v);
        report(t, v);
      };
      for (const tap of ['roi.box_features', 'roi.class_logits', 'roi.box_regression']) {
        check(compareDense(tap, validProposalRows(out.get(tap)!, proposals), pc.reference(tap)));
      }

      const ranges = detectionRanges(out.get('det.batch_index')!, n);
      assert.equal(ranges[n - 1]![1], out.get('det.scores')!.dims[0], 'every detection belongs to an image of the batch');
      for (let i = 0; i < n; i++) {
        const [s, e] = ranges[i]!;
        const pick = (key: string): HostTensor => rows(out.get(key)!, s, e);
        const ref = (key: string): HostTensor => pc.reference(`${key}.${i}`);
        const resized = compareDetections(
          `det.boxes_resized/scores/labels.${i}`,
          { boxes: pick('det.boxes_resized'), scores: pick('det.scores'), labels: pick('det.labels') },
          { boxes: ref('det.boxes_resized'), scores: ref('det.scores'), labels: ref('det.labels') },
        );
        const original = compareDetections(
          `det.boxes.${i} (original size)`,
          { boxes: pick('det.boxes'), scores: pick('det.scores'), labels: pick('det.labels') },
          { boxes: ref('det.boxes'), scores: ref('det.scores'), labels: ref('det.labels') },
        );
        check(resized);
        check(original);
        // Same order as torchvision (score-descending; the fixtures' final scores are >= 1e-5 apart).
        if (resized.pass) assert.deepEqual(Array.from(resized.matching), [...Array(e - s).keys()], `image ${i}: detections in torchvision's order`);
        const sc = pick('det.scores').data as Float32Array;
        for (let j = 1; j < sc.length; j++) assert.ok(sc[j]! <= sc[j - 1]!, `image ${i}: scores not sorted at ${j}`);
        // Labels are foreground classes.
        for (const l of pick('det.labels').data as BigInt64Array) assert.ok(l >= 1n && l < BigInt(pc.json.model.num_classes as number));
      }
      const failed = verdicts.filter((v) => !v.pass);
      assert.deepEqual(
        failed.map((v) => `${v.name}: ${v.detail}`),
        [],
      );
    });
  });
}

describe('box stage parity: per-class NMS path', () => {
  it('gives the same detections when batched_nms runs per class instead of with the coordinate offset', async () => {
    // TEST.NMS_COORDINATE_TRICK_MAX_BOXES=0 forces torchvision's other batched_nms path (used above
    // 1000 candidates); on these fixtures both keep the same boxes.
    const pc = loadParityCase(publicCaseDir('fasterrcnn_tiny_x_batch2'));
    const proposals = packProposals([referenceProposals(pc, 0), referenceProposals(pc, 1)]);
    const out = await runBoxStage(pc, caseConfig(pc, ['TEST.NMS_COORDINATE_TRICK_MAX_BOXES=0']), pc.weights(), proposals);
    const ranges = detectionRanges(out.get('det.batch_index')!, 2);
    for (let i = 0; i < 2; i++) {
      const [s, e] = ranges[i]!;
      const v = compareDetections(
        `det.*.${i}`,
        { boxes: rows(out.get('det.boxes_resized')!, s, e), scores: rows(out.get('det.scores')!, s, e), labels: rows(out.get('det.labels')!, s, e) },
        { boxes: pc.reference(`det.boxes_resized.${i}`), scores: pc.reference(`det.scores.${i}`), labels: pc.reference(`det.labels.${i}`) },
      );
      assert.ok(v.pass, v.detail);
    }
  });
});
