/**
 * core layers: parameters by key with legacy aliases, norm folding (BatchNorm2d / FrozenBatchNorm2d
 * / AffineChannel, with and without a conv bias), GroupNorm against a direct computation, the
 * shared-width check of the pooler and torchvision Sequential key names.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BuildContext,
  ConfigError,
  GraphBuilder,
  type HostTensor,
  WeightStore,
  conv2d,
  convNorm,
  convNormActivationKeys,
  createContainer,
  loadConfig,
  roundHalfEven,
  sequentialKey,
  sharedChannels,
} from '../src/index.js';
import { foldNorm, readNormAffine } from '../src/layers/norm.js';
import { f32, run } from './helpers.js';

function context(weights: WeightStore): BuildContext {
  const graph = new GraphBuilder({ name: 'layers' });
  const blob = { name: 'unused' };
  return { graph, config: loadConfig(), weights, container: createContainer(), batch: { images: blob, imageSizes: blob, originalSizes: blob }, tap: () => undefined };
}

const tensors = (entries: [string, HostTensor][]): WeightStore => WeightStore.fromTensors(new Map(entries), 'test');

describe('norm folding', () => {
  it('folds FrozenBatchNorm2d / BatchNorm2d exactly in float64 and rounds once, accepting num_batches_tracked', () => {
    const weights = tensors([
      ['bn.weight', f32([2], [2, 0.5])],
      ['bn.bias', f32([2], [1, -1])],
      ['bn.running_mean', f32([2], [3, 0])],
      ['bn.running_var', f32([2], [3, 1])],
      ['bn.num_batches_tracked', { dtype: 'int64', dims: [], data: BigInt64Array.of(7n) }],
    ]);
    const eps = 0.25;
    for (const kind of ['FrozenBatchNorm2d', 'BatchNorm2d'] as const) {
      const affine = readNormAffine(weights, { kind, key: 'bn', eps }, 2);
      const s0 = 2 / Math.sqrt(3.25);
      const s1 = 0.5 / Math.sqrt(1.25);
      const { weight, bias } = foldNorm(Float32Array.of(1, 2, 3, 4), 2, affine);
      assert.deepEqual([...weight], [s0, 2 * s0, 3 * s1, 4 * s1].map(Math.fround));
      assert.deepEqual([...bias], [1 - 3 * s0, -1].map(Math.fround));
      // A conv bias goes through the norm too: b * s + t.
      const withBias = foldNorm(Float32Array.of(1, 2, 3, 4), 2, affine, Float32Array.of(0.5, 2));
      assert.deepEqual([...withBias.bias], [0.5 * s0 + 1 - 3 * s0, 2 * s1 - 1].map(Math.fround));
    }
    assert.deepEqual(weights.unusedKeys(), [], 'num_batches_tracked is accepted');
  });

  it('AffineChannel reads only weight and bias', () => {
    const weights = tensors([
      ['ac.weight', f32([1], [3])],
      ['ac.bias', f32([1], [0.25])],
    ]);
    const affine = readNormAffine(weights, { kind: 'AffineChannel', key: 'ac', eps: 1e-5 }, 1);
    assert.deepEqual([affine.scale[0], affine.shift[0]], [3, 0.25]);
  });

  it('GroupNorm after a conv matches a direct computation', async () => {
    // 1x1 conv 2 -> 4 channels (bias-free), GroupNorm(2 groups, eps 1e-5) with affine, ReLU.
    const convW = [1, 0, 0, 1, 1, 1, -1, 2];
    const gamma = [1, 2, 0.5, -1];
    const beta = [0, 0.5, -0.25, 1];
    const weights = tensors([
      ['l.0.weight', f32([4, 2, 1, 1], convW)],
      ['l.1.weight', f32([4], gamma)],
      ['l.1.bias', f32([4], beta)],
    ]);
    const ctx = context(weights);
    const x = ctx.graph.input('x', 'float32', [1, 2, 1, 3]);
    const keys = convNormActivationKeys('l', 0);
    assert.deepEqual(keys, { conv: 'l.0.0', norm: 'l.0.1' });
    const y = convNorm(ctx, x, { key: 'l.0', norm: { kind: 'GroupNorm', key: 'l.1', eps: 1e-5, numGroups: 2 }, inChannels: 2, outChannels: 4, kernel: 1, activation: 'relu' });
    ctx.graph.output(y, 'y', 'float32');
    const input = [1, 2, 3, -1, 0, 4];
    const out = (await run(ctx.graph, { x: f32([1, 2, 1, 3], input) })).y!.data as Float32Array;
    const conv = [0, 1, 2, 3].map((o) => [0, 1, 2].map((p) => convW[o * 2]! * input[p]! + convW[o * 2 + 1]! * input[3 + p]!));
    const expected: number[] = [];
    for (let group = 0; group < 2; group++) {
      const values = [...conv[2 * group]!, ...conv[2 * group + 1]!];
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
      for (let c = 2 * group; c < 2 * group + 2; c++) {
        for (const v of conv[c]!) expected.push(Math.max(0, ((v - mean) / Math.sqrt(variance + 1e-5)) * gamma[c]! + beta[c]!));
      }
    }
    out.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-5, `element ${i}: ${v} vs ${expected[i]}`));
  });
});

describe('layers by key', () => {
  it('conv2d reads the current key, else the first legacy alias the store has', async () => {
    const legacy = tensors([
      ['head.mask_fcn1.weight', f32([1, 1, 1, 1], [2])],
      ['head.mask_fcn1.bias', f32([1], [1])],
    ]);
    const ctx = context(legacy);
    const x = ctx.graph.input('x', 'float32', [1, 1, 1, 1]);
    ctx.graph.output(conv2d(ctx, x, { key: sequentialKey('head.', 0, 0), aliases: ['head.mask_fcn1'], inChannels: 1, outChannels: 1, kernel: 1 }), 'y', 'float32');
    assert.deepEqual(legacy.unusedKeys(), []);
    const out = await run(ctx.graph, { x: f32([1, 1, 1, 1], [3]) });
    assert.deepEqual([...(out.y!.data as Float32Array)], [7]);
  });

  it('a missing key is reported under its current name', () => {
    const ctx = context(tensors([]));
    const x = ctx.graph.input('x', 'float32', [1, 1, 1, 1]);
    assert.throws(() => conv2d(ctx, x, { key: 'head.0.0', aliases: ['head.mask_fcn1'], inChannels: 1, outChannels: 1, kernel: 1 }), /head\.0\.0\.weight/);
  });

  it('sharedChannels refuses levels of different widths, naming FPN.DIM', () => {
    const blob = { name: 'b' };
    const maps = [
      { name: '0', blob, channels: 8, spatialScale: 0.25, level: 2 },
      { name: '1', blob, channels: 16, spatialScale: 0.125, level: 3 },
    ];
    assert.equal(sharedChannels(maps.slice(0, 1), 'test head'), 8);
    assert.throws(() => sharedChannels(maps, 'test head'), (e: unknown) => e instanceof ConfigError && e.key === 'FPN.DIM' && /'1': 16/.test(e.message));
    assert.throws(() => sharedChannels([], 'test head', 'RPN.HEAD'), (e: unknown) => e instanceof ConfigError && e.key === 'RPN.HEAD');
  });
});

describe('roundHalfEven', () => {
  it('rounds like Python round() / numpy / cvRound', () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 2.4, -2.6, 11.3137].map(roundHalfEven), [0, 2, 2, 4, -0, -2, -2, 2, -3, 11]);
  });
});

describe('memory a graph owns', () => {
  const bn = (key: string, c: number): [string, HostTensor][] => [
    [`${key}.weight`, f32([c], Array.from({ length: c }, () => 1.5))],
    [`${key}.bias`, f32([c], Array.from({ length: c }, () => 0.25))],
    [`${key}.running_mean`, f32([c], Array.from({ length: c }, () => 0))],
    [`${key}.running_var`, f32([c], Array.from({ length: c }, () => 1))],
  ];
  const layer = (weights: WeightStore): { ctx: BuildContext; owned: ArrayBufferLike[]; initializers: Map<string, HostTensor> } => {
    const ctx = context(weights);
    const x = ctx.graph.input('x', 'float32', [1, 2, 4, 4]);
    convNorm(ctx, x, { key: 'l.conv', norm: { kind: 'FrozenBatchNorm2d', key: 'l.bn', eps: 1e-5 }, inChannels: 2, outChannels: 3, kernel: 3, pad: 1, activation: 'relu' });
    return { ctx, owned: ctx.graph.ownedInitializerBuffers(), initializers: new Map(ctx.graph.listInitializers()) };
  };

  it('a folded conv + frozen norm is the graph own memory; the store arrays are not', () => {
    const weights = tensors([['l.conv.weight', f32([3, 2, 3, 3], Array.from({ length: 54 }, (_, i) => i / 54))], ...bn('l.bn', 3)]);
    const { owned, initializers } = layer(weights);
    const folded = [...initializers].filter(([name]) => /weight$|bias$/.test(name)).map(([, t]) => t.data.buffer);
    assert.equal(folded.length, 2);
    assert.deepEqual(new Set(owned), new Set(folded));
    for (const b of weights.backingBuffers()) assert.ok(!owned.includes(b), 'a buffer the store handed out is not listed as the graph own');
  });

  it('a trainable conv weight stays the store array, so it is not listed', () => {
    const weights = tensors([['l.conv.weight', f32([3, 2, 3, 3], Array.from({ length: 54 }, (_, i) => i / 54))], ...bn('l.bn', 3)]);
    weights.setTrainable(['l.conv.weight']);
    const { owned, initializers } = layer(weights);
    const raw = [...initializers].find(([name]) => name.endsWith('weight_raw'))![1];
    assert.ok(!owned.includes(raw.data.buffer));
    assert.equal(owned.length, 1, 'only the folded bias');
  });

  it('lists each owned buffer once and forgets initializers promoted to inputs', () => {
    const g = new GraphBuilder({ name: 'owned' });
    const own = new Float32Array(4);
    const shared = new Float32Array(8);
    const a = g.initializer('a', { dtype: 'float32', dims: [4], data: own }, { owned: true });
    g.initializer('b0', { dtype: 'float32', dims: [4], data: shared.subarray(0, 4) }, { owned: true });
    g.initializer('b1', { dtype: 'float32', dims: [4], data: shared.subarray(4) }, { owned: true });
    g.initializer('c', f32([2], [1, 2]));
    assert.deepEqual(g.ownedInitializerBuffers(), [own.buffer, shared.buffer]);
    g.promoteInitializerToInput(a, 'a_input');
    assert.deepEqual(g.ownedInitializerBuffers(), [shared.buffer], 'a is fed now, not the graph own');
  });
});
