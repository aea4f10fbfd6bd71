/**
 * The training step contract: a replica takes its share of a batch (images and targets) and the
 * current value of every trainable parameter, and returns the losses and the gradient of their sum
 * with respect to each parameter — usually one onnxruntime session run of a training graph
 * ({@link graphTrainingModel}). The engine ({@link train}) knows nothing else about the model: the
 * detector's train-mode build and the tiny test net plug in the same way.
 *
 * Naming convention (issue 16's train-mode build): loss outputs are `loss.<name>`, the gradient of
 * the total loss (the sum of the losses) with respect to the parameter `<name>` (a torchvision
 * state-dict name) is the output `grad.<name>`, and the parameter's current value is fed to the
 * graph input `<name>`. {@link trainingGraphSpec} reads that convention off a model's inputs and
 * outputs; a graph with other names describes itself with explicit {@link TrainableParameter}s.
 */
import type { HostTensor } from '@rcnn/core';
import type { Device } from '../devices.js';
import { type OpenSessionOptions, type OrtLogLevel, OrtSession, type SessionRun } from '../session.js';
import type { ThreadSettings } from '../threads.js';
import type { ValueInfo } from '../worker/protocol.js';
import { TrainingError } from './errors.js';

/** Prefix of loss outputs. */
export const LOSS_PREFIX = 'loss.';
/** Output name of the sum of the losses, when a graph outputs it too (not counted again). */
export const TOTAL_LOSS_OUTPUT = 'loss.total';
/** Prefix of gradient outputs. */
export const GRADIENT_PREFIX = 'grad.';

/** One trainable parameter of a training graph. */
export interface TrainableParameter {
  /** torchvision state-dict name (what checkpoints store). */
  readonly name: string;
  /** Graph input that receives the parameter's current value. */
  readonly input: string;
  /** Graph output holding the gradient of the total loss with respect to it. */
  readonly gradient: string;
  readonly dims: readonly number[];
}

/** What the engine needs to know about a training graph's interface. */
export interface TrainingGraphSpec {
  readonly parameters: readonly TrainableParameter[];
  /** Loss outputs (`loss.*`); their sum is the loss the gradients are of. */
  readonly losses: readonly string[];
}

/** A training graph: the serialised ONNX model and its interface. */
export interface TrainingGraph extends TrainingGraphSpec {
  /** ModelProto bytes (opened once per replica). */
  readonly model: Uint8Array;
}

/** Where and when a replica's share of a batch runs. */
export interface StepContext {
  /** 0-based iteration. */
  readonly iteration: number;
  /** Replica index. */
  readonly replica: number;
  /** Replicas in the run. */
  readonly replicas: number;
  /**
   * Seed of this replica's step, a function of the run's seed, the iteration and the replica only,
   * so a resumed run draws what the uninterrupted one drew (sampling of anchors / RoIs, …).
   */
  readonly seed: number;
}

/** What one replica's step returns. */
export interface StepResult {
  /** Each loss by output name (`loss.cls`); the gradients are of their sum. */
  readonly losses: Readonly<Record<string, number>>;
  /**
   * Gradient of the summed loss for every trainable parameter, by torchvision name. The arrays
   * belong to the caller from then on (the engine averages, clips and applies them in place, without
   * a copy): a replica returns fresh arrays, never ones it keeps.
   */
  readonly gradients: ReadonlyMap<string, Float32Array>;
  /**
   * Time the step's onnxruntime runs took (summed over its sessions, measured where they run), when
   * the replica measures it: the rest of the step is host work (transform, feeds, hand-offs).
   */
  readonly sessionMs?: number;
}

