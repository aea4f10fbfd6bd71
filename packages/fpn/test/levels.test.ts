import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BuildContext,
  ConfigError,
  type FeatureMaps,
  type HostTensor,
  type RoiBoxHead,
  type RoiBoxOutputs,
  type RpnHead,
  SLOTS,
  WeightStore,
  buildFeaturesNet,
  buildModel,
  featureOutputName,
  loadConfig,
  registerImplementation,
} from '@rcnn/core';
import { runModel } from '@rcnn/testing';
import { fpnContainer } from './helpers.js';

/** A tiny custom R-FPN: stages of 4/8/16/32 planes (16..128 channels), FPN width 8. */
const TINY = {
  MODEL: { CONV_BODY: 'FPN.add_fpn_ResNet_custom_conv5_body' },
  RESNETS: { STAGE_PLANES: [4, 8, 16, 32], STAGE_BLOCKS: [1, 1, 1, 1], STEM_OUT_CHANNELS: 8 },
  FPN: { DIM: 8 },
};
const tiny = (overrides: Record<string, Record<string, unknown>> = {}) =>
  loadConfig({ layers: [TINY, ...Object.entries(overrides).map(([section, values]) => ({ [section]: { ...(TINY as Record<string, object>)[section], ...values } }))] });

async function run(overrides: Record<string, Record<string, unknown>> = {}, weights = WeightStore.random(5)) {
  const net = buildFeaturesNet(tiny(overrides), fpnContainer(), weights);
  const images: HostTensor<'float32'> = { dtype: 'float32', dims: [1, 3, 64, 96], data: Float32Array.from({ length: 3 * 64 * 96 }, (_, i) => Math.cos(i / 7)) };
  const out = await runModel(net.toBytes(), { images });
  return net.levels.map((l) => ({ name: l.name, scale: l.spatialScale, dims: out.get(featureOutputName(l.name))!.dims }));
}

