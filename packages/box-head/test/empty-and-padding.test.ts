/**
 * Zero detections (per image and for the whole batch), images without proposals and padding
 * slots: normal results with empty tensors of the right rank, and padding never leaks into them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HostTensor } from '@rcnn/core';
import { compareDetections, loadParityCase, publicCaseDir } from '@rcnn/testing';
import { caseConfig, detectionRanges, packProposals, referenceProposals, rows, runBoxStage } from './harness.js';

const pc = loadParityCase(publicCaseDir('fasterrcnn_tiny_x_batch2'));
const NONE = { boxes: new Float32Array(0), scores: new Float32Array(0) };

function assertEmptyDetections(out: Map<string, HostTensor>): void {
  assert.deepEqual(out.get('det.boxes')!.dims, [0, 4]);
  assert.deepEqual(out.get('det.boxes_resized')!.dims, [0, 4]);
  assert.deepEqual(out.get('det.scores')!.dims, [0]);
  assert.deepEqual(out.get('det.labels')!.dims, [0]);
  assert.deepEqual(out.get('det.batch_index')!.dims, [0]);
  assert.equal(out.get('det.scores')!.dtype, 'float32');
  assert.equal(out.get('det.labels')!.dtype, 'int64');
  assert.equal(out.get('det.batch_index')!.dtype, 'int64');
}

/** Image `src` of the reference detections vs rows [s, e) of ours. */
function assertMatchesReference(out: Map<string, HostTensor>, s: number, e: number, src: number): void {
  const v = compareDetections(
    `image ${src}`,
    { boxes: rows(out.get('det.boxes')!, s, e), scores: rows(out.get('det.scores')!, s, e), labels: rows(out.get('det.labels')!, s, e) },
    { boxes: pc.reference(`det.boxes.${src}`), scores: pc.reference(`det.scores.${src}`), labels: pc.reference(`det.labels.${src}`) },
  );
  assert.ok(v.pass, v.detail);
}

describe('empty results', () => {
  it('returns empty detections of the right rank when no score passes TEST.SCORE_THRESH', async () => {
    const config = caseConfig(pc, ['TEST.SCORE_THRESH=0.999']);
    const proposals = packProposals([referenceProposals(pc, 0), referenceProposals(pc, 1)]);
    const out = await runBoxStage(pc, config, pc.weights(), proposals);
    assertEmptyDetections(out);
    // The head still ran on every proposal slot.
    assert.deepEqual(out.get('roi.class_logits')!.dims, [2 * proposals.k, 4]);
  });

  it('keeps the other image\'s detections when one image of the batch has no proposals', async () => {
    const config = caseConfig(pc);
    for (const empty of [0, 1]) {
      const other = 1 - empty;
      const images = [0, 1].map((i) => (i === empty ? NONE : referenceProposals(pc, i)));
      const out = await runBoxStage(pc, config, pc.weights(), packProposals(images));
      const ranges = detectionRanges(out.get('det.batch_index')!, 2);
      assert.equal(ranges[empty]![1] - ranges[empty]![0], 0, `image ${empty} has no proposals, so no detections`);
      assert.equal(ranges[1]![1], out.get('det.scores')!.dims[0]);
      assertMatchesReference(out, ranges[other]![0], ranges[other]![1], other);
      for (const b of out.get('det.batch_index')!.data as BigInt64Array) assert.equal(b, BigInt(other));
    }
  });

  it('returns empty detections for a batch without any proposal (K = 0)', async () => {
    const out = await runBoxStage(pc, caseConfig(pc), pc.weights(), packProposals([NONE, NONE]));
    assertEmptyDetections(out);
    assert.deepEqual(out.get('roi.box_features')!.dims, [0, 32, 7, 7]);
    assert.deepEqual(out.get('roi.box_regression')!.dims, [0, 16]);
  });
});

describe('padding slots', () => {
  it('never contribute detections, whatever their boxes hold', async () => {
    // Image 1 alone, padded to 160 slots holding boxes spread over the image: they would produce
    // detections of their own (and suppress real ones) if the valid mask were ignored.
    const ref = referenceProposals(pc, 1);
    const p = packProposals([ref], 160);
    const boxes = p.boxes.data as Float32Array;
    for (let j = ref.scores.length; j < 160; j++) {
      const x = (j * 37) % 150;
      const y = (j * 53) % 200;
      boxes.set([x, y, x + 10 + (j % 7) * 6, y + 12 + (j % 5) * 9], 4 * j);
    }
    const out = await runBoxStage(pc, caseConfig(pc), pc.weights(), p, [1]);
    assert.deepEqual(out.get('roi.class_logits')!.dims, [160, 4]);
    assertMatchesReference(out, 0, out.get('det.scores')!.dims[0]!, 1);
  });
});