/** How the engine asks a model for a replica. */
export interface ReplicaOptions {
  readonly device: Device;
  readonly threads: ThreadSettings;
  readonly strict?: boolean;
  readonly logLevel?: OrtLogLevel;
  /**
   * Profile every run of the replica's sessions with onnxruntime's profiler (benchmarks): each
   * session writes `<profile>-<session>_<timestamp>.json` when the replica is released.
   */
  readonly profile?: string;
  /** onnxruntime graph optimisations (default `all`; `disabled` keeps the graph's node names, for FLOP counting). */
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

/** The {@link OpenSessionOptions} of a replica's session named `session` (profile file prefix). */
export function replicaSessionOptions(options: ReplicaOptions, session: string): OpenSessionOptions {
  return {
    device: options.device,
    threads: options.threads,
    ...(options.strict === undefined ? {} : { strict: options.strict }),
    ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
    ...(options.profile === undefined ? {} : { profile: `${options.profile}-${session}` }),
    ...(options.graphOptimizationLevel === undefined ? {} : { graphOptimizationLevel: options.graphOptimizationLevel }),
  };
}

/**
 * One replica of a model's training step on one device: usually one onnxruntime session in its
 * own worker thread ({@link graphTrainingModel}); a model whose step is a documented chain of
 * sessions (detached proposals from an inference pass, host sampling, then the training graph)
 * implements it with several.
 */
export interface TrainingReplica<S> {
  /** Execution provider actually used. */
  readonly provider: 'cpu' | 'cuda';
  /** Why CUDA could not be used, when it was asked for. */
  readonly fallbackReason: string | undefined;
  /**
   * Runs the step on `samples` with the parameters' current values, which it must not change. It
   * may lend their buffers to its sessions ({@link runWithLentParameters}) instead of copying them:
   * while the step runs an entry may be detached, and by the time the promise settles every entry
   * holds an array with the same values again (possibly a new object over the same memory) — or
   * the step rejects with a {@link TrainingError} saying that parameters were lost (a dead worker).
   * So pass a map no one else reads during the step (each data-parallel replica its own).
   */
  step(samples: readonly S[], parameters: Map<string, Float32Array>, context: StepContext): Promise<StepResult>;
  /** Releases the sessions. */
  release(): Promise<void>;
}

/** A trainable parameter as the engine sees it. */
export interface ParameterInfo {
  /** torchvision state-dict name. */
  readonly name: string;
  readonly dims: readonly number[];
}

/**
 * A model the engine can train: its trainable parameters and their initial values, the tensors
 * that stay fixed (frozen layers, buffers: written to checkpoints with the trained ones so that a
 * checkpoint is a whole state dict), and its training step, opened once per device.
 */
export interface TrainingModel<S> {
  readonly parameters: readonly ParameterInfo[];
  /** Initial value of every trainable parameter, by torchvision name (copied by the engine). */
  readonly initial: ReadonlyMap<string, Float32Array>;
  /** Every other tensor of the state dict, written to checkpoints as is. */
  readonly fixed: ReadonlyMap<string, HostTensor>;
  /** Tensors that did not fit the initial weights and were drawn afresh (reported to the user). */
  readonly reinitialised: readonly string[];
  /** Opens the step on one device. */
  openReplica(options: ReplicaOptions): Promise<TrainingReplica<S>>;
  /**
   * Frees what only {@link openReplica} needs (serialised graphs), once every replica is open;
   * `openReplica` fails afterwards. The engine calls it after opening its replicas when asked to
   * (`TrainOptions.releaseGraphs`).
   */
  releaseGraphs?(): void;
}

/** The data side of a single-graph model: how a replica's share of samples becomes the graph's feeds. */
export interface GraphTrainingModelInit<S> {
  readonly graph: TrainingGraph;
  readonly initial: ReadonlyMap<string, Float32Array>;
  readonly fixed?: ReadonlyMap<string, HostTensor>;
  readonly reinitialised?: readonly string[];
  /** The data feeds of one replica's share of a batch (every graph input except the parameters). */
  feeds(samples: readonly S[], context: StepContext): Record<string, HostTensor>;
}

/**
 * A {@link TrainingModel} whose step is one run of one training graph: a replica is an
 * {@link OrtSession} (own worker thread) fed the data and a copy of every parameter, fetching the
 * losses and gradients.
 */
export function graphTrainingModel<S>(init: GraphTrainingModelInit<S>): TrainingModel<S> {
  const { graph } = init;
  checkInitialValues(graph, init.initial);
  const fetches = [...graph.losses, ...graph.parameters.map((p) => p.gradient)];
  return {
    parameters: graph.parameters.map((p) => ({ name: p.name, dims: p.dims })),
    initial: init.initial,
    fixed: init.fixed ?? new Map(),
    reinitialised: init.reinitialised ?? [],
    async openReplica(options) {
      const session = await OrtSession.open(graph.model, replicaSessionOptions(options, 'training'));
      try {
        checkSessionInterface(graph, session.inputs, session.outputs);
      } catch (e) {
        await session.release();
        throw e;
      }
      const device = options.device.name;
      return {
        provider: session.provider,
        fallbackReason: session.fallbackReason,
        release: () => session.release(),
        async step(samples, parameters, context) {
          const feeds: Record<string, HostTensor> = { ...init.feeds(samples, context) };
          const run = await runWithLentParameters(session, feeds, graph.parameters, parameters, fetches, { iteration: context.iteration, device });
          const losses: Record<string, number> = {};
          for (const l of graph.losses) {
            const t = run.outputs.get(l);
            if (!t || t.data.length !== 1) throw new TrainingError(`replica on ${device}: loss output "${l}" is ${t ? `of shape [${t.dims.join(', ')}]` : 'missing'}; a loss is a scalar`, { iteration: context.iteration });
            losses[l] = Number(t.data[0]);
          }
          const gradients = new Map<string, Float32Array>();
          for (const p of graph.parameters) {
            const g = run.outputs.get(p.gradient);
            const size = p.dims.reduce((a, b) => a * b, 1);
            if (!g || g.dtype !== 'float32' || g.data.length !== size) {
              throw new TrainingError(`replica on ${device}: gradient "${p.gradient}" is ${g ? `${g.dtype} [${g.dims.join(', ')}]` : 'missing'}, parameter "${p.name}" is float32 [${p.dims.join(', ')}]`, {
                iteration: context.iteration,
              });
            }
            gradients.set(p.name, g.data as Float32Array);
          }
          return { losses, gradients, sessionMs: run.sessionMs };
        },
      };
    },
  };
}

/** A map of copies of `values`: what to hand a replica's step when the originals are read meanwhile (see {@link TrainingReplica.step}). */
export function copyParameters(values: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...values].map(([k, v]) => [k, v.slice()]));
}

