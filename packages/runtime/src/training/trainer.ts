/**
 * The training engine behind `rcnn train`: one replica of the training graph per device (each an
 * onnxruntime session in its own worker thread, as the detector's replicas), each on its share of
 * the batch; the gradients averaged on the host; one SGD update applied to the single host copy
 * of the parameters, which every replica receives with its next step.
 *
 * Data parallelism follows Detectron: every replica computes its losses over its own images
 * (normalised per replica, as Detectron's per-GPU losses are), and the update uses the mean of the
 * replicas' gradients. For a loss that is a mean over images with the same number of terms per
 * image this is exactly one replica taking the whole batch; for losses normalised by a count that
 * varies between images (torchvision's mask loss over positive RoIs, the keypoint loss over
 * visible keypoints) it weights each replica's images by 1/R instead of by their share of the
 * count — docs/fine-tuning.md says more.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { seededRandom } from '@rcnn/core';
import { type Device, resolveDevices } from '../devices.js';
import { DeviceError } from '../errors.js';
import type { OrtLogLevel } from '../session.js';
import { type ThreadSettings, defaultThreads } from '../threads.js';
import { type CheckpointFiles, type TrainingState, checkpointName, lastCheckpoint, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { AspectRatioGroupedSampler, type BatchSampler, ShuffledSampler, type TrainingData, mixSeed, replicaShares } from './data.js';
import { TrainingError } from './errors.js';
import { type SolverConfig, SgdMomentum, clipGradients, totalNorm } from './solver.js';
import { type TrainingModel, type TrainingReplica, checkInitialValues, copyParameters, metricName } from './step.js';

/** Options of {@link train}. */
export interface TrainOptions<S> {
  readonly model: TrainingModel<S>;
  readonly data: TrainingData<S>;
  /** The `SOLVER.*` keys. */
  readonly solver: SolverConfig;
  /** Output directory: checkpoints, `metrics.json`. Created if missing. */
  readonly out: string;
  /** Devices, one replica each (`cpu`, `cpu:0,cpu:1`, `cuda:all`, …); default `cpu`. */
  readonly devices?: string | readonly string[];
  /** onnxruntime threads per replica (default: the cores split between the CPU replicas). */
  readonly threads?: Partial<ThreadSettings>;
  /** Fail when CUDA cannot be used instead of training on CPU. */
  readonly strict?: boolean;
  /** Seed of the data order, augmentation and per-step draws (default 0; a resumed run keeps its checkpoint's). */
  readonly seed?: number;
  /** Continue from the checkpoint `last_checkpoint` in `out` names (a fresh run when there is none). */
  readonly resume?: boolean;
  /**
   * Batch sampler (default: {@link AspectRatioGroupedSampler} when `aspectRatioGrouping` applies,
   * else {@link ShuffledSampler} over the data with the seed).
   */
  readonly sampler?: BatchSampler;
  /**
   * DATALOADER.ASPECT_RATIO_GROUPING: each replica's share of a batch is all landscape or all
   * portrait. Applies when the share is more than one image and the data knows its aspect ratios
   * (`TrainingData.aspectRatio`). Default false.
   */
  readonly aspectRatioGrouping?: boolean;
  /** DATALOADER.PREFETCH: batches loaded ahead while the replicas run the current one (0: none). Default 1. */
  readonly prefetch?: number;
  /** String metadata written into every checkpoint (config, category map). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Aborting stops the run after the running iteration, with a checkpoint (Ctrl-C). */
  readonly signal?: AbortSignal;
  /** Called after every iteration. */
  readonly onIteration?: (record: IterationRecord) => void;
  /** Called after every checkpoint, with what `validate` returned for it. */
  readonly onCheckpoint?: (files: CheckpointFiles, validation: Readonly<Record<string, number>> | undefined) => void;
  /** Evaluates a checkpoint (`--val`); its numbers go to the metrics log. */
  readonly validate?: (files: CheckpointFiles) => Promise<Readonly<Record<string, number>>>;
  /** Receives warnings (default: `console.warn`). */
  readonly onWarning?: (message: string) => void;
  /** onnxruntime's log level. */
  readonly logLevel?: OrtLogLevel;
  /**
   * Free the model's serialised graphs once the replicas are open ({@link TrainingModel.releaseGraphs}):
   * less memory for the run (~190 MB with a frozen R-50-FPN body), but the model cannot open replicas
   * again afterwards. Default false; `rcnn train`, which uses its model once, sets it.
   */
  readonly releaseGraphs?: boolean;
}

