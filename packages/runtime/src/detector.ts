/**
 * The detector: the model built and serialised once, a replica per device (its own onnxruntime
 * session, from the same bytes, in its own worker thread), a scheduler over them, and the host
 * side around the graph: decoding, the image transform, splitting outputs per image and the host
 * post-processors.
 */
import {
  type BuiltModel,
  type DependencyContainer,
  type HostPostprocessor,
  type HostTensor,
  type ImageDetections,
  type ImageTransform,
  MODEL_INPUTS,
  type ModelOutput,
  type PreparedBatch,
  type RawOutputs,
  type RcnnConfig,
  type RgbImage,
  SLOTS,
  type TapSpec,
  WeightStore,
  buildModel,
  resolveImplementation,
  ConfigError,
  InputError,
  checkModelMemory,
  printable,
} from '@rcnn/core';
import type { ModelLabels } from './categories.js';
import { type Device, resolveDevices } from './devices.js';
import { DeviceError, ShutdownError } from './errors.js';
import { type DecodedImage, type ImageInput, type ImageLimits, decodeImage, describeInput } from './image-io.js';
import { imageInputProblem, validateDetectorOptions, validatePredictInputs, validatePredictOptions } from './options.js';
import { type ImageProposals, type RowRange, checkPreparedBatch, splitDetections, splitProposals } from './outputs.js';
import type { Preset } from './presets.js';
import { releaseArrayBuffers } from './internal/release-memory.js';
import { type ReplicaLoad, Scheduler } from './internal/scheduler.js';
import { type OrtLogLevel, OrtSession } from './session.js';
import { type ThreadSettings, defaultThreads } from './threads.js';
import { type ModelSourceOptions, resolveModelSources } from './setup.js';

/** Options of {@link createDetector}. */
export interface DetectorOptions extends ModelSourceOptions {
  /** Device strings: `cpu` (default), `cuda:0`, `cuda:all`, … — one replica each. */
  readonly devices?: string | readonly string[];
  /** Fail when CUDA cannot be used instead of falling back to CPU with a warning. */
  readonly strict?: boolean;
  /** Images per forward pass (default 1, at most LIMITS.MAX_BATCH). */
  readonly batchSize?: number;
  /** Batches running at once per replica (default 1 on CPU, 2 on a GPU, where host work overlaps the device). */
  readonly maxInFlight?: number;
  /** onnxruntime threads per replica (default: the cores split between the CPU replicas). */
  readonly threads?: Partial<ThreadSettings>;
  /** Also output every tapped intermediate (for `--dump-intermediates` and parity checks). */
  readonly intermediates?: boolean;
  /** Receives warnings (default: `console.warn`). */
  readonly onWarning?: (message: string) => void;
  /** onnxruntime's process-wide log level (default: onnxruntime's own). */
  readonly logLevel?: OrtLogLevel;
  /**
   * Profile every session run with onnxruntime's profiler: replica i writes
   * `<profile>_r<i>_<timestamp>.json` when the detector is closed (see {@link OpenSessionOptions.profile}).
   */
  readonly profile?: string;
  /** Precision of the conv stages (core's `BuildOptions.precision`): `float16` is a GPU option. Default `float32`. */
  readonly precision?: 'float32' | 'float16';
  /**
   * Read FIFOs, character devices and sockets given as image paths (a shell process substitution
   * `<(cat a.jpg)` is a pipe), within LIMITS.MAX_IMAGE_BYTES and LIMITS.READ_TIMEOUT_MS. Default
   * false: they are refused, since `/dev/zero` never ends and a FIFO without a writer never delivers.
   */
  readonly allowSpecialFiles?: boolean;
}

/** Per-stage times of one image, in milliseconds. */
export interface StageTimings {
  /** Reading and decoding this image. */
  readonly decodeMs: number;
  /** Waiting for a free replica. */
  readonly queueMs: number;
  /** The image transform of the batch (normalise, resize, pad). */
  readonly preprocessMs: number;
  /** The batch's session run as seen from the main thread (includes moving tensors between threads). */
  readonly runMs: number;
  /** Time inside onnxruntime's `run`. */
  readonly sessionMs: number;
  /** Splitting the outputs and the host post-processors of the batch. */
  readonly postprocessMs: number;
  /** decode + preprocess + run + post-process (no queueing). */
  readonly totalMs: number;
  /** Images in the batch the stage times (except decode) belong to. */
  readonly batchSize: number;
}