/**
 * One run of `session` fed `feeds` plus each of `parameters` under its input name, the parameter
 * buffers of `values` lent to the session's worker rather than copied (a model's worth of memory
 * less at the step's peak: 177 MB for an R-50-FPN Mask R-CNN). Every lent array is put back into
 * `values` before this returns or rethrows; if the worker died with them, the parameters are gone
 * and a {@link TrainingError} says so (no checkpoint may be written from `values` then).
 */
export async function runWithLentParameters(
  session: OrtSession,
  feeds: Record<string, HostTensor>,
  parameters: readonly { readonly name: string; readonly input: string; readonly dims: readonly number[] }[],
  values: Map<string, Float32Array>,
  fetches: readonly string[],
  context: { readonly iteration: number; readonly device: string },
): Promise<SessionRun> {
  const nameOf = new Map<string, string>();
  for (const p of parameters) {
    const data = values.get(p.name);
    if (!data) throw new TrainingError(`no value for trainable parameter "${p.name}"`, { iteration: context.iteration });
    feeds[p.input] = { dtype: 'float32', dims: p.dims, data };
    nameOf.set(p.input, p.name);
  }
  const restore = (input: string, tensor: HostTensor): void => {
    const name = nameOf.get(input);
    if (name !== undefined && tensor.data instanceof Float32Array) values.set(name, tensor.data);
  };
  const outcome = await session.run(feeds, fetches, { lend: [...nameOf.keys()], onReturned: restore }).then(
    (run) => ({ run }),
    (error: unknown) => ({ error }),
  );
  // Lost: still detached after the run settled (a run refused before anything moved left them attached).
  const lost = parameters.filter((p) => values.get(p.name)!.buffer.byteLength === 0 && p.dims.every((d) => d > 0));
  if (lost.length > 0) {
    // Losing the parameters outranks the run's own error, which is quoted.
    const why = 'error' in outcome && outcome.error instanceof Error ? `: ${outcome.error.message}` : '';
    throw new TrainingError(`replica on ${context.device}: ${lost.length} parameter buffer(s) lent to the session did not come back (e.g. "${lost[0]!.name}")${why}`, {
      iteration: context.iteration,
      hint: 'the parameters in memory are lost; continue from the last checkpoint with --resume',
    });
  }
  if ('error' in outcome) throw outcome.error;
  return outcome.run;
}