/** What one iteration did (one line of `metrics.json`). */
export interface IterationRecord {
  /** 0-based iteration. */
  readonly iteration: number;
  /** Each loss by metric name (`loss_cls`), averaged over the replicas. */
  readonly losses: Readonly<Record<string, number>>;
  /** Sum of the losses (the loss the gradients are of). */
  readonly totalLoss: number;
  /** Base learning rate of the iteration (biases get SOLVER.BIAS_LR_FACTOR times it). */
  readonly lr: number;
  /** 2-norm of the averaged gradients before clipping. */
  readonly gradNorm: number;
  /** Wall time of the iteration (data wait, steps, update). */
  readonly timeMs: number;
  /** Time waiting for the batch (0 when the prefetch was ready). */
  readonly dataMs: number;
  /** Estimated seconds to MAX_ITER from the recent iterations. */
  readonly etaSeconds: number;
}

/** A replica as a run reports it. */
export interface TrainingReplicaInfo {
  readonly device: string;
  readonly provider: 'cpu' | 'cuda';
  readonly fallbackReason: string | undefined;
  readonly threads: ThreadSettings;
}

/** How a run ended. */
export interface TrainResult {
  /** Iterations completed in total (including those before a resume). */
  readonly completed: number;
  readonly stoppedBy: 'max-iter' | 'interrupted';
  /** The newest checkpoint. */
  readonly checkpoint: CheckpointFiles | undefined;
  /** Iterations run by this call. */
  readonly records: readonly IterationRecord[];
  readonly replicas: readonly TrainingReplicaInfo[];
  /** Iteration this call started at (0, or the resumed checkpoint's). */
  readonly startIteration: number;
}

/** Name of the JSON-lines metrics log in the output directory (Detectron2's name). */
export const METRICS_FILE = 'metrics.json';

const ETA_WINDOW = 20;

interface Replica<S> {
  readonly device: Device;
  readonly step: TrainingReplica<S>;
  readonly threads: ThreadSettings;
}

async function openReplicas<S>(model: TrainingModel<S>, devices: readonly Device[], options: TrainOptions<S>, warn: (m: string) => void): Promise<Replica<S>[]> {
  const threads = defaultThreads(devices, options.threads);
  const opened = await Promise.allSettled(
    devices.map((device, i) =>
      model.openReplica({
        device,
        threads: threads[i]!,
        ...(options.strict === undefined ? {} : { strict: options.strict }),
        ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
      }),
    ),
  );
  const failed = opened.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(opened.map((s) => (s.status === 'fulfilled' ? s.value.release() : undefined)));
    throw failed.reason;
  }
  const replicas = opened.map((s, i) => ({ device: devices[i]!, step: (s as PromiseFulfilledResult<TrainingReplica<S>>).value, threads: threads[i]! }));
  // Every replica is open: the model's serialised graphs are not needed for the rest of the run.
  if (options.releaseGraphs) model.releaseGraphs?.();
  for (const r of replicas) {
    if (r.step.fallbackReason !== undefined) warn(`${r.device.name}: CUDA cannot be used (${r.step.fallbackReason}); this replica trains on CPU`);
  }
  return replicas;
}

/** Losses (by output name) and gradients averaged over the replicas. */
interface StepOutcome {
  readonly losses: Record<string, number>;
  readonly gradients: Map<string, Float32Array>;
}

