/**
 * A second runtime: every parity fixture's export (with intermediates, so every tapped tensor is
 * compared too) runs in onnxruntime-web's WASM backend under Node, one thread, and each output
 * matches onnxruntime-node's on the same inputs within the parity harness's dense tolerance
 * (max|web - node| <= 1e-4 * max(1, max finite |node|)); integer outputs (labels, batch index, counts)
 * and every shape are equal. The worst errors are printed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PUBLIC_CASES, loadParityCase, publicCaseDir, runModel } from '@rcnn/testing';
import { fixtureExports, fixtureFeeds, outputDifference, runModelWeb } from '../src/index.js';

/** The parity harness's dense rule (tools/parity compare-case.ts). */
const DENSE_REL_TOL = 1e-4;

describe('onnxruntime-web (WASM, 1 thread) agrees with onnxruntime-node', () => {
  for (const name of PUBLIC_CASES) {
    it(name, async () => {
      const c = loadParityCase(publicCaseDir(name));
      const model = (await fixtureExports(c)).find((v) => v.variant === 'intermediates')!;
      const feeds = await fixtureFeeds(c);
      const node = await runModel(model.bytes, feeds);
      const web = await runModelWeb(model.bytes, feeds, 1);
      assert.deepEqual([...web.keys()].sort(), [...node.keys()].sort());
      assert.ok((node.get('det.scores')?.dims[0] ?? 0) > 0, 'the fixture has detections');
      const worst: string[] = [];
      for (const [k, ref] of node) {
        const got = web.get(k)!;
        const d = outputDifference(k, got, ref, DENSE_REL_TOL);
        assert.ok(d.sameShape, `${name}: ${k} is ${got.dtype} [${got.dims.join(', ')}] in onnxruntime-web, ${ref.dtype} [${ref.dims.join(', ')}] in onnxruntime-node`);
        assert.ok(d.maxAbs <= d.tolerance, `${name}: ${k}: max|web - node| = ${d.maxAbs} > ${d.tolerance}`);
        if (k.startsWith('det.')) worst.push(`${k} ${d.maxAbs.toExponential(1)}`);
      }
      console.log(`${name}: web vs node, det.* max errors: ${worst.join(', ')}`);
    });
  }
});