/** The raw tensors of one batch, kept with `keepOutputs` (for dumps). */
export interface BatchOutputs {
  readonly prepared: PreparedBatch;
  readonly outputs: RawOutputs;
  /** Rows of each image in the flattened `det.*` outputs (detection models). */
  readonly rows: readonly RowRange[] | undefined;
  /** Global index of each image of the batch, in batch order. */
  readonly indices: readonly number[];
  /** Intermediates the outputs include (with `intermediates: true`). */
  readonly taps: readonly TapSpec[];
}

/** The result for one image. */
export interface ImageResult {
  /** Position of the image in the caller's input list. */
  readonly index: number;
  readonly source: string;
  /** Size of the (EXIF-rotated) original image. */
  readonly width: number;
  readonly height: number;
  readonly kind: 'detections' | 'proposals';
  /** Detections in original-image pixels (detection models). */
  readonly detections: ImageDetections | undefined;
  /** Proposals (RPN-only models). */
  readonly proposals: ImageProposals | undefined;
  /** Device of the replica that ran it (`cpu`, `cuda:0`). */
  readonly device: string;
  readonly replica: number;
  /** Execution provider the replica's session actually uses. */
  readonly provider: 'cpu' | 'cuda';
  readonly timings: StageTimings;
  /** The weights were random: the detections are meaningless. */
  readonly randomWeights: boolean;
  /** The decoded image (with `keepImages`). */
  readonly image: DecodedImage | undefined;
  /** The batch's raw tensors (with `keepOutputs`) and this image's position in the batch. */
  readonly batch: BatchOutputs | undefined;
  readonly batchPosition: number;
}

/** One image's outcome: a result, or the error that concerns only this image. */
export type PredictOutcome =
  | { readonly ok: true; readonly index: number; readonly source: string; readonly result: ImageResult }
  | { readonly ok: false; readonly index: number; readonly source: string; readonly error: Error };

/** Options of {@link Detector.predict}. */
export interface PredictOptions {
  /** Keep the decoded pixels in each result (for drawing). */
  readonly keepImages?: boolean;
  /** Keep the batch's raw tensors in each result (for dumps; feeds are then copied to the worker, not moved). */
  readonly keepOutputs?: boolean;
  /** Images per forward pass for this call (default: the detector's). */
  readonly batchSize?: number;
}

/** A replica as the detector reports it. */
export interface ReplicaSummary {
  readonly index: number;
  readonly device: string;
  readonly provider: 'cpu' | 'cuda';
  readonly fallbackReason: string | undefined;
  readonly threads: ThreadSettings;
  readonly sessionCreateMs: number;
}

interface Replica {
  readonly summary: ReplicaSummary;
  readonly session: OrtSession;
}

/** A loud, one-line warning for results of random weights. */
export const RANDOM_WEIGHTS_WARNING = 'RANDOM WEIGHTS: no weights were given, so every detection is meaningless (pass weights for real results)';

/** The part of a built model the detector keeps after its session is created (the graph itself is dropped). */
interface ModelInfo {
  readonly kind: BuiltModel['kind'];
  readonly outputs: readonly ModelOutput[];
  readonly taps: readonly TapSpec[];
  readonly hostPostprocessors: readonly { readonly name: string; readonly value: HostPostprocessor }[];
  readonly weights: BuiltModel['weights'];
  readonly resolved: BuiltModel['resolved'];
}

interface DecodedItem {
  readonly index: number;
  readonly source: string;
  readonly image: DecodedImage;
  readonly decodeMs: number;
}

const now = (): number => performance.now();

/**
 * A loaded model on one or more devices. Create with {@link createDetector}; call {@link close}
 * when done (pending requests finish, sessions are released, worker threads end).
 */
export class Detector {
  readonly config: RcnnConfig;
  readonly labels: ModelLabels;
  readonly preset: Preset | undefined;
  /** Where the config came from (preset name, file, …). */
  readonly configSource: string;
  readonly kind: 'detections' | 'proposals';
  readonly replicas: readonly ReplicaSummary[];
  /** What the weights were and which tensors the model did not use. */
  readonly weights: BuiltModel['weights'];
  /** Registry names resolved for each slot. */
  readonly resolved: BuiltModel['resolved'];
  /** Graph outputs (and, with intermediates, the taps). */
  readonly outputs: readonly ModelOutput[];
  readonly taps: readonly TapSpec[];
  /** Warnings issued while creating the detector (random weights, CUDA fallback, unused weights). */
  readonly warnings: readonly string[];
  readonly batchSize: number;

