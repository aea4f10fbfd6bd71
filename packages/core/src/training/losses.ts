/**
 * The loss functions of the training graph, built from plain differentiable ONNX operators (Relu,
 * Abs, Exp, Log, Where, LogSoftmax, GatherElements, ReduceSum, …) so that core's reverse-mode
 * gradients cover them. Each returns a scalar float32 blob; normalisers are graph values derived
 * from input shapes (no gradient).
 */
import type { Blob, GraphBuilder } from '../graph/builder.js';
import * as ops from '../graph/onnx-ops.js';

/** Number of elements of `x` as a float32 scalar (no gradient flows through it). */
export function elementCount(g: GraphBuilder, x: Blob, name = 'count'): Blob {
  const dims = ops.shape(g, x, undefined, undefined, `${name}_dims`);
  return ops.cast(g, g.op('ReduceProd', [dims], { keepdims: 0 }, `${name}_prod`), 'float32', name);
}

/** `sum / max(count, 1)`: torchvision's `logits.sum() * 0` when nothing is selected, the mean otherwise. */
export function safeMean(g: GraphBuilder, sum: Blob, count: Blob, name = 'mean'): Blob {
  return ops.div(g, sum, ops.max(g, [count, g.constFloat32(1)], `${name}_den`), name);
}

/** Sum of every element of `x` (a scalar). */
export function sumAll(g: GraphBuilder, x: Blob, name = 'sum'): Blob {
  return g.op('ReduceSum', [ops.reshape(g, x, [-1], `${name}_flat`), g.constInt64([0])], { keepdims: 0 }, name);
}

/**
 * Sum of `binary_cross_entropy_with_logits(x, y)` over all elements, in the stable form
 * relu(x) - x * y + log(1 + exp(-|x|)).
 */
export function bceWithLogitsSum(g: GraphBuilder, logits: Blob, targets: Blob, name = 'bce'): Blob {
  return g.withScope(name, () => {
    const negAbs = ops.sub(g, g.constFloat32(0), g.op('Abs', [logits], {}, 'abs'), 'neg_abs');
    const softplus = ops.log(g, ops.add(g, g.constFloat32(1), ops.exp(g, negAbs, 'exp'), 'one_plus'), 'log1p');
    const perElement = ops.add(g, ops.sub(g, ops.relu(g, logits, 'relu'), ops.mul(g, logits, targets, 'xy'), 'relu_minus_xy'), softplus, 'elementwise');
    return sumAll(g, perElement, 'sum');
  });
}

/**
 * Sum of torchvision's `smooth_l1_loss(pred, target, beta, reduction='sum')`: 0.5 d² / beta where
 * |d| < beta, |d| - 0.5 beta elsewhere; beta < 1e-5 is plain L1 (as torch).
 */
export function smoothL1Sum(g: GraphBuilder, pred: Blob, target: Blob, beta: number, name = 'smooth_l1'): Blob {
  return g.withScope(name, () => {
    const d = g.op('Abs', [ops.sub(g, pred, target, 'diff')], {}, 'abs');
    if (beta < 1e-5) return sumAll(g, d, 'sum');
    const quadratic = ops.mul(g, ops.mul(g, d, d, 'sq'), g.constFloat32(0.5 / beta), 'quadratic');
    const linear = ops.sub(g, d, g.constFloat32(0.5 * beta), 'linear');
    return sumAll(g, ops.where(g, ops.less(g, d, g.constFloat32(beta), 'small'), quadratic, linear, 'elementwise'), 'sum');
  });
}

/** Sum over rows of `cross_entropy(logits [R, C], labels [R] int64)`: -log_softmax(logits)[r, label[r]]. */
export function crossEntropySum(g: GraphBuilder, logits: Blob, labels: Blob, name = 'cross_entropy'): Blob {
  return g.withScope(name, () => {
    const logProbs = g.op('LogSoftmax', [logits], { axis: 1 }, 'log_softmax');
    const picked = ops.gatherElements(g, logProbs, ops.unsqueeze(g, labels, [1], 'labels_col'), 1, 'picked');
    return ops.sub(g, g.constFloat32(0), sumAll(g, picked, 'sum'), 'neg');
  });
}