/** Runs every replica on its share and averages losses and gradients over them (Detectron's 1/R loss scale, then the sum). */
async function runStep<S>(model: TrainingModel<S>, replicas: readonly Replica<S>[], parameters: Map<string, Float32Array>, samples: readonly S[], shares: readonly number[], iteration: number, seed: number): Promise<StepOutcome> {
  let offset = 0;
  // A replica may lend its map's buffers to its sessions during the step: the first gets the
  // engine's own, the others copies — all made before any step starts (and lends).
  const own = replicas.map((_, r) => (r === 0 ? parameters : copyParameters(parameters)));
  const results = await Promise.all(
    replicas.map((replica, r) => {
      const share = samples.slice(offset, offset + shares[r]!);
      offset += shares[r]!;
      return replica.step.step(share, own[r]!, { iteration, replica: r, replicas: replicas.length, seed: mixSeed(seed, iteration, r, 0x57e9) });
    }),
  );
  const losses: Record<string, number> = {};
  const gradients = new Map<string, Float32Array>();
  const scale = 1 / replicas.length;
  results.forEach((result, r) => {
    const device = replicas[r]!.device.name;
    for (const [name, v] of Object.entries(result.losses)) losses[name] = (losses[name] ?? 0) + v * scale;
    for (const p of model.parameters) {
      const g = result.gradients.get(p.name);
      const size = parameters.get(p.name)!.length;
      if (!g || g.length !== size) throw new TrainingError(`replica on ${device}: the step returned ${g ? `${g.length} gradient values` : 'no gradient'} for "${p.name}" (${size} values)`, { iteration });
      const sum = gradients.get(p.name);
      // One replica: its arrays are ours (StepResult.gradients), used as they are — a copy would be one more model's worth of memory at the step's peak.
      if (!sum) gradients.set(p.name, replicas.length === 1 ? g : g.map((v) => v * scale));
      else for (let i = 0; i < size; i++) sum[i]! += g[i]! * scale;
    }
  });
  return { losses, gradients };
}

function firstNonFinite(gradients: ReadonlyMap<string, Float32Array>): string | undefined {
  for (const [name, g] of gradients) for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i])) return `${name}[${i}] = ${g[i]}`;
  return undefined;
}

const show = (losses: Readonly<Record<string, number>>): string =>
  Object.entries(losses)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

/**
 * Trains `model` on `data` with the SOLVER keys until SOLVER.MAX_ITER (or until `signal` aborts),
 * writing checkpoints every SOLVER.CHECKPOINT_PERIOD iterations and at the end, and one JSON line
 * per iteration to `metrics.json`. A non-finite loss or gradient stops the run with a
 * {@link TrainingError} naming the iteration and the losses; nothing of that iteration is applied
 * or saved, so the last checkpoint is the last good state.
 */
