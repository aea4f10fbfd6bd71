/**
 * The solver of `rcnn train`: Detectron's learning-rate schedule (warm-up, then steps with decay)
 * and PyTorch's SGD with momentum (what Detectron2 and torchvision's reference scripts use), with
 * Detectron's per-parameter bias rules and optional gradient clipping. Everything reads the core
 * `SOLVER.*` section; no number is buried here.
 *
 * Update of one parameter p with gradient g at learning rate lr (PyTorch `torch.optim.SGD`,
 * dampening 0, no Nesterov):
 *
 *     d   = g + wd * p
 *     buf = d                       (first update of p)
 *     buf = momentum * buf + d      (later updates)
 *     p   = p - lr * buf
 *
 * Detectron (Caffe2's MomentumSGDUpdate) keeps lr inside the buffer instead
 * (`buf = momentum * buf + lr * d; p -= buf`); the two are the same while lr is constant and
 * differ for a few iterations after each lr change (Detectron rescales its buffer there,
 * `SOLVER.SCALE_MOMENTUM`). rcnn-node follows PyTorch so that a run can be compared with Detectron2.
 */
import type { RcnnConfig } from '@rcnn/core';
import { TrainingError } from './errors.js';

/** The solver keys (core `SOLVER.*` section). */
export type SolverConfig = RcnnConfig['SOLVER'];

/**
 * Learning-rate factor of iteration `iteration` (0-based) relative to BASE_LR: GAMMA to the power
 * of the number of STEPS at or below `iteration` (a step at 0, as Detectron writes its first one,
 * changes nothing), times the warm-up factor while `iteration < WARM_UP_ITERS` — linear:
 * `WARM_UP_FACTOR * (1 - a) + a` with `a = iteration / WARM_UP_ITERS`; constant: `WARM_UP_FACTOR`
 * (Detectron's `get_lr_at_iter`, Detectron2's `WarmupMultiStepLR`).
 */
export function learningRateFactor(solver: SolverConfig, iteration: number): number {
  let decays = 0;
  for (const s of solver.STEPS) if (s > 0 && s <= iteration) decays++;
  let factor = solver.GAMMA ** decays;
  if (iteration < solver.WARM_UP_ITERS) {
    if (solver.WARM_UP_METHOD === 'constant') factor *= solver.WARM_UP_FACTOR;
    else {
      const alpha = iteration / solver.WARM_UP_ITERS;
      factor *= solver.WARM_UP_FACTOR * (1 - alpha) + alpha;
    }
  }
  return factor;
}

/** The base learning rate of iteration `iteration` (BASE_LR times {@link learningRateFactor}). */
export function learningRateAt(solver: SolverConfig, iteration: number): number {
  return solver.BASE_LR * learningRateFactor(solver, iteration);
}

/** Per-parameter multipliers of the solver (Detectron's bias rules). */
export interface ParameterRule {
  /** Factor on the iteration's learning rate. */
  readonly lrFactor: number;
  /** Weight decay of this parameter. */
  readonly weightDecay: number;
}

/** Whether a torchvision parameter name is a bias (the last component is `bias`). */
export function isBias(name: string): boolean {
  return name === 'bias' || name.endsWith('.bias');
}

/** The rule of a parameter: biases get BIAS_LR_FACTOR and WEIGHT_DECAY_BIAS, everything else 1 and WEIGHT_DECAY. */
export function parameterRule(solver: SolverConfig, name: string): ParameterRule {
  return isBias(name) ? { lrFactor: solver.BIAS_LR_FACTOR, weightDecay: solver.WEIGHT_DECAY_BIAS } : { lrFactor: 1, weightDecay: solver.WEIGHT_DECAY };
}

/** What {@link clipGradients} did. */
export interface ClipReport {
  /** The gradients' norm before clipping (p-norm of CLIP_NORM_TYPE over all parameters; for `value`, the max |g|). */
  readonly norm: number;
  /** Whether any gradient was changed. */
  readonly clipped: boolean;
}

function pNorm(values: Float32Array, p: number): number {
  let s = 0;
  if (p === 2) for (let i = 0; i < values.length; i++) s += values[i]! * values[i]!;
  else for (let i = 0; i < values.length; i++) s += Math.abs(values[i]!) ** p;
  return p === 2 ? Math.sqrt(s) : s ** (1 / p);
}

function scaleInPlace(values: Float32Array, factor: number): void {
  for (let i = 0; i < values.length; i++) values[i]! *= factor;
}

