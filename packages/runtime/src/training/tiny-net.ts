/**
 * A tiny but real trainable model, built with core's graph builder: a 3x3 conv + ReLU, global
 * average pooling, then a linear classifier (softmax cross-entropy, `loss.cls`) and a linear
 * regressor of the object's centre (half squared error, `loss.reg`). Its backward pass is written
 * by hand in the same graph, so one onnxruntime session computes losses and `grad.*` for every
 * parameter exactly as the detector's train-mode build does. It exercises the whole engine
 * (replicas, averaging, solver, checkpoints, resume) end to end in well under a second per
 * iteration, and it is the worked example of the {@link TrainingModel} contract.
 *
 * Samples come from {@link tinyShapesData}: a square of one of `classes` colours on noise; the
 * label is its colour, the regression target its centre in [0, 1].
 */
import { type Blob, GraphBuilder, type HostTensor, type RandomInit, type WeightStore, gaussian, ops, seededRandom } from '@rcnn/core';
import { type TrainingData, mixSeed } from './data.js';
import { fitInitialWeights } from './initial-weights.js';
import { GRADIENT_PREFIX, LOSS_PREFIX, type TrainableParameter, type TrainingModel, graphTrainingModel } from './step.js';

/** Sizes of the tiny net. */
export interface TinyNetOptions {
  /** Input channels (default 3). */
  readonly channels?: number;
  /** Image side (square images; default 12). */
  readonly size?: number;
  /** Conv filters (default 8). */
  readonly filters?: number;
  /** Classes (default 3). */
  readonly classes?: number;
}

/** One sample of the tiny net: a [C,S,S] image, its class and its centre. */
export interface TinySample {
  readonly image: Float32Array;
  readonly label: number;
  readonly centre: readonly [number, number];
}

const DEFAULTS = { channels: 3, size: 12, filters: 8, classes: 3 } as const;

function sizes(o: TinyNetOptions): Required<TinyNetOptions> {
  return { ...DEFAULTS, ...o };
}

/** The tiny net's parameters, in graph order, with the init each gets when no weights fit. */
export function tinyNetParameters(options: TinyNetOptions = {}): { name: string; dims: number[]; init: RandomInit }[] {
  const { channels: c, filters: k, classes: n } = sizes(options);
  return [
    { name: 'conv.weight', dims: [k, c, 3, 3], init: { kind: 'normal', std: 0.3 } },
    { name: 'conv.bias', dims: [k], init: { kind: 'constant', value: 0.1 } },
    { name: 'cls.weight', dims: [n, k], init: { kind: 'normal', std: 0.1 } },
    { name: 'cls.bias', dims: [n], init: { kind: 'constant', value: 0 } },
    { name: 'reg.weight', dims: [2, k], init: { kind: 'normal', std: 0.1 } },
    { name: 'reg.bias', dims: [2], init: { kind: 'constant', value: 0.5 } },
  ];
}

/** Builds the tiny net's training graph (forward, both losses, every gradient). */
export function buildTinyNetGraph(options: TinyNetOptions = {}): { model: Uint8Array; parameters: TrainableParameter[]; losses: string[] } {
  const { channels: c, size: s, filters: k, classes: n } = sizes(options);
  const g = new GraphBuilder({ name: 'tiny_net_train' });
  const images = g.input('images', 'float32', ['N', c, s, s]);
  const labels = g.input('labels', 'int64', ['N']);
  const targets = g.input('targets', 'float32', ['N', 2]);
  const specs = tinyNetParameters(options);
  const p: Record<string, Blob> = {};
  for (const spec of specs) p[spec.name] = g.input(spec.name, 'float32', spec.dims);

  // Forward.
  const a1 = ops.conv(g, images, p['conv.weight']!, p['conv.bias']!, { kernel: 3, pad: 1, name: 'conv' });
  const h1 = ops.relu(g, a1);
  const f = ops.flatten(g, ops.globalAveragePool(g, h1));
  const logits = ops.gemm(g, f, p['cls.weight']!, p['cls.bias']!, { transB: true, name: 'cls' });
  const pred = ops.gemm(g, f, p['reg.weight']!, p['reg.bias']!, { transB: true, name: 'reg' });
  const count = ops.reshape(g, ops.cast(g, ops.dim(g, images, 0), 'float32'), []);
  const onehot = ops.cast(g, ops.equal(g, ops.unsqueeze(g, labels, [1]), g.constInt64(Array.from({ length: n }, (_, i) => i))), 'float32');
  const logp = g.op('LogSoftmax', [logits], { axis: 1 });
  const nll = g.op('Neg', [ops.reduceSum(g, ops.mul(g, logp, onehot), [0, 1])]);
  const lossCls = ops.div(g, nll, count, 'loss_cls');
  const diff = ops.sub(g, pred, targets);
  const lossReg = ops.div(g, ops.mul(g, g.constFloat32(0.5), ops.reduceSum(g, ops.mul(g, diff, diff), [0, 1])), count, 'loss_reg');
  g.output(lossCls, `${LOSS_PREFIX}cls`, 'float32', []);
  g.output(lossReg, `${LOSS_PREFIX}reg`, 'float32', []);

  // Backward of loss.cls + loss.reg.
  const dLogits = ops.div(g, ops.sub(g, ops.softmax(g, logits, 1), onehot), count);
  const dPred = ops.div(g, diff, count);
  const grads: Record<string, Blob> = {
    'cls.weight': ops.gemm(g, dLogits, f, null, { transA: true }),
    'cls.bias': ops.reduceSum(g, dLogits, [0]),
    'reg.weight': ops.gemm(g, dPred, f, null, { transA: true }),
    'reg.bias': ops.reduceSum(g, dPred, [0]),
  };
  const df = ops.add(g, g.op('MatMul', [dLogits, p['cls.weight']!]), g.op('MatMul', [dPred, p['reg.weight']!]));
  const dPool = ops.mul(g, ops.reshape(g, df, [0, k, 1, 1]), g.constFloat32(1 / (s * s)));
  const dA1 = ops.mul(g, dPool, ops.cast(g, ops.greater(g, a1, g.constFloat32(0)), 'float32'));
  grads['conv.bias'] = ops.reduceSum(g, dA1, [0, 2, 3]);
  // dW[k,c,i,j] = sum over n,y,x of dA1[n,k,y,x] * Xpad[n,c,y+i,x+j]: a convolution of the
  // batch-transposed input with the batch-transposed output gradient as the kernel.
  const xt = ops.transpose(g, images, [1, 0, 2, 3]);
  const dt = ops.transpose(g, dA1, [1, 0, 2, 3]);
  const wt = g.op('Conv', [xt, dt], { kernel_shape: [s, s], pads: [1, 1, 1, 1] });
  grads['conv.weight'] = ops.transpose(g, wt, [1, 0, 2, 3]);

  const parameters: TrainableParameter[] = specs.map((spec) => {
    g.output(grads[spec.name]!, `${GRADIENT_PREFIX}${spec.name}`, 'float32', spec.dims);
    return { name: spec.name, input: spec.name, gradient: `${GRADIENT_PREFIX}${spec.name}`, dims: spec.dims };
  });
  return { model: g.toModelProto(), parameters, losses: [`${LOSS_PREFIX}cls`, `${LOSS_PREFIX}reg`] };
}

