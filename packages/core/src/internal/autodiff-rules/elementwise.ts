/**
 * Gradient rules of element-wise operators (with ONNX multidirectional broadcasting: every input
 * gradient is summed back to its input's shape).
 */
import type { Blob } from '../../graph/builder.js';
import { type GradientContext, type GradientRule, registerGradientRule } from '../../autodiff/registry.js';
import { at } from '../../errors.js';

const FLOAT_TYPES = new Set([1, 10, 11, 16]);

/** `g` where `mask` (bool) is true, else 0. */
const masked = (ctx: GradientContext, mask: Blob, g: Blob, name: string): Blob => ctx.graph.op('Where', [mask, g, ctx.scalar(0)], {}, name);

/**
 * `grad` (of the node's output's shape) summed back to `input`'s shape — or `grad` itself where the
 * builder knows the two shapes are equal (a residual sum: no run-time reduction, which copies).
 */
const unbroadcast = (ctx: GradientContext, grad: Blob, input: Blob): Blob => (ctx.sameShape(input, at(ctx.outputs, 0, 'ctx.outputs')) ? grad : ctx.reduceToShapeOf(grad, input));

/** A rule for a unary op whose input gradient is `g * f(x, y)`. */
function unary(local: (ctx: GradientContext, x: Blob, y: Blob, g: Blob) => Blob): GradientRule {
  return {
    differentiableInputs: [0],
    backward(ctx) {
      const x = ctx.inputs[0]!;
      return [local(ctx, x, at(ctx.outputs, 0, 'ctx.outputs'), ctx.outputGradient(0))];
    },
  };
}

/** `Max`/`Min` (variadic, broadcasting): the gradient goes to the inputs equal to the result, split equally among ties (torch.maximum). */
function extremum(): GradientRule {
  return {
    backward(ctx) {
      const g = ctx.graph;
      const y = at(ctx.outputs, 0, 'ctx.outputs');
      const grad = ctx.outputGradient(0);
      const inputs = ctx.inputs.map((x) => x!);
      if (inputs.length === 1) return [grad];
      const masks = inputs.map((x, i) => g.op('Cast', [g.op('Equal', [x, y], {}, `eq${i}`)], { to: ctx.dtype === 'float64' ? 11 : 1 }, `mask${i}`));
      const ties = g.op('Sum', masks, {}, 'ties');
      const share = g.op('Div', [grad, ties], {}, 'share');
      return inputs.map((x, i) => (ctx.needsInputGradient(i) ? ctx.reduceToShapeOf(g.op('Mul', [share, at(masks, i, 'masks')], {}, `g${i}`), x) : null));
    },
  };
}