  private readonly transform: { readonly name: string; readonly value: ImageTransform };
  private readonly model: ModelInfo;
  private readonly pool: readonly Replica[];
  private readonly scheduler: Scheduler<Replica>;
  private readonly limits: ImageLimits;
  private closing: Promise<void> | undefined;

  /** @internal use {@link createDetector} */
  constructor(init: {
    config: RcnnConfig;
    labels: ModelLabels;
    preset: Preset | undefined;
    configSource: string;
    model: ModelInfo;
    transform: { readonly name: string; readonly value: ImageTransform };
    pool: readonly Replica[];
    maxInFlight: readonly number[];
    batchSize: number;
    warnings: readonly string[];
    allowSpecialFiles?: boolean;
  }) {
    this.config = init.config;
    this.labels = init.labels;
    this.preset = init.preset;
    this.configSource = init.configSource;
    this.model = init.model;
    this.kind = init.model.kind;
    this.weights = init.model.weights;
    this.resolved = init.model.resolved;
    this.outputs = init.model.outputs;
    this.taps = init.model.taps;
    this.transform = init.transform;
    this.pool = init.pool;
    this.replicas = init.pool.map((r) => r.summary);
    this.warnings = init.warnings;
    this.batchSize = init.batchSize;
    this.scheduler = new Scheduler(init.pool, { maxInFlight: init.maxInFlight });
    const limits = init.config.LIMITS;
    this.limits = {
      maxPixels: limits.MAX_IMAGE_PIXELS,
      maxSide: limits.MAX_IMAGE_SIDE,
      maxBytes: limits.MAX_IMAGE_BYTES,
      readTimeoutMs: limits.READ_TIMEOUT_MS,
      allowSpecialFiles: init.allowSpecialFiles ?? false,
    };
  }

  /** True when the weights are random (results are meaningless). */
  get randomWeights(): boolean {
    return this.weights.random;
  }

  /** Runs the registered image transform (INPUT.TRANSFORM) on decoded images: the model's input batch. */
  prepare(images: readonly RgbImage[]): PreparedBatch {
    const prepared = this.transform.value.prepare(images, this.config);
    checkPreparedBatch(prepared, images.length, this.transform.name);
    return prepared;
  }

  /** Load of each replica (jobs running, done, failed, busy time). */
  loads(): (ReplicaLoad & { readonly device: string })[] {
    return this.scheduler.loads().map((l) => ({ ...l, device: this.replicas[l.index]!.device }));
  }

  /**
   * Runs the model on every input and returns one outcome per input, in input order. A failing
   * image (unreadable, too large, …) fails only its own outcome. A literal list of inputs gives a
   * tuple of as many outcomes (`const [a, b] = await detector.predict([x, y])` needs no index check).
   */
  async predict<const I extends readonly ImageInput[]>(inputs: I, options: PredictOptions = {}): Promise<{ -readonly [K in keyof I]: PredictOutcome }> {
    const out: PredictOutcome[] = [];
    for await (const o of this.stream(inputs, options)) out.push(o);
    // stream() yields exactly one outcome per input, in input order.
    return out as { -readonly [K in keyof I]: PredictOutcome };
  }

  /** Runs one image; throws its error instead of returning it. */
  async predictOne(input: ImageInput, options: PredictOptions = {}): Promise<ImageResult> {
    const [o] = await this.predict([input], options);
    if (!o.ok) throw o.error;
    return o.result;
  }

  /**
   * Like {@link predict} but yields outcomes as they complete, in input order, keeping only a
   * bounded number of batches in memory (decoding runs ahead of the replicas by a few batches).
   */
  async *stream(inputs: readonly ImageInput[], options: PredictOptions = {}): AsyncGenerator<PredictOutcome> {
    validatePredictInputs(inputs);
    validatePredictOptions(options);
    options ??= {};
    const batchSize = options.batchSize ?? this.batchSize;
    checkBatchSize(batchSize, this.config);
    const batches: { input: ImageInput; index: number }[][] = [];
    for (let i = 0; i < inputs.length; i += batchSize) batches.push(inputs.slice(i, i + batchSize).map((input, k) => ({ input, index: i + k })));
    const window = this.pool.length * 2 + 1;
    const pending: Promise<PredictOutcome[]>[] = [];
    let next = 0;
    const launch = (): void => {
      while (pending.length < window && next < batches.length) pending.push(this.processBatch(batches[next++]!, options));
    };
    launch();
    while (pending.length > 0) {
      const outcomes = await pending.shift()!;
      launch();
      yield* outcomes;
    }
  }

