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
import { Worker } from 'node:worker_threads';
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
 * `norm2`, when given, is the 2-norm of all gradients as they are now (used instead of computing it).
 */
export function clipGradients(solver: SolverConfig, gradients: ReadonlyMap<string, Float32Array>, norm2?: number): ClipReport {
  const mode = solver.CLIP_GRADIENTS;
  const limit = solver.CLIP_VALUE;
  const p = solver.CLIP_NORM_TYPE;
  const eps = solver.CLIP_NORM_EPS;
  // The caller's 2-norm of all gradients saves a pass over them where that is the norm needed.
  const total = (): number => (p === 2 && norm2 !== undefined ? norm2 : totalNorm(gradients, p));
  if (mode === 'none') return { norm: total(), clipped: false };
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
  const n = total();
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
 * One parameter's SGD update in place (the formula of the module comment), in one pass over the
 * three arrays; the update reads the momentum as stored (float32). `buffer` is undefined on the
 * parameter's first update (buf = d, as PyTorch); returns the momentum buffer, new or updated.
 */
export function sgdUpdate(p: Float32Array, g: Float32Array, buffer: Float32Array | undefined, lr: number, momentum: number, weightDecay: number): Float32Array {
  if (!buffer) {
    const buf = new Float32Array(p.length);
    for (let i = 0; i < p.length; i++) {
      const b = Math.fround(g[i]! + weightDecay * p[i]!);
      buf[i] = b;
      p[i]! -= lr * b;
    }
    return buf;
  }
  for (let i = 0; i < p.length; i++) {
    const b = Math.fround(momentum * buffer[i]! + (g[i]! + weightDecay * p[i]!));
    buffer[i] = b;
    p[i]! -= lr * b;
  }
  return buffer;
}

/** How {@link SgdMomentum.stepAsync} spreads an update over threads. */
export interface SgdThreadOptions {
  /** Threads an update runs on, the calling one included (default 2: one helper thread). */
  readonly threads?: number;
  /**
   * Below this many values in all (default 1 Mi), an update stays on the calling thread: handing
   * arrays to a helper costs a message round trip, which only pays for itself on large models.
   */
  readonly minValues?: number;
}

/** One parameter handed to a helper thread. */
interface SgdJobItem {
  readonly name: string;
  readonly p: Float32Array;
  readonly g: Float32Array;
  readonly buffer: Float32Array | undefined;
  readonly lr: number;
  readonly weightDecay: number;
}

/** What a helper thread gets: items to update and the momentum factor. */
export interface SgdJob {
  readonly items: readonly SgdJobItem[];
  readonly momentum: number;
}

/** What a helper thread returns: each parameter and its momentum buffer (moved back), or why it failed. */
export type SgdJobResult = { readonly items: readonly { readonly name: string; readonly p: Float32Array; readonly buffer: Float32Array }[] } | { readonly error: string };

/** Whether `a` can be moved to another thread: it views the whole of an ordinary ArrayBuffer. */
const movable = (a: Float32Array): boolean => a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;

/** Runs {@link sgdUpdate} over a job's items (what a helper thread does). */
export function runSgdJob(job: SgdJob): SgdJobResult {
  return { items: job.items.map((it) => ({ name: it.name, p: it.p, buffer: sgdUpdate(it.p, it.g, it.buffer, it.lr, job.momentum, it.weightDecay) })) };
}

const SGD_WORKER_URL = new URL('./sgd-worker.js', import.meta.url);

/**
 * SGD with momentum over named float32 parameters, updated in place (see the module comment for
 * the formula). The momentum buffers are the optimizer state a checkpoint saves and `--resume`
 * restores; a parameter without a buffer takes its first update as PyTorch does (buf = d).
 */
export class SgdMomentum {
  readonly solver: SolverConfig;
  /** Momentum buffer of each parameter updated so far. */
  readonly momentum: MomentumState;
  private readonly threads: number;
  private readonly minValues: number;
  private helpers: (Worker | undefined)[] = [];
  private updating = false;

  constructor(solver: SolverConfig, state: MomentumState = new Map(), options: SgdThreadOptions = {}) {
    this.solver = solver;
    this.momentum = state;
    this.threads = options.threads ?? 2;
    this.minValues = options.minValues ?? 1 << 20;
    if (!Number.isInteger(this.threads) || this.threads < 1) throw new TrainingError(`SGD threads must be a whole number >= 1, not ${this.threads}`);
  }

  /**
   * One update of every parameter that has a gradient, at the schedule's learning rate for
   * `iteration` (each parameter's rule applied on top). Gradients must have their parameter's size.
   * Returns the base learning rate used.
   */
  step(parameters: ReadonlyMap<string, Float32Array>, gradients: ReadonlyMap<string, Float32Array>, iteration: number): number {
    const lr = learningRateAt(this.solver, iteration);
    for (const [name, g] of gradients) {
      const p = this.checked(parameters, name, g, iteration);
      const rule = parameterRule(this.solver, name);
      this.momentum.set(name, sgdUpdate(p, g, this.momentum.get(name), lr * rule.lrFactor, this.solver.MOMENTUM, rule.weightDecay));
    }
    return lr;
  }

  /**
   * {@link step} with the parameters shared out between this thread and helper threads (the same
   * values: each parameter is updated by one thread, by the same function). Arrays a helper updates
   * are moved there and back, so afterwards `parameters` and {@link momentum} may hold new array
   * objects over the same memory, and the gradients handed over are detached: pass a map of the
   * parameters that nothing else reads until the promise settles. Should a helper die, the
   * parameters it held are gone: the step rejects with a {@link TrainingError} saying so.
   */
  async stepAsync(parameters: Map<string, Float32Array>, gradients: ReadonlyMap<string, Float32Array>, iteration: number): Promise<number> {
    let values = 0;
    for (const g of gradients.values()) values += g.length;
    if (this.threads === 1 || values < this.minValues) return this.step(parameters, gradients, iteration);
    // A helper answers one job at a time: a second update while one runs would take its reply.
    if (this.updating) throw new TrainingError('SgdMomentum.stepAsync called while another update is running', { iteration });
    this.updating = true;
    try {
      return await this.stepShared(parameters, gradients, iteration);
    } finally {
      this.updating = false;
    }
  }

  private async stepShared(parameters: Map<string, Float32Array>, gradients: ReadonlyMap<string, Float32Array>, iteration: number): Promise<number> {
    const lr = learningRateAt(this.solver, iteration);
    // Largest first, each to the least loaded thread (a helper on ties: this thread also does the
    // messaging); only whole-buffer arrays can move. Group 0 is this thread.
    const groups: { load: number; items: SgdJobItem[] }[] = Array.from({ length: this.threads }, () => ({ load: 0, items: [] }));
    const moved = new Set<ArrayBufferLike>();
    const entries = [...gradients].sort((a, b) => b[1].length - a[1].length);
    for (const [name, g] of entries) {
      const p = this.checked(parameters, name, g, iteration);
      const buffer = this.momentum.get(name);
      const rule = parameterRule(this.solver, name);
      const item: SgdJobItem = { name, p, g, buffer, lr: lr * rule.lrFactor, weightDecay: rule.weightDecay };
      const arrays = buffer ? [p, g, buffer] : [p, g];
      const canMove = arrays.every((a) => movable(a) && !moved.has(a.buffer));
      const target = canMove ? groups.reduce((best, grp) => (grp.load <= best.load ? grp : best)) : groups[0]!;
      if (target !== groups[0]) for (const a of arrays) moved.add(a.buffer);
      target.load += g.length;
      target.items.push(item);
    }
    const momentum = this.solver.MOMENTUM;
    const pending = groups.slice(1).map((grp, i) => (grp.items.length > 0 ? this.runOnHelper(i, { items: grp.items, momentum }) : Promise.resolve<SgdJobResult>({ items: [] })));
    for (const it of groups[0]!.items) this.momentum.set(it.name, sgdUpdate(it.p, it.g, it.buffer, it.lr, momentum, it.weightDecay));
    const results = await Promise.all(pending);
    const lost: string[] = [];
    results.forEach((r, i) => {
      if ('error' in r) {
        lost.push(`${groups[i + 1]!.items.length} parameter(s) (e.g. "${groups[i + 1]!.items[0]!.name}"): ${r.error}`);
        return;
      }
      for (const it of r.items) {
        parameters.set(it.name, it.p);
        this.momentum.set(it.name, it.buffer);
      }
    });
    if (lost.length > 0) {
      throw new TrainingError(`the SGD update's helper thread failed and the parameters it held are lost: ${lost.join('; ')}`, {
        iteration,
        hint: 'the parameters in memory are lost; continue from the last checkpoint with --resume',
      });
    }
    return lr;
  }

  /** Stops the helper threads (a later {@link stepAsync} starts them again). */
  async close(): Promise<void> {
    const helpers = this.helpers;
    this.helpers = [];
    await Promise.all(helpers.map((w) => w?.terminate()));
  }

  private checked(parameters: ReadonlyMap<string, Float32Array>, name: string, g: Float32Array, iteration: number): Float32Array {
    const p = parameters.get(name);
    if (!p) throw new TrainingError(`gradient for "${name}", which is not a trainable parameter`, { iteration });
    if (p.length !== g.length) throw new TrainingError(`gradient of "${name}" has ${g.length} values, the parameter ${p.length}`, { iteration });
    return p;
  }

  private runOnHelper(index: number, job: SgdJob): Promise<SgdJobResult> {
    let worker = this.helpers[index];
    if (!worker) {
      worker = new Worker(SGD_WORKER_URL);
      // An optimizer nobody closes must not keep the process alive: held only while a job runs.
      worker.unref();
      this.helpers[index] = worker;
    }
    const transfer = job.items.flatMap((it) => [it.p.buffer, it.g.buffer, ...(it.buffer ? [it.buffer.buffer] : [])]) as ArrayBuffer[];
    return new Promise<SgdJobResult>((resolve) => {
      const w = worker;
      const done = (result: SgdJobResult): void => {
        w.unref();
        w.off('message', onMessage);
        w.off('error', onError);
        w.off('exit', onExit);
        resolve(result);
      };
      const onMessage = (m: SgdJobResult): void => done(m);
      const onError = (e: Error): void => {
        this.helpers[index] = undefined;
        done({ error: e.message });
      };
      const onExit = (code: number): void => {
        this.helpers[index] = undefined;
        done({ error: `the thread exited (code ${code})` });
      };
      w.on('message', onMessage);
      w.on('error', onError);
      w.on('exit', onExit);
      w.ref();
      w.postMessage(job, transfer);
    });
  }
}