export async function train<S>(options: TrainOptions<S>): Promise<TrainResult> {
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const { model, solver } = options;
  checkInitialValues(model, model.initial);
  const resolved = resolveDevices(options.devices ?? 'cpu');
  if (resolved.noGpuForAll) {
    if (options.strict) throw new DeviceError('cuda:all found no GPU and strict mode forbids training on CPU', { device: 'cuda:all' });
    warn('cuda:all found no GPU; training on CPU');
  }
  const devices = resolved.devices.length > 0 ? resolved.devices : resolveDevices('cpu').devices;
  const shares = replicaShares(solver.IMS_PER_BATCH, devices.length);
  await mkdir(options.out, { recursive: true });

  let state: TrainingState = {
    iteration: 0,
    seed: options.seed ?? 0,
    parameters: new Map([...model.initial].map(([k, v]) => [k, v.slice()])),
    momentum: new Map(),
  };
  let checkpoint: CheckpointFiles | undefined;
  if (options.resume) {
    const path = await lastCheckpoint(options.out);
    if (path === undefined) warn(`--resume: no checkpoint in ${options.out} yet; starting a new run`);
    else {
      const loaded = await readCheckpoint(path, model.parameters.map((p) => p.name));
      if (options.seed !== undefined && options.seed !== loaded.state.seed) {
        warn(`--resume: the checkpoint was trained with seed ${loaded.state.seed}; continuing with it (not ${options.seed}) so the run continues exactly`);
      }
      state = loaded.state;
      checkpoint = loaded.files;
    }
  }
  const seed = state.seed;
  const parameters = state.parameters as Map<string, Float32Array>;
  const sgd = new SgdMomentum(solver, new Map(state.momentum));
  const shapes = new Map(model.parameters.map((p) => [p.name, p.dims]));
  const sampler = options.sampler ?? defaultSampler(options.data, solver.IMS_PER_BATCH / devices.length, options.aspectRatioGrouping === true, seed, warn);
  const prefetch = options.prefetch ?? 1;
  if (!Number.isInteger(prefetch) || prefetch < 0) throw new TrainingError(`DATALOADER.PREFETCH must be a whole number >= 0, not ${prefetch}`);
  const metricsPath = join(options.out, METRICS_FILE);
  const startIteration = state.iteration;
  const records: IterationRecord[] = [];

  const save = async (completed: number, final: boolean): Promise<CheckpointFiles> => {
    const files = await writeCheckpoint(
      options.out,
      checkpointName(completed, final),
      { iteration: completed, seed, parameters, momentum: sgd.momentum },
      shapes,
      model.fixed,
      options.metadata,
    );
    checkpoint = files;
    const validation = options.validate ? await options.validate(files) : undefined;
    if (validation) await appendFile(metricsPath, `${JSON.stringify({ iteration: completed - 1, validation })}\n`);
    options.onCheckpoint?.(files, validation);
    return files;
  };

  if (startIteration >= solver.MAX_ITER) {
    return { completed: startIteration, stoppedBy: 'max-iter', checkpoint, records, replicas: [], startIteration };
  }

  const replicas = await openReplicas(model, devices, options, warn);
  const loadBatch = (iteration: number): Promise<S[]> => {
    const indices = sampler.batch(iteration, solver.IMS_PER_BATCH);
    return Promise.all(indices.map((index, slot) => options.data.load(index, seededRandom(mixSeed(seed, iteration, slot, 0xda7a)))));
  };
  const recent: number[] = [];
  let stoppedBy: TrainResult['stoppedBy'] = 'max-iter';
  let savedAt = startIteration;
  try {
    // Batches requested and not yet taken, by iteration: the prefetch queue.
    const pending = new Map<number, Promise<S[]>>();
    const request = (iteration: number): void => {
      if (iteration >= solver.MAX_ITER || pending.has(iteration)) return;
      const batch = loadBatch(iteration);
      // A batch that fails is reported when its iteration takes it, not as an unhandled rejection.
      batch.catch(() => undefined);
      pending.set(iteration, batch);
    };
    for (let iteration = startIteration; iteration < solver.MAX_ITER; iteration++) {
      if (options.signal?.aborted) {
        stoppedBy = 'interrupted';
        break;
      }
      const started = performance.now();
      request(iteration);
      const current = pending.get(iteration)!;
      pending.delete(iteration);
      // Prefetch: the next `prefetch` batches decode while this one is awaited and the replicas run it.
      for (let ahead = 1; ahead <= prefetch; ahead++) request(iteration + ahead);
      const samples: S[] = await current;
      const dataMs = performance.now() - started;
      const outcome = await runStep(model, replicas, parameters, samples, shares, iteration, seed);
      const losses: Record<string, number> = {};
      let totalLoss = 0;
      for (const [name, v] of Object.entries(outcome.losses)) {
        losses[metricName(name)] = v;
        totalLoss += v;
      }
      // One pass for the norm and the finite check: a float32 gradient's sum of squares (in float64)
      // is finite exactly when every value is, so the search for the culprit runs only on failure.
      const gradNorm = totalNorm(outcome.gradients);
      const bad = !Number.isFinite(totalLoss) ? 'the loss is not finite' : Number.isFinite(gradNorm) ? undefined : (firstNonFinite(outcome.gradients) ?? `their norm is ${gradNorm}`);
      if (bad !== undefined) {
        const kept = checkpoint ? `the last good checkpoint is ${checkpoint.model} (after ${checkpoint.iteration} iterations)` : 'no checkpoint was written yet';
        throw new TrainingError(`iteration ${iteration}: ${bad.startsWith('the loss') ? bad : `a gradient is not finite (${bad})`} — losses: ${show(losses)}; ${kept}`, {
          iteration,
          losses,
          hint: 'lower SOLVER.BASE_LR, lengthen SOLVER.WARM_UP_ITERS or enable SOLVER.CLIP_GRADIENTS, then --resume (or start from that checkpoint)',
        });
      }
      clipGradients(solver, outcome.gradients, gradNorm);
      const lr = await sgd.stepAsync(parameters, outcome.gradients, iteration);
      const timeMs = performance.now() - started;
      recent.push(timeMs);
      if (recent.length > ETA_WINDOW) recent.shift();
      const meanMs = recent.reduce((a, b) => a + b, 0) / recent.length;
      const record: IterationRecord = {
        iteration,
        losses,
        totalLoss,
        lr,
        gradNorm,
        timeMs,
        dataMs,
        etaSeconds: ((solver.MAX_ITER - iteration - 1) * meanMs) / 1000,
      };
      records.push(record);
      await appendFile(metricsPath, `${JSON.stringify(metricsLine(record))}\n`);
      options.onIteration?.(record);
      const completed = iteration + 1;
      if (completed === solver.MAX_ITER) {
        await save(completed, true);
        savedAt = completed;
      } else if (completed % solver.CHECKPOINT_PERIOD === 0) {
        await save(completed, false);
        savedAt = completed;
      }
    }
    const completed = startIteration + records.length;
    if (stoppedBy === 'interrupted' && completed > savedAt) await save(completed, false);
    return { completed, stoppedBy, checkpoint, records, replicas: replicas.map(replicaInfo), startIteration };
  } finally {
    await Promise.all([...replicas.map((r) => r.step.release()), sgd.close()]);
  }
}