/** Installs the element-wise rules. */
export function installElementwiseRules(register: typeof registerGradientRule): void {
  register('Add', {
    backward(ctx) {
      const grad = ctx.outputGradient(0);
      return [0, 1].map((i) => (ctx.needsInputGradient(i) ? unbroadcast(ctx, grad, ctx.inputs[i]!) : null));
    },
  });
  register('Sub', {
    backward(ctx) {
      const grad = ctx.outputGradient(0);
      return [
        ctx.needsInputGradient(0) ? unbroadcast(ctx, grad, ctx.inputs[0]!) : null,
        ctx.needsInputGradient(1) ? unbroadcast(ctx, ctx.graph.op('Neg', [grad], {}, 'neg'), ctx.inputs[1]!) : null,
      ];
    },
  });
  register('Sum', {
    backward(ctx) {
      const grad = ctx.outputGradient(0);
      return ctx.inputs.map((x, i) => (ctx.needsInputGradient(i) ? ctx.reduceToShapeOf(grad, x!) : null));
    },
  });
  register('Mul', {
    backward(ctx) {
      const g = ctx.graph;
      const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
      const grad = ctx.outputGradient(0);
      return [
        ctx.needsInputGradient(0) ? ctx.reduceToShapeOf(g.op('Mul', [grad, b], {}, 'ga'), a) : null,
        ctx.needsInputGradient(1) ? ctx.reduceToShapeOf(g.op('Mul', [grad, a], {}, 'gb'), b) : null,
      ];
    },
  });
  register('Div', {
    backward(ctx) {
      const g = ctx.graph;
      const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
      const grad = ctx.outputGradient(0);
      const ga = g.op('Div', [grad, b], {}, 'ga');
      return [
        ctx.needsInputGradient(0) ? ctx.reduceToShapeOf(ga, a) : null,
        // d(a/b)/db = -(a/b)/b, so g_b = -g/b * y.
        ctx.needsInputGradient(1) ? ctx.reduceToShapeOf(g.op('Neg', [g.op('Mul', [ga, at(ctx.outputs, 0, 'ctx.outputs')], {}, 'gy')], {}, 'gb'), b) : null,
      ];
    },
  });
  register('Pow', {
    backward(ctx) {
      const g = ctx.graph;
      const [x, p] = [ctx.inputs[0]!, ctx.inputs[1]!];
      const grad = ctx.outputGradient(0);
      const y = at(ctx.outputs, 0, 'ctx.outputs');
      // d x^p / dx = p x^(p-1); d x^p / dp = x^p log x.
      const gx = ctx.needsInputGradient(0)
        ? ctx.reduceToShapeOf(
            g.op('Mul', [grad, g.op('Mul', [p, g.op('Pow', [x, g.op('Sub', [p, ctx.scalar(1)], {}, 'pm1')], {}, 'xpm1')], {}, 'dydx')], {}, 'gx'),
            x,
          )
        : null;
      const gp = ctx.needsInputGradient(1)
        ? ctx.reduceToShapeOf(g.op('Mul', [grad, g.op('Mul', [y, g.op('Log', [x], {}, 'logx')], {}, 'dydp')], {}, 'gp'), p)
        : null;
      return [gx, gp];
    },
  });
  register('Max', extremum());
  register('Min', extremum());
  register(
    'Neg',
    unary((ctx, _x, _y, g) => ctx.graph.op('Neg', [g], {}, 'gx')),
  );
  register(
    'Identity',
    unary((_ctx, _x, _y, g) => g),
  );
  register(
    'Abs',
    unary((ctx, x, _y, g) => ctx.graph.op('Mul', [g, ctx.graph.op('Sign', [x], {}, 'sign')], {}, 'gx')),
  );
  register(
    'Relu',
    unary((ctx, _x, y, g) => masked(ctx, ctx.graph.op('Greater', [y, ctx.scalar(0)], {}, 'positive'), g, 'gx')),
  );
  register(
    'LeakyRelu',
    unary((ctx, x, _y, g) => {
      const alpha = ctx.floatAttribute('alpha', 0.01);
      return ctx.graph.op(
        'Where',
        [ctx.graph.op('Greater', [x, ctx.scalar(0)], {}, 'positive'), g, ctx.graph.op('Mul', [g, ctx.scalar(alpha)], {}, 'scaled')],
        {},
        'gx',
      );
    }),
  );
  register(
    'Sigmoid',
    unary((ctx, _x, y, g) => {
      const gr = ctx.graph;
      return gr.op('Mul', [g, gr.op('Mul', [y, gr.op('Sub', [ctx.scalar(1), y], {}, 'one_minus_y')], {}, 'dydx')], {}, 'gx');
    }),
  );
  register(
    'Tanh',
    unary((ctx, _x, y, g) => {
      const gr = ctx.graph;
      return gr.op('Mul', [g, gr.op('Sub', [ctx.scalar(1), gr.op('Mul', [y, y], {}, 'y2')], {}, 'dydx')], {}, 'gx');
    }),
  );
  register(
    'Softplus',
    unary((ctx, x, _y, g) => ctx.graph.op('Mul', [g, ctx.graph.op('Sigmoid', [x], {}, 'sig')], {}, 'gx')),
  );
  register(
    'Exp',
    unary((ctx, _x, y, g) => ctx.graph.op('Mul', [g, y], {}, 'gx')),
  );
  register(
    'Log',
    unary((ctx, x, _y, g) => ctx.graph.op('Div', [g, x], {}, 'gx')),
  );
  register(
    'Sqrt',
    unary((ctx, _x, y, g) => ctx.graph.op('Div', [ctx.graph.op('Mul', [g, ctx.scalar(0.5)], {}, 'half'), y], {}, 'gx')),
  );
  register(
    'Reciprocal',
    unary((ctx, _x, y, g) => ctx.graph.op('Neg', [ctx.graph.op('Mul', [g, ctx.graph.op('Mul', [y, y], {}, 'y2')], {}, 'gy2')], {}, 'gx')),
  );
  register('Clip', {
    differentiableInputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      const x = ctx.inputs[0]!;
      const [lo, hi] = [ctx.inputs[1] ?? null, ctx.inputs[2] ?? null];
      // torch.clamp passes the gradient where lo <= x <= hi (bounds included).
      let mask: Blob | null = lo ? g.op('GreaterOrEqual', [x, lo], {}, 'above_lo') : null;
      if (hi) {
        const below = g.op('LessOrEqual', [x, hi], {}, 'below_hi');
        mask = mask ? g.op('And', [mask, below], {}, 'inside') : below;
      }
      const grad = ctx.outputGradient(0);
      return [mask ? masked(ctx, mask, grad, 'gx') : grad];
    },
  });
  register('Where', {
    differentiableInputs: [1, 2],
    backward(ctx) {
      const g = ctx.graph;
      const cond = ctx.inputs[0]!;
      const grad = ctx.outputGradient(0);
      const zero = ctx.scalar(0);
      return [
        null,
        ctx.needsInputGradient(1) ? ctx.reduceToShapeOf(g.op('Where', [cond, grad, zero], {}, 'ga'), ctx.inputs[1]!) : null,
        ctx.needsInputGradient(2) ? ctx.reduceToShapeOf(g.op('Where', [cond, zero, grad], {}, 'gb'), ctx.inputs[2]!) : null,
      ];
    },
  });
  register('Cast', {
    // A cast between float types passes the gradient (in the backward's type); a cast to an
    // integer or bool type ends every path.
    differentiableOutputs: (node) => {
      const to = node.attributes.get('to');
      return to?.kind === 'int' && FLOAT_TYPES.has(to.value) ? [0] : [];
    },
    backward(ctx) {
      return [ctx.graph.op('Cast', [ctx.outputGradient(0)], { to: ctx.dtype === 'float64' ? 11 : 1 }, 'gx')];
    },
  });
}
