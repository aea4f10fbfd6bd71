/**
 * Parity of the RPN stage against the public fixtures (torchvision 0.14.1): the stage is built in
 * isolation on the fixtures' reference feature maps (`backbone.<name>` as graph inputs).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { type HostTensor, loadConfig } from '@rcnn/core';
import { PUBLIC_CASES, compareDense, compareProposals, createTestContext, loadParityCase, publicCaseDir, runModel } from '@rcnn/testing';
import { genericRpnOutputs } from '../src/index.js';
import { featureInput, fpnLevel, imageRows, ints } from './helpers.js';

for (const caseName of PUBLIC_CASES) {
  test(`RPN parity: ${caseName}`, async (t) => {
    const dir = publicCaseDir(caseName);
    const pc = loadParityCase(dir);
    // The RPN only: a box head type no package here maps (the C4 case's res5) is left out.
    const config = loadConfig({ layers: [join(dir, 'case.json')], caseMapping: { unmappedHeads: 'omit' } });
    const ctx = createTestContext(config, { weights: pc.weights() });
    const names = config.FPN.FPN_ON ? ['0', '1', '2', '3', 'pool'] : ['0'];
    const feeds: Record<string, HostTensor> = {
      images: pc.reference('transform.images'),
      image_sizes: pc.reference('transform.image_sizes'),
      original_sizes: pc.reference('transform.image_sizes'),
    };
    const features = names.map((n) => {
      const ref = pc.reference(`backbone.${n}`);
      feeds[`backbone.${n}`] = ref;
      return featureInput(ctx.graph, n, ref.dims[1]!, config.FPN.FPN_ON ? fpnLevel(n) : 4);
    });
    const proposals = genericRpnOutputs.build(ctx, features);
    ctx.outputTaps();
    ctx.graph.output(proposals.boxes, 'out.boxes', 'float32');
    ctx.graph.output(proposals.scores, 'out.scores', 'float32');
    ctx.graph.output(proposals.valid, 'out.valid', 'bool');
    ctx.graph.output(proposals.counts, 'out.counts', 'int64');
    const out = await runModel(ctx.graph.toModelProto(), feeds);

    const failures: string[] = [];
    const check = (v: { name: string; pass: boolean; detail: string }): void => {
      t.diagnostic(`${v.name}: ${v.detail}`);
      if (!v.pass) failures.push(`${v.name}: ${v.detail}`);
    };
    for (const n of names) {
      check(compareDense(`rpn.objectness.${n}`, out.get(`rpn.objectness.${n}`)!, pc.reference(`rpn.objectness.${n}`)));
      check(compareDense(`rpn.deltas.${n}`, out.get(`rpn.deltas.${n}`)!, pc.reference(`rpn.deltas.${n}`)));
    }
    const counts = ints(out.get('out.counts')!);
    const batch = feeds.images!.dims[0]!;
    assert.equal(counts.length, batch);
    const valid = out.get('out.valid')!.data as Uint8Array;
    const scores = out.get('out.scores')!.data as Float32Array;
    const k = out.get('out.scores')!.dims[1]!;
    for (let i = 0; i < batch; i++) {
      check(compareDense(`rpn.anchors.${i}`, out.get('rpn.anchors')!, pc.reference(`rpn.anchors.${i}`)));
      const refBoxes = pc.reference(`rpn.proposals.${i}`);
      assert.equal(counts[i], refBoxes.dims[0], `image ${i}: ${counts[i]} proposals, reference ${refBoxes.dims[0]}`);
      check(
        compareProposals(
          `rpn.proposals.${i}`,
          imageRows(out.get('out.boxes')!, i, counts[i]!),
          imageRows(out.get('out.scores')!, i, counts[i]!),
          refBoxes,
          pc.reference(`rpn.proposal_scores.${i}`),
        ),
      );
      // Valid slots come first; padding slots are invalid with score -inf.
      for (let j = 0; j < k; j++) {
        assert.equal(valid[i * k + j] !== 0, j < counts[i]!, `image ${i} slot ${j} valid flag`);
        if (j >= counts[i]!) assert.equal(scores[i * k + j], -Infinity);
      }
    }
    assert.deepEqual(failures, []);
  });
}