/** The sampler of a run: aspect-ratio groups of one replica's share when asked for and possible, else a plain shuffle. */
function defaultSampler<S>(data: TrainingData<S>, share: number, grouping: boolean, seed: number, warn: (m: string) => void): BatchSampler {
  if (grouping && share > 1) {
    const aspectRatio = data.aspectRatio?.bind(data);
    if (aspectRatio) return new AspectRatioGroupedSampler(Array.from({ length: data.size }, (_, i) => aspectRatio(i)), share, seed);
    warn('DATALOADER.ASPECT_RATIO_GROUPING: the training data has no image sizes; batches are not grouped by aspect ratio');
  }
  return new ShuffledSampler(data.size, seed);
}

function replicaInfo<S>(r: Replica<S>): TrainingReplicaInfo {
  return { device: r.device.name, provider: r.step.provider, fallbackReason: r.step.fallbackReason, threads: r.threads };
}

/** A record as one `metrics.json` line: Detectron2's keys (`iteration`, `total_loss`, `loss_*`, `lr`, `time`, `data_time`, `eta_seconds`). */
export function metricsLine(r: IterationRecord): Record<string, number> {
  return {
    iteration: r.iteration,
    total_loss: r.totalLoss,
    ...r.losses,
    lr: r.lr,
    grad_norm: r.gradNorm,
    time: r.timeMs / 1000,
    data_time: r.dataMs / 1000,
    eta_seconds: r.etaSeconds,
  };
}
