/**
 * An onnxruntime session that lives in its own worker thread ({@link OrtSession}). The runtime
 * opens one per replica; `rcnn bench --baseline` opens one for the user's model.
 */
import { Worker } from 'node:worker_threads';
import type { HostTensor } from '@rcnn/core';
import type { Device } from './devices.js';
import { DeviceError, InferenceError, ShutdownError } from './errors.js';
import type { ThreadSettings } from './threads.js';
import type { SessionInit, ValueInfo, WorkerReply, WorkerRequest } from './worker/protocol.js';

/** onnxruntime's log levels. */
export type OrtLogLevel = 'verbose' | 'info' | 'warning' | 'error' | 'fatal';

/** Options of {@link OrtSession.open}. */
export interface OpenSessionOptions {
  readonly device: Device;
  readonly threads: ThreadSettings;
  /** Fail instead of falling back to CPU when CUDA cannot be used (default false). */
  readonly strict?: boolean;
  /** onnxruntime graph optimisations (default `all`). */
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** onnxruntime's process-wide log level; takes effect only before the process's first session. */
  readonly logLevel?: OrtLogLevel;
  /** Move the model bytes to the worker instead of copying them (the caller's array becomes unusable). */
  readonly transferModel?: boolean;
  /**
   * Profile every run with onnxruntime's profiler: the JSON trace (per-node kernel times, shapes and
   * the execution provider each node ran on) is written to `<profile>_<timestamp>.json` when the
   * session is released. For benchmarks and `explainPlacement`; it slows runs slightly.
   */
  readonly profile?: string;
}

/** Outputs of one {@link OrtSession.run}. */
export interface SessionRun {
  readonly outputs: Map<string, HostTensor>;
  /** Time inside `session.run` in the worker (without the transfer between threads). */
  readonly sessionMs: number;
}

/** Options of {@link OrtSession.run}. */
export interface RunOptions {
  /**
   * Feeds that are lent to the worker rather than given: their buffers move there for the run and
   * come back with its reply, success or failure, through `onReturned` — before the promise
   * settles. No copy is made. Until then the caller's arrays are detached (length 0); if the worker
   * dies during the run they do not come back at all.
   */
  readonly lend?: readonly string[];
  /** Receives each lent feed as it comes back (a new array object over the same memory). */
  readonly onReturned?: (name: string, tensor: HostTensor) => void;
}

interface Pending {
  resolve(run: SessionRun): void;
  reject(error: Error): void;
  onReturned?: (name: string, tensor: HostTensor) => void;
}

const WORKER_URL = new URL('./worker/session-worker.js', import.meta.url);

/** Buffers of `tensors` that can be moved to the worker (each array owns its whole buffer). */
function movable(tensors: Iterable<HostTensor>): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const t of tensors) {
    const b = t.data.buffer;
    if (b instanceof ArrayBuffer && t.data.byteOffset === 0 && t.data.byteLength === b.byteLength) out.add(b);
  }
  return [...out];
}

/**
 * One onnxruntime-node `InferenceSession` in a worker thread. For a CUDA device the session is
 * created with `[{name: 'cuda', deviceId}, 'cpu']`; if that fails (no CUDA provider libraries,
 * no driver, bad device id) it is created on CPU and {@link fallbackReason} says why — or, with
 * `strict`, opening fails with a {@link DeviceError}. The worker keeps the process alive only
 * while runs are pending, so a forgotten session never hangs a process.
 */
export class OrtSession {
  readonly device: Device;
  /** Execution provider the session actually uses. */
  readonly provider: 'cpu' | 'cuda';
  /** onnxruntime's error when CUDA was requested but could not be used. */
  readonly fallbackReason: string | undefined;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  /** Milliseconds spent creating the session. */
  readonly createMs: number;

  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;
  private dead: Error | undefined;
  private releasing: Promise<void> | undefined;

