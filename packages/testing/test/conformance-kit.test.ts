/**
 * The conformance kit must catch what it promises to catch: each test registers a small box head
 * with one deliberate contract violation and checks that exactly the right check fails, and that
 * the report says why.
 */
import assert from 'node:assert/strict';
import { AssertionError } from 'node:assert';
import { describe, it } from 'node:test';
import {
  type BoxHeadOutput,
  type BuildContext,
  type DependencyContainer,
  type FeatureMaps,
  type RcnnConfig,
  type RoiBoxHead,
  type Rois,
  SLOTS,
  createContainer,
  loadConfig,
  multiScaleRoiAlign,
  ops,
  registerImplementation,
} from '@rcnn/core';
import { type ConformanceReport, assertConformance, formatConformanceReport, runConformance } from '../src/index.js';

const NAME = 'test.tiny_box_head';
const DIM = 8;

/** Options of the tiny box head: each one breaks one rule. */
interface Faults {
  readonly wrongDim?: boolean;
  readonly keyOutsidePrefix?: boolean;
  readonly randomInitializer?: boolean;
  readonly publicOutput?: boolean;
  readonly tapLayout?: 'per-image';
  /** Declares the tap with the rank of a flattened tensor. */
  readonly tapRank2?: boolean;
  readonly cacheWeights?: boolean;
}

/** RoIAlign 2x2, flatten, one linear layer (weights `roi_heads.box_head.fc.weight`), unless told to misbehave. */
function tinyHead(faults: Faults = {}): RoiBoxHead {
  let cached: Float32Array | undefined;
  return {
    weightPrefixes: ['roi_heads.box_head.'],
    build(ctx: BuildContext, features: FeatureMaps, rois: Rois): BoxHeadOutput {
      const g = ctx.graph;
      const c = ctx.config.FPN;
      const pooled = multiScaleRoiAlign(g, features, rois, { outputSize: 2, samplingRatio: 1, aligned: false, canonicalScale: c.ROI_CANONICAL_SCALE, canonicalLevel: c.ROI_CANONICAL_LEVEL, eps: c.ROI_LEVEL_EPS });
      ctx.tap('roi.box_features', pooled, 'float32', faults.tapLayout ?? 'proposal-rows', faults.tapRank2 ? ['R', features[0]!.channels * 4] : ['R', features[0]!.channels, 2, 2]);
      const inDim = features[0]!.channels * 4;
      const key = faults.keyOutsidePrefix ? 'box_head.fc.weight' : 'roi_heads.box_head.fc.weight';
      const read = (): Float32Array => ctx.weights.take(key, [DIM, inDim], { kind: 'he' });
      const data = faults.cacheWeights ? (cached ??= read()) : read();
      if (faults.randomInitializer) data[0] = Math.random();
      const w = g.initializer('fc.weight', { dtype: 'float32', dims: [DIM, inDim], data });
      const out = ops.relu(g, ops.gemm(g, ops.flatten(g, pooled, 1), w, null, { transB: true }));
      if (faults.publicOutput) g.output(out, 'debug.box_head', 'float32');
      return { features: out, dim: faults.wrongDim ? DIM + 1 : DIM };
    },
  };
}

function setup(faults: Faults = {}): { container: DependencyContainer; config: RcnnConfig; register: (c: DependencyContainer) => void } {
  const value = tinyHead(faults);
  const register = (c: DependencyContainer): void => registerImplementation(c, SLOTS.roiBoxHead, { name: NAME, provider: 'test', description: 'tiny box head', value });
  const container = createContainer();
  register(container);
  return { container, config: loadConfig({ layers: [{ FPN: { DIM: 4 } }] }), register };
}

async function check(faults: Faults): Promise<ConformanceReport> {
  const { container, config } = setup(faults);
  return runConformance({ slot: SLOTS.roiBoxHead, name: NAME, container, config, batchSizes: [1, 2], imageSizes: [[64, 64]] });
}

const failing = (r: ConformanceReport): string[] => r.checks.filter((c) => !c.pass).map((c) => c.id);