  /**
   * Stops accepting requests; queued requests fail with a {@link ShutdownError}, running ones
   * finish; then every session is released and its worker thread ends. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.scheduler.close();
      await Promise.all(this.pool.map((r) => r.session.release()));
    })();
    return this.closing;
  }

  private async processBatch(items: readonly { input: ImageInput; index: number }[], options: PredictOptions): Promise<PredictOutcome[]> {
    const outcomes: PredictOutcome[] = new Array(items.length);
    const decoded: DecodedItem[] = [];
    await Promise.all(
      items.map(async ({ input, index }, k) => {
        const problem = imageInputProblem(input);
        const source = problem === undefined ? describeInput(input, index) : `<input ${index}>`;
        const started = now();
        try {
          if (problem !== undefined) throw new InputError(`${source}: ${problem}`, { source, hint: 'pass file paths, encoded bytes, { data, name } or raw pixels' });
          if (this.closing) throw new ShutdownError();
          const image = await decodeImage(input, this.limits, source);
          decoded.push({ index, source, image, decodeMs: now() - started });
        } catch (error) {
          outcomes[k] = { ok: false, index, source, error: error as Error };
        }
      }),
    );
    decoded.sort((a, b) => a.index - b.index);
    const results = await this.inferIsolated(decoded, options);
    for (const o of results) outcomes[items.findIndex((it) => it.index === o.index)] = o;
    return outcomes;
  }

  /** Runs a batch; if the batch fails as a whole, runs its images one by one so only the culprit fails. */
  private async inferIsolated(items: readonly DecodedItem[], options: PredictOptions): Promise<PredictOutcome[]> {
    if (items.length === 0) return [];
    const queued = now();
    try {
      return await this.scheduler.submit((replica, index) => this.infer(replica, index, items, options, now() - queued));
    } catch (error) {
      if (items.length === 1 || error instanceof ShutdownError) {
        return items.map((it) => ({ ok: false, index: it.index, source: it.source, error: error as Error }));
      }
      const singles = await Promise.all(items.map((it) => this.inferIsolated([it], options)));
      return singles.flat();
    }
  }

  /**
   * {@link prepare} for the runtime's own batches. The transform only knows an image's position in
   * the batch ("image 0: … aspect ratio is too extreme"); an image that fails alone (a batch that
   * fails is retried image by image) gets its error re-raised naming its file.
   */
  private prepareNamed(items: readonly DecodedItem[]): PreparedBatch {
    try {
      return this.prepare(items.map((it) => it.image));
    } catch (e) {
      if (items.length !== 1 || !(e instanceof InputError) || e.message.startsWith(items[0]!.source)) throw e;
      const source = items[0]!.source;
      throw new InputError(`${source}: ${e.message}`, { source, ...(e.hint === undefined ? {} : { hint: e.hint }), cause: e });
    }
  }