/**
 * The tiny net as a {@link TrainingModel}: initial values from `weights` (a file's tensors where
 * they fit, re-initialised and reported where they do not) or seeded random ones.
 */
export function tinyNetModel(options: TinyNetOptions & { weights?: WeightStore; seed?: number } = {}): TrainingModel<TinySample> {
  const { channels: c, size: s } = sizes(options);
  const graph = buildTinyNetGraph(options);
  const requests = tinyNetParameters(options).map((p) => ({ key: p.name, shape: p.dims, init: p.init, optional: false }));
  const fitted = fitInitialWeights(options.weights, requests, options.seed ?? 0);
  const initial = new Map(requests.map((r) => [r.key, fitted.tensors.get(r.key)!.data as Float32Array]));
  return graphTrainingModel({
    graph,
    initial,
    reinitialised: fitted.reinitialised.map((r) => r.key),
    feeds(samples) {
      const nImages = samples.length;
      const images = new Float32Array(nImages * c * s * s);
      const labels = new BigInt64Array(nImages);
      const targets = new Float32Array(nImages * 2);
      samples.forEach((sample, i) => {
        images.set(sample.image, i * c * s * s);
        labels[i] = BigInt(sample.label);
        targets[2 * i] = sample.centre[0];
        targets[2 * i + 1] = sample.centre[1];
      });
      const feeds: Record<string, HostTensor> = {
        images: { dtype: 'float32', dims: [nImages, c, s, s], data: images },
        labels: { dtype: 'int64', dims: [nImages], data: labels },
        targets: { dtype: 'float32', dims: [nImages, 2], data: targets },
      };
      return feeds;
    },
  });
}

/**
 * `count` tiny samples: sample i is drawn from a generator seeded with i, so the set is the same
 * in every process. The square's colour is its class (channel `label % channels` raised); a
 * random horizontal flip (from the engine's per-slot random source) mirrors image and centre, as
 * a detector's training transform does.
 */
export function tinyShapesData(count: number, options: TinyNetOptions = {}): TrainingData<TinySample> {
  const { channels: c, size: s, classes: n } = sizes(options);
  const make = (index: number): TinySample => {
    const rand = seededRandom(mixSeed(index, 0x7e57));
    const noise = gaussian(rand);
    const image = new Float32Array(c * s * s);
    for (let i = 0; i < image.length; i++) image[i] = 0.1 * noise();
    const label = Math.floor(rand() * n);
    const side = 3 + Math.floor(rand() * 3);
    const x0 = Math.floor(rand() * (s - side + 1));
    const y0 = Math.floor(rand() * (s - side + 1));
    const channel = label % c;
    const level = label < c ? 1 : -1;
    for (let y = y0; y < y0 + side; y++) for (let x = x0; x < x0 + side; x++) image[channel * s * s + y * s + x]! += level;
    return { image, label, centre: [(x0 + side / 2) / s, (y0 + side / 2) / s] };
  };
  return {
    size: count,
    load(index, random) {
      const sample = make(index);
      if (random() < 0.5) return Promise.resolve(sample);
      const flipped = new Float32Array(sample.image.length);
      for (let ch = 0; ch < c; ch++) for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) flipped[ch * s * s + y * s + x] = sample.image[ch * s * s + y * s + (s - 1 - x)]!;
      return Promise.resolve({ image: flipped, label: sample.label, centre: [1 - sample.centre[0], sample.centre[1]] as const });
    },
  };
}
