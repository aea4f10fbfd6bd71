/**
 * The gradient builder as a graph transform: which nodes it differentiates, stopGradient, rules
 * a plugin registers, clear errors, and the trainable-parameter mechanism (graph inputs named by
 * state-dict key, grad.<key> outputs, TRAIN.* freezing rules).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import {
  GraphBuilder,
  GraphError,
  WeightStore,
  addParameterGradients,
  buildGradients,
  exposeTrainableParameters,
  gradientOutputName,
  loadConfig,
  registerGradientRule,
  trainableConfigLayer,
  trainableParameters,
  ConfigError,
  decodeModelProto,
  ops,
} from '../src/index.js';
import { gradientRuleFor } from '../src/autodiff/registry.js';
import { gradcheck, randn, tensor } from './gradcheck.js';

const F64 = 'float64' as const;

async function runGraph(g: GraphBuilder, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(g.toModelProto());
  const out = await session.run(feeds);
  await session.release();
  return out;
}

describe('buildGradients', () => {
  it('stopGradient: d/dx (x·x + stop(x)·x) = 3x, and nothing before the stop is differentiated', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', F64, [4]);
    const before = g.op('Exp', [x], {}, 'before_stop');
    const stopped = g.stopGradient(g.op('Log', [before], {}, 'log'));
    const y = g.op('Add', [g.op('Mul', [x, x]), g.op('Mul', [stopped, x], {}, 'stopped_times_x')]);
    const loss = g.op('ReduceSum', [y], { keepdims: 0 });
    const grads = buildGradients(g, { loss, wrt: [x], dtype: F64 });
    assert.ok(!grads.differentiatedNodes.some((n) => n === before.name || n.startsWith('log')), `differentiated: ${grads.differentiatedNodes.join(', ')}`);
    g.output(grads.of(x), 'gx', F64);
    const values = [0.5, -1.25, 2, 3.5];
    const out = await runGraph(g, {
      x: new ort.Tensor(F64, Float64Array.from(values), [4]),
    });
    assert.deepEqual(
      [...(out.gx!.data as Float64Array)],
      values.map((v) => 3 * v),
    );
  });

  it('differentiates only the nodes on a path from wrt to the loss; a wrt blob the loss ignores gets zeros', async () => {
    const g = new GraphBuilder();
    const a = g.input('a', F64, [3]);
    const b = g.input('b', F64, [3]);
    const c = g.input('c', F64, [3]);
    const offPath = g.op('Sigmoid', [c], {}, 'unrelated'); // depends on c only
    const frozen = g.op('Exp', [b], {}, 'frozen_branch'); // b is not differentiated
    const loss = g.op('ReduceSum', [g.op('Mul', [g.op('Tanh', [a], {}, 'tanh'), frozen], {}, 'product')], { keepdims: 0 });
    g.output(offPath, 'side', F64);
    const grads = buildGradients(g, { loss, wrt: [a, c], dtype: F64 });
    assert.deepEqual(grads.unreached, ['c']);
    assert.deepEqual([...grads.differentiatedNodes].sort(), ['ReduceSum', 'product', 'tanh'].sort());
    g.output(grads.of(a), 'ga', F64);
    g.output(grads.of(c), 'gc', F64);
    const out = await runGraph(g, {
      a: new ort.Tensor(F64, Float64Array.of(0.1, 0.2, 0.3), [3]),
      b: new ort.Tensor(F64, Float64Array.of(1, 2, 3), [3]),
      c: new ort.Tensor(F64, Float64Array.of(1, 1, 1), [3]),
    });
    assert.deepEqual([...(out.gc!.data as Float64Array)], [0, 0, 0]);
    const expected = [0.1, 0.2, 0.3].map((v, i) => (1 - Math.tanh(v) ** 2) * Math.exp(i + 1));
    (out.ga!.data as Float64Array).forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-12));
  });

  it('TopK indices, NonZero and casts to integers cut the path without needing rules', async () => {
    await gradcheck({
      inputs: { a: tensor(F64, [2, 5], randn(10, 500)) },
      build: (g, x) => {
        const [, idx] = g.node('TopK', [x.a, g.constInt64([2])], { axis: 1 }, { outputs: 2 });
        const picked = g.op('GatherElements', [x.a, idx], { axis: 1 });
        const positive = g.op('NonZero', [g.op('Greater', [x.a, g.constant({ dtype: F64, dims: [], data: Float64Array.of(0) })])]);
        const count = g.op('Cast', [g.op('Shape', [positive], { start: 1 })], {
          to: 11,
        });
        return g.op('Mul', [picked, count]);
      },
    });
  });

  it('an operator on the path without a rule fails naming the node and how to add one; off the path it is fine', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3]);
    const y = g.op('Erf', [x], {}, 'special');
    const loss = g.op('ReduceSum', [y], { keepdims: 0 });
    assert.throws(
      () => buildGradients(g, { loss, wrt: [x] }),
      (e: unknown) => e instanceof GraphError && /Erf \(node "special"\)/.test(e.message) && /registerGradientRule/.test(e.hint ?? ''),
    );
    const h = new GraphBuilder();
    const u = h.input('u', 'float32', [3]);
    h.output(h.op('Erf', [u]), 'side', 'float32');
    assert.doesNotThrow(() =>
      buildGradients(h, {
        loss: h.op('ReduceSum', [h.op('Relu', [u])], { keepdims: 0 }),
        wrt: [u],
      }),
    );
  });

  it('a plugin registers the rule of an operator and it is used (Sin: g·cos x)', async () => {
    assert.equal(gradientRuleFor('Sin'), undefined);
    registerGradientRule('Sin', {
      backward: (ctx) => [ctx.graph.op('Mul', [ctx.outputGradient(0), ctx.graph.op('Cos', [ctx.inputs[0]!])])],
    });
    await gradcheck({
      inputs: { a: tensor(F64, [3, 2], randn(6, 501)) },
      build: (g, x) => g.op('Sin', [x.a]),
    });
  });

  it('sums the gradients of a blob read by several nodes (one Sum node)', async () => {
    const r = await gradcheck({
      inputs: { a: tensor(F64, [4], randn(4, 502)) },
      build: (g, x) => g.op('Mul', [g.op('Exp', [x.a]), g.op('Sigmoid', [x.a])]),
    });
    assert.ok(r.graph.graphNodes().some((n) => n.opType === 'Sum'));
  });

  it('sums three or more gradients of a blob one at a time (a chain of Adds, so at most two are alive at once)', async () => {
    const r = await gradcheck({
      inputs: { a: tensor(F64, [4], randn(4, 503)) },
      build: (g, x) => g.op('Mul', [g.op('Mul', [g.op('Exp', [x.a]), g.op('Sigmoid', [x.a])]), g.op('Tanh', [x.a])]),
    });
    const accumulate = r.graph.graphNodes().filter((n) => n.name.includes('accumulate'));
    assert.deepEqual(
      accumulate.map((n) => n.opType),
      ['Add', 'Add'],
    );
    // The second Add reads the first: a fold, not two independent sums.
    assert.ok(accumulate[1]!.inputs.includes(accumulate[0]!.outputs[0]!));
  });

  it("adds a Gather's gradient (a scatter-add into zeros) by scattering its rows into the other contributions", async () => {
    const r = await gradcheck({
      inputs: { a: tensor(F64, [5], randn(5, 504)) },
      // Rows 1 and 3 gathered (1 twice: the scatter adds into the same element twice), plus a dense use.
      build: (g, x) => g.op('Add', [g.op('ReduceSum', [g.op('GatherElements', [x.a, g.constInt64([1, 3, 1])], { axis: 0 })], { keepdims: 1 }), g.op('Exp', [x.a])]),
    });
    const nodes = r.graph.graphNodes();
    const producer = (name: string) => nodes.find((n) => n.outputs.includes(name));
    const scatter = nodes.find((n) => n.opType === 'ScatterElements' && n.name.includes('accumulate_rows'));
    assert.ok(scatter, nodes.map((n) => n.name).join(', '));
    // It scatters into the dense gradient (the Exp's, seen through a Reshape), not into zeros.
    const view = producer(scatter.inputs[0]!)!;
    assert.equal(view.opType, 'Reshape');
    assert.notEqual(producer(view.inputs[0]!)!.opType, 'ConstantOfShape');
    // The scatter into zeros the Gather's rule wrote is dead and not serialised.
    const serialised = decodeModelProto(r.graph.toModelProto()).graph as { node: { op_type: string; input: string[]; output: string[] }[] };
    const made = new Map(serialised.node.flatMap((n) => n.output.map((o) => [o, n.op_type] as const)));
    assert.ok(!serialised.node.some((n) => n.op_type === 'ScatterElements' && made.get(n.input[0]!) === 'ConstantOfShape'));
  });

  it('adds gradients that are all scatter-adds into zeros by scattering the later ones into the first', async () => {
    const r = await gradcheck({
      inputs: { a: tensor(F64, [5], randn(5, 505)) },
      build: (g, x) =>
        g.op('Mul', [
          g.op('GatherElements', [x.a, g.constInt64([4, 0, 4])], { axis: 0 }),
          g.op('GatherElements', [x.a, g.constInt64([0, 2, 2])], { axis: 0 }),
        ]),
    });
    const scatters = r.graph.graphNodes().filter((n) => n.opType === 'ScatterElements');
    assert.equal(scatters.filter((n) => n.name.includes('accumulate_rows')).length, 1);
  });
});

describe('shapes declared equal (GraphBuilder.declareSameShape)', () => {
  it('is an equivalence: declared groups join, undeclared blobs stay apart', () => {
    const g = new GraphBuilder();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => g.input(n, F64, [2]));
    g.declareSameShape(a!, b!);
    g.declareSameShape(c!, b!);
    assert.ok(g.haveSameShape(a!.name, c!.name) && g.haveSameShape(c!.name, a!.name) && g.haveSameShape(b!.name, b!.name));
    assert.ok(!g.haveSameShape(a!.name, d!.name));
    assert.ok(g.haveSameShape(d!.name, d!.name));
  });

  it('a residual sum (ops.addSameShape) hands its gradient to both operands as is; a plain Add sums it back at run time', async () => {
    const unbroadcasts = async (add: typeof ops.add) => {
      const r = await gradcheck({
        inputs: { a: tensor(F64, [2, 3], randn(6, 506)) },
        build: (g, x) => g.op('Relu', [add(g, g.op('Tanh', [x.a]), g.op('Exp', [x.a]), 'residual')]),
      });
      return r.graph.graphNodes().filter((n) => n.name.includes('residual') && n.name.includes('unbroadcast') && n.opType === 'ReduceSum').length;
    };
    assert.equal(await unbroadcasts(ops.addSameShape), 0);
    assert.equal(await unbroadcasts(ops.add), 2);
  });
});

describe('trainable parameters', () => {
  it('promoteInitializerToInput: the weight is fed at run time under its own name', async () => {
    const g = new GraphBuilder({ scope: 'head' });
    const x = g.input('x', 'float32', [2]);
    const w = g.initializer('w', {
      dtype: 'float32',
      dims: [2],
      data: Float32Array.of(1, 2),
    });
    g.output(g.op('Mul', [x, w]), 'y', 'float32');
    const input = g.promoteInitializerToInput(w, 'head.weight');
    assert.equal(input.name, 'head.weight');
    assert.equal(g.initializerOf(w), undefined);
    const out = await runGraph(g, {
      x: new ort.Tensor('float32', Float32Array.of(3, 4), [2]),
      'head.weight': new ort.Tensor('float32', Float32Array.of(10, 100), [2]),
    });
    assert.deepEqual([...(out.y!.data as Float32Array)], [30, 400]);
    assert.throws(() => g.promoteInitializerToInput(x, 'again'), GraphError);
  });

  it('exposeTrainableParameters + addParameterGradients: trainable weights become inputs with grad.<key> outputs, frozen ones stay initializers', async () => {
    const tensors = new Map([
      [
        'layer.weight',
        {
          dtype: 'float32' as const,
          dims: [3],
          data: Float32Array.of(0.5, -1, 2),
        },
      ],
      [
        'frozen.weight',
        {
          dtype: 'float32' as const,
          dims: [3],
          data: Float32Array.of(2, 2, 2),
        },
      ],
    ]);
    const weights = WeightStore.fromTensors(tensors, 'test');
    weights.setTrainable(['layer.weight']);
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [3]);
    const wl = g.initializer('wl', {
      dtype: 'float32',
      dims: [3],
      data: weights.take('layer.weight', [3]),
    });
    const wf = g.initializer('wf', {
      dtype: 'float32',
      dims: [3],
      data: weights.take('frozen.weight', [3]),
    });
    const loss = g.op('ReduceSum', [g.op('Mul', [g.op('Mul', [x, wl]), wf])], {
      keepdims: 0,
    });
    const parameters = exposeTrainableParameters(g, weights);
    assert.deepEqual(
      parameters.map((p) => p.key),
      ['layer.weight'],
    );
    assert.ok(g.initializerOf(wf));
    addParameterGradients(g, { loss, parameters });
    assert.ok(g.declaredOutputs.some((o) => o.name === gradientOutputName('layer.weight')));
    const out = await runGraph(g, {
      x: new ort.Tensor('float32', Float32Array.of(1, 2, 3), [3]),
      'layer.weight': new ort.Tensor('float32', Float32Array.of(7, 7, 7), [3]),
    });
    assert.deepEqual([...(out['grad.layer.weight']!.data as Float32Array)], [2, 4, 6]);
  });

  it('exposeTrainableParameters refuses a trainable weight that its stage transformed', () => {
    const weights = WeightStore.fromTensors(new Map([['folded.weight', { dtype: 'float32' as const, dims: [2], data: Float32Array.of(1, 2) }]]), 'test');
    weights.setTrainable((key) => key === 'folded.weight');
    const g = new GraphBuilder();
    g.initializer('w', {
      dtype: 'float32',
      dims: [2],
      data: weights.take('folded.weight', [2]).map((v) => v * 2),
    });
    assert.throws(
      () => exposeTrainableParameters(g, weights),
      (e: unknown) => e instanceof GraphError && /folded\.weight/.test(e.message),
    );
  });

  const NAMES = [
    'backbone.body.conv1.weight',
    'backbone.body.bn1.weight',
    'backbone.body.bn1.bias',
    'backbone.body.bn1.running_mean',
    'backbone.body.bn1.running_var',
    'backbone.body.layer1.0.conv1.weight',
    'backbone.body.layer1.0.downsample.1.weight',
    'backbone.body.layer1.0.downsample.1.running_mean',
    'backbone.body.layer2.0.conv1.weight',
    'backbone.body.layer3.0.conv1.weight',
    'backbone.body.layer4.0.conv1.weight',
    'backbone.fpn.inner_blocks.0.0.weight',
    'rpn.head.conv.0.0.weight',
    'roi_heads.box_head.fc6.weight',
  ];
  const config = (train: Record<string, unknown>) => loadConfig({ layers: [{ TRAIN: train }] });

  it('trainableParameters: TRAIN.TRAINABLE_BACKBONE_LAYERS counts conv1, layer1..layer4 from the end; norms never train', () => {
    const heads = ['backbone.fpn.inner_blocks.0.0.weight', 'rpn.head.conv.0.0.weight', 'roi_heads.box_head.fc6.weight'];
    assert.deepEqual(trainableParameters(config({}), NAMES), [
      'backbone.body.layer2.0.conv1.weight',
      'backbone.body.layer3.0.conv1.weight',
      'backbone.body.layer4.0.conv1.weight',
      ...heads,
    ]);
    assert.deepEqual(trainableParameters(config({ TRAINABLE_BACKBONE_LAYERS: 0 }), NAMES), heads);
    assert.deepEqual(trainableParameters(config({ TRAINABLE_BACKBONE_LAYERS: 5 }), NAMES), [
      'backbone.body.conv1.weight',
      'backbone.body.layer1.0.conv1.weight',
      'backbone.body.layer2.0.conv1.weight',
      'backbone.body.layer3.0.conv1.weight',
      'backbone.body.layer4.0.conv1.weight',
      ...heads,
    ]);
    assert.deepEqual(trainableParameters(config({ FREEZE_CONV_BODY: true }), NAMES), ['rpn.head.conv.0.0.weight', 'roi_heads.box_head.fc6.weight']);
    // Without running statistics in the names (random weights), norms are recognised by name.
    assert.deepEqual(
      trainableParameters(config({ TRAINABLE_BACKBONE_LAYERS: 5 }), [
        'backbone.body.bn1.weight',
        'backbone.body.layer1.0.downsample.1.bias',
        'backbone.body.layer1.0.downsample.0.weight',
      ]),
      ['backbone.body.layer1.0.downsample.0.weight'],
    );
  });

  it('trainableConfigLayer maps a training case and refuses other documents', () => {
    assert.deepEqual(
      trainableConfigLayer({
        train: { trainable: { rule: 'frozen_conv_body' } },
      }),
      { TRAIN: { FREEZE_CONV_BODY: true } },
    );
    assert.deepEqual(
      trainableConfigLayer({
        train: {
          trainable: {
            rule: 'trainable_backbone_layers',
            trainable_backbone_layers: 2,
          },
        },
      }),
      {
        TRAIN: { FREEZE_CONV_BODY: false, TRAINABLE_BACKBONE_LAYERS: 2 },
      },
    );
    assert.throws(() => trainableConfigLayer({ model: {} }), ConfigError);
  });
});