/**
 * Clips gradients in place as SOLVER.CLIP_GRADIENTS says, before weight decay is added (as
 * PyTorch clips `p.grad` before `optimizer.step()`): `value` clamps each element to
 * ±CLIP_VALUE (`clip_grad_value_`); `norm` scales each parameter's gradient whose p-norm exceeds
 * CLIP_VALUE by `CLIP_VALUE / (norm + CLIP_NORM_EPS)` (Detectron2's per-parameter norm clipping);
 * `full_model` does the same with the norm of all gradients together (`clip_grad_norm_`).
 */
export function clipGradients(solver: SolverConfig, gradients: ReadonlyMap<string, Float32Array>): ClipReport {
  const mode = solver.CLIP_GRADIENTS;
  const limit = solver.CLIP_VALUE;
  const p = solver.CLIP_NORM_TYPE;
  const eps = solver.CLIP_NORM_EPS;
  if (mode === 'none') return { norm: totalNorm(gradients, p), clipped: false };
  if (mode === 'value') {
    let maxAbs = 0;
    let clipped = false;
    for (const g of gradients.values()) {
      for (let i = 0; i < g.length; i++) {
        const v = g[i]!;
        const a = Math.abs(v);
        if (a > maxAbs) maxAbs = a;
        if (a > limit) {
          g[i] = v > 0 ? limit : -limit;
          clipped = true;
        }
      }
    }
    return { norm: maxAbs, clipped };
  }
  if (mode === 'norm') {
    let clipped = false;
    for (const g of gradients.values()) {
      const n = pNorm(g, p);
      const coef = limit / (n + eps);
      if (coef < 1) {
        scaleInPlace(g, coef);
        clipped = true;
      }
    }
    return { norm: totalNorm(gradients, p), clipped };
  }
  const n = totalNorm(gradients, p);
  const coef = limit / (n + eps);
  if (coef < 1) for (const g of gradients.values()) scaleInPlace(g, coef);
  return { norm: n, clipped: coef < 1 };
}

/** The p-norm of all gradients together (the norm of the per-parameter norms). */
export function totalNorm(gradients: ReadonlyMap<string, Float32Array>, p = 2): number {
  let s = 0;
  for (const g of gradients.values()) s += pNorm(g, p) ** p;
  return s ** (1 / p);
}

/** The momentum buffers of {@link SgdMomentum}, by parameter name (what a checkpoint stores). */
export type MomentumState = Map<string, Float32Array>;

/**
 * SGD with momentum over named float32 parameters, updated in place (see the module comment for
 * the formula). The momentum buffers are the optimizer state a checkpoint saves and `--resume`
 * restores; a parameter without a buffer takes its first update as PyTorch does (buf = d).
 */
export class SgdMomentum {
  readonly solver: SolverConfig;
  /** Momentum buffer of each parameter updated so far. */
  readonly momentum: MomentumState;

  constructor(solver: SolverConfig, state: MomentumState = new Map()) {
    this.solver = solver;
    this.momentum = state;
  }

  /**
   * One update of every parameter that has a gradient, at the schedule's learning rate for
   * `iteration` (each parameter's rule applied on top). Gradients must have their parameter's size.
   * Returns the base learning rate used.
   */
  step(parameters: ReadonlyMap<string, Float32Array>, gradients: ReadonlyMap<string, Float32Array>, iteration: number): number {
    const lr = learningRateAt(this.solver, iteration);
    const m = this.solver.MOMENTUM;
    for (const [name, g] of gradients) {
      const p = parameters.get(name);
      if (!p) throw new TrainingError(`gradient for "${name}", which is not a trainable parameter`, { iteration });
      if (p.length !== g.length) throw new TrainingError(`gradient of "${name}" has ${g.length} values, the parameter ${p.length}`, { iteration });
      const rule = parameterRule(this.solver, name);
      const plr = lr * rule.lrFactor;
      const wd = rule.weightDecay;
      let buf = this.momentum.get(name);
      // One pass over the three arrays; the update reads the momentum as stored (float32), as the two-pass form did.
      if (!buf) {
        buf = new Float32Array(p.length);
        this.momentum.set(name, buf);
        for (let i = 0; i < p.length; i++) {
          const b = Math.fround(g[i]! + wd * p[i]!);
          buf[i] = b;
          p[i]! -= plr * b;
        }
      } else {
        for (let i = 0; i < p.length; i++) {
          const b = Math.fround(m * buf[i]! + (g[i]! + wd * p[i]!));
          buf[i] = b;
          p[i]! -= plr * b;
        }
      }
    }
    return lr;
  }
}