  private async infer(replica: Replica, replicaIndex: number, items: readonly DecodedItem[], options: PredictOptions, queueMs: number): Promise<PredictOutcome[]> {
    const t0 = now();
    const prepared = this.prepareNamed(items);
    const t1 = now();
    // Feeds that own their buffer are moved to the worker, which detaches them here: the image
    // sizes are needed afterwards (and are tiny), the images only by dumps.
    const feeds: Record<string, HostTensor> = {
      [MODEL_INPUTS.images]: options.keepOutputs ? copyTensor(prepared.images) : prepared.images,
      [MODEL_INPUTS.imageSizes]: copyTensor(prepared.imageSizes),
      [MODEL_INPUTS.originalSizes]: copyTensor(prepared.originalSizes),
    };
    const run = await replica.session.run(feeds).catch((e: unknown) => {
      // A lost worker takes its replica out of service; the other replicas carry on.
      const lost = replica.session.failure;
      if (lost) this.scheduler.disable(replicaIndex, lost.message);
      throw e;
    });
    const t2 = now();
    const outputs: RawOutputs = run.outputs;
    let detections: ImageDetections[] | undefined;
    let proposals: ImageProposals[] | undefined;
    let rows: RowRange[] | undefined;
    if (this.model.kind === 'detections') {
      ({ images: detections, rows } = splitDetections(outputs, prepared));
      for (const p of this.model.hostPostprocessors) p.value.apply(outputs, detections, rows, this.config);
    } else {
      proposals = splitProposals(outputs, items.length);
    }
    const t3 = now();
    const batch: BatchOutputs | undefined = options.keepOutputs
      ? { prepared, outputs, rows, indices: items.map((it) => it.index), taps: this.model.taps }
      : undefined;
    const summary = replica.summary;
    return items.map((it, k): PredictOutcome => {
      const timings: StageTimings = {
        decodeMs: it.decodeMs,
        queueMs,
        preprocessMs: t1 - t0,
        runMs: t2 - t1,
        sessionMs: run.sessionMs,
        postprocessMs: t3 - t2,
        totalMs: it.decodeMs + (t3 - t0),
        batchSize: items.length,
      };
      return {
        ok: true,
        index: it.index,
        source: it.source,
        result: {
          index: it.index,
          source: it.source,
          width: it.image.width,
          height: it.image.height,
          kind: this.model.kind,
          detections: detections?.[k],
          proposals: proposals?.[k],
          device: summary.device,
          replica: replicaIndex,
          provider: summary.provider,
          timings,
          randomWeights: this.weights.random,
          image: options.keepImages ? it.image : undefined,
          batch,
          batchPosition: k,
        },
      };
    });
  }
}

function copyTensor(t: HostTensor): HostTensor {
  return { ...t, data: t.data.slice() } as HostTensor;
}

function checkBatchSize(batchSize: number, config: RcnnConfig): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ConfigError(`batch size must be a positive integer, got ${batchSize}`);
  if (batchSize > config.LIMITS.MAX_BATCH) {
    throw new ConfigError(`batch size ${batchSize} exceeds LIMITS.MAX_BATCH (${config.LIMITS.MAX_BATCH})`, {
      key: 'LIMITS.MAX_BATCH',
      hint: 'use a smaller batch, or raise LIMITS.MAX_BATCH',
    });
  }
}

/** The names of a model's resolved host post-processors, checked against the registry. */
function resolvePostprocessors(container: DependencyContainer, names: readonly string[]): ModelInfo['hostPostprocessors'] {
  return names.map((n) => {
    const impl = resolveImplementation(container, SLOTS.hostPostprocessor, n);
    return { name: impl.name, value: impl.value };
  });
}

/**
 * Builds and serialises the model once and opens a session for each replica from those bytes. Warns once when CUDA
 * is unavailable (CPU is used instead, unless `strict`), and once when the weights are random.
 */
