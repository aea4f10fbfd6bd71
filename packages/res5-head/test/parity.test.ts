/**
 * End-to-end parity on fixtures/parity/fasterrcnn_tiny_c4 (torchvision 0.14.1, Detectron's C4
 * layout): the whole model is built by core's buildModel on the case config, with the conv body
 * from @rcnn/backbone, the RPN from @rcnn/rpn, the box outputs from @rcnn/box-head and this
 * package's res5 head; the image is decoded and prepared by the registered image transform.
 * Every reference tensor is compared within the project's tolerances.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { register as registerBackbone } from '@rcnn/backbone';
import { register as registerBoxHead } from '@rcnn/box-head';
import { type HostTensor, SLOTS, buildModel, configSections, createContainer, loadConfig, resolveImplementation } from '@rcnn/core';
import { register as registerRpn } from '@rcnn/rpn';
import { type Verdict, compareDense, compareDetections, compareExact, compareProposals, loadParityCase, publicCaseDir, runModel } from '@rcnn/testing';
import { RES5_HEAD_NAME, register } from '../src/index.js';

/** Valid rows of a 'proposal-rows' tensor [N*K, …]: image i's first counts[i] of its K slots, in image order. */
function proposalRows(t: HostTensor, counts: readonly number[], k: number): HostTensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const total = counts.reduce((a, b) => a + b, 0);
  const data = new Float32Array(total * per);
  let at = 0;
  counts.forEach((c, i) => {
    data.set((t.data as Float32Array).subarray(i * k * per, (i * k + c) * per), at);
    at += c * per;
  });
  return { dtype: 'float32', dims: [total, ...t.dims.slice(1)], data };
}

/** Valid rows of a per-image proposal tensor [N, K, …] (same rows as {@link proposalRows} of its [N*K, …] view). */
function proposalSlots(t: HostTensor, counts: readonly number[]): HostTensor {
  const [n, k, ...rest] = t.dims as [number, number, ...number[]];
  return proposalRows({ ...t, dims: [n * k, ...rest] } as HostTensor, counts, k);
}

describe('fasterrcnn_tiny_c4 end to end with the res5 plugin', () => {
  it('matches every reference tensor of torchvision 0.14.1', async (t) => {
    const container = createContainer();
    for (const r of [registerBackbone, registerRpn, registerBoxHead, register]) r(container);
    // The case's box head type (ResNetRes5Head) is mapped by this package's registered implementation.
    const pc = loadParityCase(publicCaseDir('fasterrcnn_tiny_c4'), { container });
    const config = loadConfig({ sections: configSections(container), layers: [pc.configLayer] });
    assert.equal(config.FAST_RCNN.ROI_BOX_HEAD, RES5_HEAD_NAME);
    const model = buildModel(config, container, pc.weights(), { intermediates: true, strictWeights: true });
    assert.equal(model.resolved[SLOTS.roiBoxHead.id], RES5_HEAD_NAME);

    const transform = resolveImplementation(container, SLOTS.imageTransform, config.INPUT.TRANSFORM).value;
    const batch = transform.prepare(await pc.images(), config);
    const out = await runModel(model.toBytes(), { images: batch.images, image_sizes: batch.imageSizes, original_sizes: batch.originalSizes });
    const get = (name: string): HostTensor => {
      const v = out.get(name);
      assert.ok(v, `output ${name} is missing`);
      return v;
    };

    const counts = Array.from(get('rpn.proposal_counts').data as BigInt64Array, Number);
    const k = get('rpn.proposals').dims[1]!;
    const ref = (name: string): HostTensor => pc.reference(name);
    const verdicts: Verdict[] = [
      compareDense('transform.images', batch.images, ref('transform.images')),
      compareExact('transform.image_sizes', batch.imageSizes, ref('transform.image_sizes')),
      compareDense('backbone.0', get('backbone.0'), ref('backbone.0')),
      compareDense('rpn.objectness.0', get('rpn.objectness.0'), ref('rpn.objectness.0')),
      compareDense('rpn.deltas.0', get('rpn.deltas.0'), ref('rpn.deltas.0')),
      compareDense('rpn.anchors.0', get('rpn.anchors'), ref('rpn.anchors.0')),
      compareProposals('rpn.proposals.0', proposalSlots(get('rpn.proposals'), counts), proposalSlots(get('rpn.proposal_scores'), counts), ref('rpn.proposals.0'), ref('rpn.proposal_scores.0')),
      compareDense('roi.box_features', proposalRows(get('roi.box_features'), counts, k), ref('roi.box_features')),
      compareDense('roi.class_logits', proposalRows(get('roi.class_logits'), counts, k), ref('roi.class_logits')),
      compareDense('roi.box_regression', proposalRows(get('roi.box_regression'), counts, k), ref('roi.box_regression')),
      compareDetections(
        'det.boxes_resized.0 / det.scores.0 / det.labels.0',
        { boxes: get('det.boxes_resized'), scores: get('det.scores'), labels: get('det.labels') },
        { boxes: ref('det.boxes_resized.0'), scores: ref('det.scores.0'), labels: ref('det.labels.0') },
      ),
      compareDetections(
        'det.boxes.0 (original pixels)',
        { boxes: get('det.boxes'), scores: get('det.scores'), labels: get('det.labels') },
        { boxes: ref('det.boxes.0'), scores: ref('det.scores.0'), labels: ref('det.labels.0') },
      ),
    ];
    for (const v of verdicts) t.diagnostic(`${v.name}: ${v.pass ? 'ok' : 'FAIL'} ${v.detail}`);
    assert.deepEqual(counts, [ref('rpn.proposals.0').dims[0]]);
    assert.deepEqual(
      verdicts.filter((v) => !v.pass).map((v) => `${v.name}: ${v.detail}`),
      [],
    );
    // Every reference tensor of the case was compared.
    const compared = new Set(verdicts.flatMap((v) => v.name.split(' / ').map((n) => n.split(' ')[0])));
    for (const n of ['det.scores.0', 'det.labels.0', 'det.boxes.0', 'rpn.proposal_scores.0']) compared.add(n);
    assert.deepEqual(pc.referenceNames().filter((n) => !compared.has(n)), []);
  });
});
