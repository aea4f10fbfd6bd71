/**
 * MODEL.CLS_AGNOSTIC_BBOX_REG (Detectron convention): bbox_pred has 8 outputs (background,
 * foreground) and the foreground deltas apply to every class. Checked against the per-class
 * predictor whose every class has the foreground class's regression weights.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import { type HostTensor, WeightStore, decodeEntry, readSafetensorsFile } from '@rcnn/core';
import { compareDetections, loadParityCase, publicCaseDir } from '@rcnn/testing';
import { caseConfig, packProposals, referenceProposals, runBoxStage } from './harness.js';

const pc = loadParityCase(publicCaseDir('fasterrcnn_tiny_x_batch2'));
const W = 'roi_heads.box_predictor.bbox_pred.weight';
const B = 'roi_heads.box_predictor.bbox_pred.bias';

/** The case's weights with bbox_pred replaced. */
function weightsWith(weight: HostTensor, bias: HostTensor): WeightStore {
  const file = readSafetensorsFile(join(pc.dir, 'weights.safetensors'));
  const map = new Map<string, HostTensor>([...file.entries].map(([k, e]) => [k, decodeEntry(e)] as const));
  map.set(W, weight);
  map.set(B, bias);
  return WeightStore.fromTensors(map, 'modified weights');
}

describe('class-agnostic box regression', () => {
  it('applies the foreground deltas to every class', async () => {
    const dim = 64;
    const full = pc.weights();
    const w = full.take(W, [16, dim]);
    const b = full.take(B, [16]);
    // Per-class layout where classes 1..3 all regress like class 1.
    const wRep = new Float32Array(16 * dim);
    const bRep = new Float32Array(16);
    for (let c = 0; c < 4; c++) {
      const src = c === 0 ? 0 : 1;
      wRep.set(w.subarray(4 * src * dim, 4 * (src + 1) * dim), 4 * c * dim);
      bRep.set(b.subarray(4 * src, 4 * src + 4), 4 * c);
    }
    const perClass = weightsWith({ dtype: 'float32', dims: [16, dim], data: wRep }, { dtype: 'float32', dims: [16], data: bRep });
    const agnostic = weightsWith({ dtype: 'float32', dims: [8, dim], data: w.slice(0, 8 * dim) }, { dtype: 'float32', dims: [8], data: b.slice(0, 8) });

    const proposals = packProposals([referenceProposals(pc, 0), referenceProposals(pc, 1)]);
    const a = await runBoxStage(pc, caseConfig(pc), perClass, proposals);
    const c = await runBoxStage(pc, caseConfig(pc, ['MODEL.CLS_AGNOSTIC_BBOX_REG=true']), agnostic, proposals);
    assert.deepEqual(c.get('roi.box_regression')!.dims, [2 * proposals.k, 8]);
    assert.ok(a.get('det.scores')!.dims[0]! > 0, 'the comparison has detections');
    // Same detections; float tolerances only allow for GEMM kernels that round columns differently.
    const v = compareDetections(
      'agnostic vs replicated per-class',
      { boxes: c.get('det.boxes_resized')!, scores: c.get('det.scores')!, labels: c.get('det.labels')! },
      { boxes: a.get('det.boxes_resized')!, scores: a.get('det.scores')!, labels: a.get('det.labels')! },
      1e-4,
      1e-6,
    );
    assert.ok(v.pass, v.detail);
    assert.deepEqual(Array.from(c.get('det.batch_index')!.data as BigInt64Array), Array.from(a.get('det.batch_index')!.data as BigInt64Array));
  });
});