export async function createDetector(options: DetectorOptions = {}): Promise<Detector> {
  validateDetectorOptions(options);
  options ??= {};
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const warnings: string[] = [];
  const say = (m: string): void => {
    warnings.push(m);
    warn(m);
  };
  const { container, resolved, labels, weights } = await resolveModelSources(options);
  const { config } = resolved;
  const batchSize = options.batchSize ?? 1;
  checkBatchSize(batchSize, config);
  // Before anything is built: a config that needs tens of GB is refused with the key to change.
  checkModelMemory(config, { batchSize });
  const transform = resolveImplementation(container, SLOTS.imageTransform, config.INPUT.TRANSFORM);

  const { devices: requested, noGpuForAll } = resolveDevices(options.devices ?? 'cpu');
  let devices: readonly Device[] = requested;
  const cudaProblems: string[] = [];
  if (noGpuForAll) {
    if (options.strict) throw new DeviceError('cuda:all: no NVIDIA GPU found (nvidia-smi -L lists none or is not installed)', { device: 'cuda:all', hint: 'drop --strict to run on CPU' });
    cudaProblems.push('cuda:all found no NVIDIA GPU (nvidia-smi -L lists none or is not installed)');
    if (devices.length === 0) devices = [{ kind: 'cpu', id: 0, name: 'cpu' }];
  }

  const threads = defaultThreads(devices, options.threads);
  const opening: Promise<Replica>[] = [];
  // One build and one serialisation per model, whatever the number of replicas: onnxruntime
  // sessions are independent, so every replica opens a session from the same bytes (Detectron's
  // per-GPU build loop, with one name scope per replica, has nothing to keep apart here).
  const built = buildModel(config, container, weights, { intermediates: options.intermediates ?? false, precision: options.precision ?? 'float32' });
  const model: ModelInfo = {
    kind: built.kind,
    outputs: built.outputs,
    taps: built.taps,
    hostPostprocessors: resolvePostprocessors(container, built.hostPostprocessors),
    weights: built.weights,
    resolved: built.resolved,
  };
  // The graph (and its copy of the weights) is dropped once serialised. Each worker gets its own
  // buffer, moved, not cloned (onnxruntime-node reads only an ArrayBuffer, so a SharedArrayBuffer
  // cannot be shared), and frees it once its session exists.
  const payloads = replicaPayloads(built.toBytes(), devices.length);
  // Free the memory the serialised model replaces before the sessions are created, not at some
  // later garbage collection (which a process that only runs the detector may never get to): the
  // graph's own arrays (folded norms), and, when the detector read the weights itself, the file and
  // every tensor read from it. A WeightStore the caller passed stays theirs, untouched.
  const ownsWeights = !(options.weights instanceof WeightStore);
  releaseArrayBuffers([...built.graph.ownedInitializerBuffers(), ...(ownsWeights ? weights.backingBuffers() : [])]);
  try {
    devices.forEach((device, index) => {
      opening.push(
        OrtSession.open(payloads[index]!, {
          device,
          threads: threads[index]!,
          strict: options.strict,
          transferModel: true,
          logLevel: options.logLevel,
          ...(options.profile ? { profile: `${options.profile}_r${index}` } : {}),
        }).then((session) => ({
          session,
          summary: {
            index,
            device: device.name,
            provider: session.provider,
            fallbackReason: session.fallbackReason,
            threads: threads[index]!,
            sessionCreateMs: session.createMs,
          },
        })),
      );
    });
  } catch (e) {
    await releaseAll(opening);
    throw e;
  }
  const settled = await Promise.allSettled(opening);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) {
    await releaseAll(opening);
    throw (failed as PromiseRejectedResult).reason;
  }
  const pool = settled.map((s) => (s as PromiseFulfilledResult<Replica>).value);

  const fellBack = pool.filter((r) => r.summary.fallbackReason !== undefined);
  if (fellBack.length > 0) cudaProblems.push(`onnxruntime cannot use CUDA on ${fellBack.map((r) => r.summary.device).join(', ')}: ${fellBack[0]!.summary.fallbackReason}`);
  if (cudaProblems.length > 0) {
    say(
      `warning: ${cudaProblems.join('; ')}. Running on CPU instead. To use the GPU, install onnxruntime-node with its CUDA 12 providers ` +
        '(see the @rcnn/runtime README, "Enabling CUDA"); pass strict (--strict) to fail instead of falling back.',
    );
  }
  if (model.weights.random) say(`warning: ${RANDOM_WEIGHTS_WARNING} [${model.weights.description}]`);
  if (model.weights.unusedKeys.length > 0) {
    const keys = model.weights.unusedKeys;
    say(`warning: ${keys.length} tensor(s) of ${model.weights.description} are not used by the model: ${keys.slice(0, 8).map((k) => printable(k)).join(', ')}${keys.length > 8 ? ', …' : ''}`);
  }
  const maxInFlight = pool.map((r) => options.maxInFlight ?? (r.summary.provider === 'cuda' ? 2 : 1));
  return new Detector({
    config,
    labels,
    preset: resolved.preset,
    configSource: resolved.source,
    model,
    transform: { name: transform.name, value: transform.value },
    pool,
    maxInFlight,
    batchSize,
    warnings,
    allowSpecialFiles: options.allowSpecialFiles ?? false,
  });
}

/** One buffer of the serialised model per replica: copies for all but the last, which gets `bytes` itself. */
function replicaPayloads(bytes: Uint8Array, replicas: number): Uint8Array[] {
  return Array.from({ length: replicas }, (_, i) => (i === replicas - 1 ? bytes : bytes.slice()));
}

async function releaseAll(opening: readonly Promise<Replica>[]): Promise<void> {
  await Promise.all(opening.map((p) => p.then((r) => r.session.release(), () => undefined)));
}
