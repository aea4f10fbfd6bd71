/**
 * Every model rcnn-node serialises for every parity fixture (detection, with intermediates,
 * float16, RPN-only, features-only; FPN and C4) passes the ONNX project's checker with
 * `full_check=True` and strict shape inference; every graph and subgraph output declares its
 * element type and shape; what the checker reads is what `exportModel` reports; and what
 * onnxruntime computes on the fixture's images has the declared rank, the declared fixed sizes, and
 * one size per symbolic name (`N` is the batch, every `D` the same count, …).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GraphBuilder, type HostTensor, attr, ops } from '@rcnn/core';
import { PUBLIC_CASES, loadParityCase, publicCaseDir, runModel } from '@rcnn/testing';
import { type CheckerReport, type ExportVariant, checkerProblems, fixtureExports, fixtureFeeds, onnxPythonAvailable, runOnnxChecker } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'rcnn-onnx-check-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface CaseExports {
  readonly variants: readonly ExportVariant[];
  readonly feeds: Record<string, HostTensor>;
}
const cases = new Map<string, CaseExports>();
const reports = new Map<string, CheckerReport>();

before(async () => {
  assert.ok(
    onnxPythonAvailable(),
    'the ONNX checker needs Debian python3-onnx in /usr/bin/python3 (apt-get install -y python3-onnx; .ci/run installs it) or RCNN_ONNX_PYTHON pointing to a Python with onnx',
  );
  const files: string[] = [];
  const byFile = new Map<string, string>();
  for (const name of PUBLIC_CASES) {
    const c = loadParityCase(publicCaseDir(name));
    const variants = await fixtureExports(c);
    cases.set(name, { variants, feeds: await fixtureFeeds(c) });
    for (const v of variants) {
      const file = join(dir, `${v.name.replace('/', '.')}.onnx`);
      writeFileSync(file, v.bytes);
      files.push(file);
      byFile.set(file, v.name);
    }
  }
  for (const r of runOnnxChecker(files)) reports.set(byFile.get(r.file)!, r);
});

describe('exported models pass the ONNX checker (full check, strict shape inference)', () => {
  for (const name of PUBLIC_CASES) {
    it(`${name}: detection, intermediates, float16, RPN-only and features-only exports`, () => {
      const { variants } = cases.get(name)!;
      assert.equal(variants.length, 5);
      for (const v of variants) {
        const report = reports.get(v.name);
        assert.ok(report, `no checker report for ${v.name}`);
        assert.deepEqual(checkerProblems(report), [], v.name);
        // What the checker reads from the file is what the export says it declares.
        const main = report.outputs.filter((o) => o.graph.length === 0).map((o) => ({ name: o.name, dims: o.dims }));
        assert.deepEqual(main, v.outputs.map((o) => ({ name: o.name, dims: o.dims })), `${v.name}: declared outputs`);
      }
      const detection = variants.find((v) => v.variant === 'detection')!;
      // The If bodies of the batched NMS (and the FPN's exact upsampling, if any) declare theirs too.
      assert.ok(reports.get(detection.name)!.outputs.some((o) => o.graph.length > 0), `${detection.name}: has If subgraph outputs`);
    });
  }

  it('catches an output without a shape, in the graph and in an If body (what models were before)', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['N']);
    const c = g.input('c', 'bool', []);
    const branch = g.subgraph('b', [], (body) => [{ blob: ops.relu(body, x), dtype: 'float32' }]);
    g.output(g.op('If', [c], { then_branch: attr.graph(branch), else_branch: attr.graph(branch) }), 'y', 'float32');
    const file = join(dir, 'unshaped.onnx');
    writeFileSync(file, g.toModelProto());
    const [report] = runOnnxChecker([file]) as [CheckerReport];
    const problems = checkerProblems(report);
    assert.match(problems.join('\n'), /checker: .*shape/);
    assert.ok(problems.includes('graph output y: no shape'), problems.join('\n'));
    assert.ok(problems.some((p) => /^subgraph .* output .*out0: no shape$/.test(p)), problems.join('\n'));
    assert.throws(() => g.toModelProto({ requireShapes: true }), /without a shape: y, b:out0;/);
  });

  it('names the dims as docs/serving.md does', () => {
    const det = cases.get('maskrcnn_tiny')!.variants.find((v) => v.variant === 'detection')!;
    const dims = Object.fromEntries(det.outputs.map((o) => [o.name, o.dims]));
    assert.deepEqual(dims, {
      'det.boxes': ['D', 4],
      'det.boxes_resized': ['D', 4],
      'det.scores': ['D'],
      'det.labels': ['D'],
      'det.batch_index': ['D'],
      'det.mask_probs': ['D', 1, 'M', 'M'],
    });
    const kp = cases.get('keypointrcnn_tiny')!.variants.find((v) => v.variant === 'detection')!;
    assert.deepEqual(kp.outputs.find((o) => o.name === 'det.keypoint_heatmaps')?.dims, ['D', 'K', 'S', 'S']);
    const rpn = cases.get('maskrcnn_tiny')!.variants.find((v) => v.variant === 'rpn-only')!;
    assert.deepEqual(Object.fromEntries(rpn.outputs.map((o) => [o.name, o.dims])), {
      'rpn.proposals_original': ['N', 'P', 4],
      'rpn.proposals': ['N', 'P', 4],
      'rpn.proposal_scores': ['N', 'P'],
      'rpn.proposal_counts': ['N'],
    });
  });
});

describe('what onnxruntime computes matches the declared shapes', () => {
  for (const name of PUBLIC_CASES) {
    it(`${name}: rank, fixed sizes and one size per symbolic name`, async () => {
      const { variants, feeds } = cases.get(name)!;
      const batch = feeds.images!.dims[0]!;
      for (const v of variants) {
        const inputs = v.variant === 'features' ? { images: feeds.images! } : feeds;
        const out = await runModel(v.bytes, inputs);
        // A symbolic name is one size within a run (N, D, P, H_0, …).
        const sizes = new Map<string, number>([['N', batch]]);
        for (const o of v.outputs) {
          const t = out.get(o.name);
          assert.ok(t, `${v.name}: output ${o.name} missing`);
          assert.equal(t.dims.length, o.dims.length, `${v.name}: ${o.name} computes [${t.dims.join(', ')}], declares [${o.dims.join(', ')}]`);
          o.dims.forEach((d, i) => {
            if (typeof d === 'number') assert.equal(t.dims[i], d, `${v.name}: ${o.name} axis ${i}`);
            else {
              const seen = sizes.get(d);
              if (seen === undefined) sizes.set(d, t.dims[i]!);
              else assert.equal(t.dims[i], seen, `${v.name}: ${o.name} axis ${i} is "${d}" = ${seen} elsewhere, ${t.dims[i]} here`);
            }
          });
        }
        if (v.variant === 'detection') assert.ok((sizes.get('D') ?? 0) > 0, `${v.name}: the fixture has detections`);
      }
    });
  }
});