/** Checks that an opened session has every parameter input, gradient output and loss output of `graph`. */
export function checkSessionInterface(graph: TrainingGraphSpec, inputs: readonly ValueInfo[], outputs: readonly ValueInfo[]): void {
  const inputNames = new Set(inputs.map((v) => v.name));
  const outputNames = new Set(outputs.map((v) => v.name));
  for (const p of graph.parameters) {
    if (!inputNames.has(p.input)) throw new TrainingError(`the training graph has no input "${p.input}" for parameter "${p.name}"`);
    if (!outputNames.has(p.gradient)) throw new TrainingError(`the training graph has no output "${p.gradient}" for parameter "${p.name}"`);
  }
  for (const l of graph.losses) if (!outputNames.has(l)) throw new TrainingError(`the training graph has no loss output "${l}"`);
}

/**
 * Reads the naming convention off a model's declared inputs and outputs: every output
 * `grad.<name>` with an input `<name>` is a trainable parameter, every output `loss.*` a loss.
 * A gradient without its input, or a model without losses, is a {@link TrainingError}.
 */
export function trainingGraphSpec(inputs: readonly ValueInfo[], outputs: readonly ValueInfo[]): TrainingGraphSpec {
  const inputByName = new Map(inputs.map((i) => [i.name, i]));
  const parameters: TrainableParameter[] = [];
  const losses: string[] = [];
  for (const o of outputs) {
    if (o.name.startsWith(LOSS_PREFIX) && o.name !== TOTAL_LOSS_OUTPUT) losses.push(o.name);
    if (!o.name.startsWith(GRADIENT_PREFIX)) continue;
    const name = o.name.slice(GRADIENT_PREFIX.length);
    const input = inputByName.get(name);
    if (!input) throw new TrainingError(`training graph output "${o.name}" has no parameter input "${name}"`, { hint: 'trainable parameters must be graph inputs named by their torchvision name' });
    const dims = input.shape ?? [];
    if (!dims.every((d): d is number => typeof d === 'number')) {
      throw new TrainingError(`parameter input "${name}" has a symbolic shape [${dims.join(', ')}]`, { hint: 'parameters must have fixed shapes' });
    }
    parameters.push({ name, input: name, gradient: o.name, dims });
  }
  if (losses.length === 0) throw new TrainingError('the training graph has no loss outputs (loss.*)');
  if (parameters.length === 0) throw new TrainingError('the training graph has no gradient outputs (grad.*): nothing to train');
  return { parameters, losses };
}

/** Checks that `initial` holds a value of the right size for every parameter of `spec`. */
export function checkInitialValues(spec: { readonly parameters: readonly ParameterInfo[] }, initial: ReadonlyMap<string, Float32Array>): void {
  for (const p of spec.parameters) {
    const v = initial.get(p.name);
    const n = p.dims.reduce((a, b) => a * b, 1);
    if (!v) throw new TrainingError(`no initial value for trainable parameter "${p.name}" [${p.dims.join(', ')}]`);
    if (v.length !== n) throw new TrainingError(`initial value of "${p.name}" has ${v.length} values, its shape [${p.dims.join(', ')}] needs ${n}`);
  }
}

/** A loss output's name in logs and metrics: `loss.box_reg` → `loss_box_reg` (Detectron2's metric names). */
export function metricName(lossOutput: string): string {
  return lossOutput.startsWith(LOSS_PREFIX) ? `loss_${lossOutput.slice(LOSS_PREFIX.length)}` : lossOutput;
}