describe('conformance kit', () => {
  it('passes a conforming head, with a readable report', async () => {
    const { container, config, register } = setup();
    const report = await runConformance({ slot: 'roi-box-head', name: NAME, container, config, register, declaredKeys: ['roi_heads.box_head.fc.weight'] });
    assertConformance(report);
    assert.deepEqual(report.weights.consumed, [{ key: 'roi_heads.box_head.fc.weight', shape: [DIM, 16] }]);
    assert.deepEqual(report.taps, [{ name: 'roi.box_features', dtype: 'float32', layout: 'proposal-rows', dims: ['R', 4, 2, 2] }]);
    const text = formatConformanceReport(report);
    assert.match(text, /PASS/);
    assert.match(text, /roi_heads\.box_head\.fc\.weight \[8, 16\]/);
    // two image sizes x batches 1 and 2, plus the case without RoIs
    assert.equal(report.cases.length, 5);
  });

  it('fails when the declared representation width is not what the graph computes', async () => {
    const report = await check({ wrongDim: true });
    assert.ok(failing(report).length > 0 && failing(report).every((id) => id.startsWith('run.')), failing(report).join(', '));
    assert.match(report.checks.find((c) => !c.pass)!.detail, /shape \[\d+, 8\], expected \[\d+, 9\]/);
    assert.throws(() => assertConformance(report), AssertionError);
  });

  it('fails when a weight is read outside the declared prefixes', async () => {
    const report = await check({ keyOutsidePrefix: true });
    assert.deepEqual(failing(report), ['weights.prefixes']);
    assert.match(report.checks.find((c) => c.id === 'weights.prefixes')!.detail, /box_head\.fc\.weight/);
  });

  it('fails when the declared key list is not what the head reads', async () => {
    const { container, config } = setup();
    const report = await runConformance({ slot: 'roi-box-head', name: NAME, container, config, declaredKeys: ['roi_heads.box_head.fc.weight', 'roi_heads.box_head.fc.bias'], batchSizes: [1], imageSizes: [[64, 64]] });
    assert.deepEqual(failing(report), ['weights.declared-keys']);
    assert.match(report.checks.find((c) => c.id === 'weights.declared-keys')!.detail, /declared but not read: roi_heads\.box_head\.fc\.bias/);
  });

  it('fails when a rebuilt graph differs (a weight not drawn from the WeightStore)', async () => {
    const report = await check({ randomInitializer: true });
    assert.ok(failing(report).includes('determinism.rebuild'), failing(report).join(', '));
    assert.ok(failing(report).includes('determinism.replica'), failing(report).join(', '));
  });

  it('fails when the stage declares a graph output of its own', async () => {
    const report = await check({ publicOutput: true });
    assert.deepEqual(failing(report), ['scope.public-names']);
    assert.match(report.checks.find((c) => c.id === 'scope.public-names')!.detail, /output debug\.box_head/);
  });

  it('fails when a tap has the rows of another layout', async () => {
    const report = await check({ tapLayout: 'per-image' });
    assert.ok(failing(report).some((id) => id.startsWith('run.')));
    assert.match(report.checks.find((c) => !c.pass)!.detail, /tap roi\.box_features \(layout per-image\)/);
  });

  it('fails when a tap declares a shape that is not what it computes', async () => {
    const report = await check({ tapRank2: true });
    assert.ok(failing(report).some((id) => id.startsWith('run.')));
    assert.match(report.checks.find((c) => !c.pass)!.detail, /tap roi\.box_features: declared shape \[R, \d+\], computes \[\d+, \d+, 2, 2\]/);
  });

  it('fails when weights are cached instead of read from each build’s store', async () => {
    const report = await check({ cacheWeights: true });
    assert.deepEqual(failing(report), ['weights.missing', 'weights.shape', 'weights.complete']);
  });

  it('fails for an unregistered name, listing the registered ones', async () => {
    const { container, config } = setup();
    const report = await runConformance({ slot: 'roi-box-head', name: 'test.no_such_head', container, config });
    assert.equal(report.passed, false);
    assert.deepEqual(failing(report), ['registry.resolve']);
    assert.match(report.checks[0]!.detail, /no RoI box head named "test\.no_such_head".*test\.tiny_box_head/);
  });

  it('fails when register() is not idempotent', async () => {
    const { container, config } = setup();
    const register = (c: DependencyContainer): void => registerImplementation(c, SLOTS.roiBoxHead, { name: NAME, provider: 'test', description: 'fresh object each call', value: tinyHead() });
    const report = await runConformance({ slot: 'roi-box-head', name: NAME, container, config, register, batchSizes: [1], imageSizes: [[64, 64]] });
    assert.deepEqual(failing(report), ['registry.register']);
  });

  it('refuses a slot it does not know', async () => {
    const { container, config } = setup();
    await assert.rejects(runConformance({ slot: SLOTS.imageTransform, name: 'x', container, config }), /has no checks for slot "image-transform"/);
  });
});