describe('pyramid levels from FPN.* keys', () => {
  it('default (RPN 2..6, RoI 2..5): P2..P5 named 0..3 plus P6 "pool" = max-pool of P5', async () => {
    assert.deepEqual(await run(), [
      { name: '0', scale: 1 / 4, dims: [1, 8, 16, 24] },
      { name: '1', scale: 1 / 8, dims: [1, 8, 8, 12] },
      { name: '2', scale: 1 / 16, dims: [1, 8, 4, 6] },
      { name: '3', scale: 1 / 32, dims: [1, 8, 2, 3] },
      { name: 'pool', scale: 1 / 64, dims: [1, 8, 1, 2] },
    ]);
  });

  it('RPN_MAX_LEVEL 5: no P6', async () => {
    assert.deepEqual((await run({ FPN: { RPN_MAX_LEVEL: 5 } })).map((l) => l.name), ['0', '1', '2', '3']);
  });

  it('min level 3: C3..C5 only, renumbered 0..2 like torchvision returned_layers [2, 3, 4]', async () => {
    const levels = await run({ FPN: { RPN_MIN_LEVEL: 3, ROI_MIN_LEVEL: 3 } });
    assert.deepEqual(levels.map((l) => [l.name, l.scale]), [['0', 1 / 8], ['1', 1 / 16], ['2', 1 / 32], ['pool', 1 / 64]]);
    // inner_blocks.0 now reads C3 (8 planes * 4 = 32 channels); there is no fourth lateral.
    const graph = buildFeaturesNet(tiny({ FPN: { RPN_MIN_LEVEL: 3, ROI_MIN_LEVEL: 3 } }), fpnContainer(), WeightStore.random(5)).graph;
    const laterals = graph.allNames().filter((n) => /fpn\/inner\d\/weight$/.test(n));
    assert.deepEqual(laterals.map((n) => [n.replace(/.*fpn\//, ''), graph.initializerOf({ name: n })!.dims]), [
      ['inner0/weight', [8, 32, 1, 1]],
      ['inner1/weight', [8, 64, 1, 1]],
      ['inner2/weight', [8, 128, 1, 1]],
    ]);
  });

  it('EXTRA_CONV_LEVELS up to P7: p6 = conv3x3/2(C5), p7 = conv3x3/2(relu(p6)) with extra_blocks weights', async () => {
    const names: string[] = [];
    const weights = WeightStore.random(5);
    const levels = await run({ FPN: { EXTRA_CONV_LEVELS: true, RPN_MAX_LEVEL: 7 } }, weights);
    assert.deepEqual(levels.map((l) => [l.name, l.scale, l.dims]), [
      ['0', 1 / 4, [1, 8, 16, 24]],
      ['1', 1 / 8, [1, 8, 8, 12]],
      ['2', 1 / 16, [1, 8, 4, 6]],
      ['3', 1 / 32, [1, 8, 2, 3]],
      ['p6', 1 / 64, [1, 8, 1, 2]],
      ['p7', 1 / 128, [1, 8, 1, 1]],
    ]);
    const net = buildFeaturesNet(tiny({ FPN: { EXTRA_CONV_LEVELS: true, RPN_MAX_LEVEL: 7 } }), fpnContainer(), weights);
    for (const n of net.graph.allNames()) if (/extra\/p[67]\/weight$/.test(n)) names.push(n);
    assert.equal(names.length, 2);
    assert.deepEqual(net.graph.initializerOf({ name: names.find((n) => n.endsWith('p6/weight'))! })!.dims, [8, 128, 3, 3]);
    assert.deepEqual(net.graph.initializerOf({ name: names.find((n) => n.endsWith('p7/weight'))! })!.dims, [8, 8, 3, 3]);
  });

  it('a level above P6 without EXTRA_CONV_LEVELS fails naming FPN.RPN_MAX_LEVEL', () => {
    assert.throws(
      () => buildFeaturesNet(tiny({ FPN: { RPN_MAX_LEVEL: 7 } }), fpnContainer(), WeightStore.random(0)),
      (e: unknown) => e instanceof ConfigError && e.key === 'FPN.RPN_MAX_LEVEL' && /FPN level 7 is above P6/.test(e.message),
    );
  });

  it('a dilated res5 cannot feed the FPN (ConfigError naming RESNETS.RES5_DILATION)', () => {
    assert.throws(
      () => buildFeaturesNet(tiny({ RESNETS: { RES5_DILATION: 2 } }), fpnContainer(), WeightStore.random(0)),
      (e: unknown) => e instanceof ConfigError && e.key === 'RESNETS.RES5_DILATION' && /levels 2, 3, 4, 4/.test(e.message),
    );
  });
});

describe("core's buildModel with these outputs", () => {
  /** Stub heads that record the feature levels they are given (the real heads live in other packages). */
  function stubContainer(seen: Map<string, string[]>) {
    const container = fpnContainer();
    const record = (stage: string, features: FeatureMaps): void => void seen.set(stage, features.map((f) => f.name));
    const rpn: RpnHead = {
      weightPrefixes: [],
      build(ctx: BuildContext, features) {
        record('rpn', features);
        const b = ctx.batch.images;
        return { boxes: b, scores: b, valid: b, counts: b };
      },
    };
    const boxHead: RoiBoxHead = {
      weightPrefixes: [],
      build(_ctx, features, rois) {
        record('box', features);
        return { features: rois.boxes, dim: 4 };
      },
    };
    const boxOutputs: RoiBoxOutputs = {
      weightPrefixes: [],
      build: (_ctx, head) => ({ boxes: head.features, scores: head.features, labels: head.features, batchIndex: head.features }),
    };
    registerImplementation(container, SLOTS.rpnHead, { name: 'stub.rpn', provider: 'test', description: 'records levels', value: rpn });
    registerImplementation(container, SLOTS.roiBoxHead, { name: 'stub.box', provider: 'test', description: 'records levels', value: boxHead });
    registerImplementation(container, SLOTS.roiBoxOutputs, { name: 'stub.outputs', provider: 'test', description: 'passes through', value: boxOutputs });
    return container;
  }
  const heads = { RPN: { HEAD: 'stub.rpn' }, FAST_RCNN: { ROI_BOX_HEAD: 'stub.box', OUTPUTS: 'stub.outputs' } };

  it('narrows to the RPN levels (P2..P6) and the RoI levels (P2..P5); taps backbone.<name>', () => {
    const seen = new Map<string, string[]>();
    const config = loadConfig({ layers: [TINY, heads] });
    const model = buildModel(config, stubContainer(seen), WeightStore.random(1), { intermediates: true });
    assert.deepEqual(seen.get('rpn'), ['0', '1', '2', '3', 'pool']);
    assert.deepEqual(seen.get('box'), ['0', '1', '2', '3']);
    assert.deepEqual(model.taps.filter((t) => t.name.startsWith('backbone.')).map((t) => t.name), ['backbone.0', 'backbone.1', 'backbone.2', 'backbone.3', 'backbone.pool']);
  });

  it('ROI_MIN/MAX_LEVEL 3..4 gives the RoI heads levels "1" and "2"', () => {
    const seen = new Map<string, string[]>();
    const config = loadConfig({ layers: [TINY, heads, { FPN: { ...TINY.FPN, ROI_MIN_LEVEL: 3, ROI_MAX_LEVEL: 4 } }] });
    buildModel(config, stubContainer(seen), WeightStore.random(1));
    assert.deepEqual(seen.get('box'), ['1', '2']);
  });

  it('TRAIN.FREEZE_CONV_BODY is recorded and adds only stopGradient markers on the body outputs', () => {
    const build = (freeze: boolean) => buildModel(loadConfig({ layers: [TINY, heads, { TRAIN: { FREEZE_CONV_BODY: freeze } }] }), stubContainer(new Map()), WeightStore.random(1));
    const [frozen, free] = [build(true), build(false)];
    assert.equal(frozen.frozenConvBody, true);
    assert.equal(free.frozenConvBody, false);
    // Detectron's StopGradient on every blob_conv: one Identity per FPN level, the heads read it.
    // (buildModel also detaches the proposals in both builds: those stops are the RPN's, not the body's.)
    const stops = frozen.graph.listNodes().filter((n) => frozen.graph.isGradientStopped(n.outputs[0] ?? '') && n.name.startsWith('conv_body/'));
    assert.equal(stops.length, 5, 'one stopGradient per level (P2..P6)');
    assert.ok(stops.every((n) => n.opType === 'Identity'));
    const original = new Map(stops.map((n) => [n.outputs[0], n.inputs[0]]));
    const rest = frozen.graph
      .listNodes()
      .filter((n) => !stops.includes(n))
      .map((n) => ({ ...n, inputs: n.inputs.map((i) => original.get(i) ?? i) }));
    assert.deepEqual(rest, free.graph.listNodes(), 'otherwise the same graph');
  });
});