  private constructor(worker: Worker, device: Device, ready: Extract<WorkerReply, { type: 'ready' }>) {
    this.worker = worker;
    this.device = device;
    this.provider = ready.provider;
    this.fallbackReason = ready.fallbackReason;
    this.inputs = ready.inputs;
    this.outputs = ready.outputs;
    this.createMs = ready.createMs;
    worker.on('message', (m: WorkerReply) => this.onMessage(m));
    worker.on('error', (e) => this.fail(new InferenceError(`the onnxruntime worker of ${device.name} crashed: ${e.message}`, { device: device.name, cause: e })));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(new InferenceError(`the onnxruntime worker of ${device.name} exited (code ${code})`, { device: device.name }));
    });
    worker.unref();
  }

  /** Opens a session on `device` from ModelProto bytes or an .onnx path. */
  static async open(model: Uint8Array | string, options: OpenSessionOptions): Promise<OrtSession> {
    let payload: Uint8Array | string = model;
    const transfer: ArrayBuffer[] = [];
    if (typeof model !== 'string') {
      const owned = model.byteOffset === 0 && model.byteLength === model.buffer.byteLength && model.buffer instanceof ArrayBuffer;
      payload = options.transferModel && owned ? model : model.slice();
      transfer.push((payload as Uint8Array).buffer as ArrayBuffer);
    }
    const { device } = options;
    const init: SessionInit = {
      model: payload,
      device: { kind: device.kind, id: device.id, name: device.name },
      intraOp: options.threads.intraOp,
      interOp: options.threads.interOp,
      graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
      logLevel: options.logLevel,
      cpuFallback: !options.strict,
      ...(options.profile ? { profilePrefix: options.profile } : {}),
    };
    const worker = new Worker(WORKER_URL, { workerData: init, transferList: transfer });
    let onMessage: (m: WorkerReply) => void = () => undefined;
    let onError: (e: Error) => void = () => undefined;
    let onExit: (code: number) => void = () => undefined;
    const reply = await new Promise<WorkerReply>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (code) => reject(new Error(`worker exited with code ${code} before the session was ready`));
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
    }).catch((e: Error) => ({ type: 'init-failed', error: { name: e.name, message: e.message }, cudaError: undefined }) as const);
    // Only our own listeners: the Worker uses listener hooks of its own to deliver messages.
    worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    if (reply.type === 'ready') return new OrtSession(worker, device, reply);
    await worker.terminate();
    if (reply.type === 'init-failed' && reply.cudaError !== undefined && options.strict) {
      throw new DeviceError(`${device.name}: onnxruntime cannot use CUDA (${reply.cudaError}) and strict mode forbids falling back to CPU`, {
        device: device.name,
        hint: 'install onnxruntime-node with its CUDA 12 providers (see the @rcnn/runtime README, "Enabling CUDA"), or drop --strict to run on CPU',
      });
    }
    const message = reply.type === 'init-failed' ? reply.error.message : `unexpected reply ${reply.type}`;
    throw new InferenceError(`cannot create an onnxruntime session on ${device.name}: ${message}`, {
      device: device.name,
      hint: typeof model === 'string' ? `check that ${model} is a valid ONNX model` : 'this is a bug in a graph stage; run with --verbose for onnxruntime logs',
    });
  }

  /** Why the worker is gone, when it crashed or exited (the session then refuses every run). */
  get failure(): Error | undefined {
    return this.dead;
  }

  /** Runs pending right now (queued in the worker or running). */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Runs the session on `feeds`; `fetches` limits the outputs. Feed buffers that own their memory
   * are moved, not copied (and lost to the caller, unless `options.lend` names them).
   */
  run(feeds: Readonly<Record<string, HostTensor>>, fetches?: readonly string[], options: RunOptions = {}): Promise<SessionRun> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.closed) return Promise.reject(new ShutdownError(`the session on ${this.device.name} is released`));
    const id = this.nextId++;
    const lend = options.lend?.filter((name) => feeds[name] !== undefined);
    const request: WorkerRequest = { type: 'run', id, feeds, ...(fetches ? { fetches } : {}), ...(lend?.length ? { lend } : {}) };
    return new Promise<SessionRun>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, ...(options.onReturned ? { onReturned: options.onReturned } : {}) });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage(request, movable(Object.values(feeds)));
    });
  }

  /** Waits for pending runs, releases the session and ends the worker. Idempotent. */
  release(): Promise<void> {
    this.releasing ??= this.doRelease();
    return this.releasing;
  }

  private async doRelease(): Promise<void> {
    this.closed = true;
    if (this.dead) return;
    this.worker.ref();
    const released = new Promise<void>((resolve) => {
      this.worker.once('exit', () => resolve());
    });
    this.worker.postMessage({ type: 'release' } satisfies WorkerRequest);
    // The worker answers after its queued runs (messages are handled in order); if it does not exit, end it.
    const timer = setTimeout(() => void this.worker.terminate(), 30_000);
    await released;
    clearTimeout(timer);
  }

  private onMessage(m: WorkerReply): void {
    if (m.type === 'result' || m.type === 'run-failed') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0 && !this.closed) this.worker.unref();
      if (m.returned && p.onReturned) for (const [name, t] of Object.entries(m.returned)) p.onReturned(name, t);
      if (m.type === 'result') p.resolve({ outputs: new Map(Object.entries(m.outputs)), sessionMs: m.sessionMs });
      else p.reject(new InferenceError(`onnxruntime failed on ${this.device.name}: ${m.error.message}`, { device: this.device.name }));
    }
  }

  private fail(error: Error): void {
    this.dead ??= error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }
}
