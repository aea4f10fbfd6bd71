/**
 * A worker thread that owns one onnxruntime session. onnxruntime-node runs `session.run`
 * synchronously on the calling thread, so sessions of several replicas in one thread would take
 * turns; one worker per replica lets them run at the same time and keeps the main thread free
 * for decoding, preprocessing and post-processing.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { DataType, HostTensor } from '@rcnn/core';
import { releaseArrayBuffers } from '../internal/release-memory.js';
import type { SessionInit, ValueInfo, WorkerFailure, WorkerReply, WorkerRequest } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('session-worker.js must run in a worker thread');

const HOST_TYPES: Readonly<Record<string, DataType>> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int64: 'int64',
  int32: 'int32',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

const failure = (e: unknown): WorkerFailure => ({ name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) });

/** Buffers that can be moved instead of copied: only when the array owns its whole buffer. */
function transferables(tensors: Iterable<HostTensor>): ArrayBuffer[] {
  const seen = new Set<ArrayBufferLike>();
  const out: ArrayBuffer[] = [];
  for (const t of tensors) {
    const b = t.data.buffer;
    if (b instanceof ArrayBuffer && t.data.byteOffset === 0 && t.data.byteLength === b.byteLength && !seen.has(b)) {
      seen.add(b);
      out.push(b);
    }
  }
  return out;
}

function valueInfos(meta: readonly ort.InferenceSession.ValueMetadata[]): ValueInfo[] {
  return meta.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: undefined, shape: undefined }));
}

function sessionOptions(init: SessionInit, providers: ort.InferenceSession.ExecutionProviderConfig[]): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: providers,
    intraOpNumThreads: init.intraOp,
    interOpNumThreads: init.interOp,
    graphOptimizationLevel: init.graphOptimizationLevel,
    executionMode: 'sequential',
    // onnxruntime's memory pattern plans one block per input shape after the first run and
    // allocates it on top of the arena that run already grew: with the data-dependent shapes of a
    // detector (proposals, detections) that only adds memory — ~260 MB more peak RSS for an R-50-FPN
    // Mask R-CNN, ~440 MB for Keypoint R-CNN — at no speed gain (docs/performance.md).
    enableMemPattern: false,
    ...(init.profilePrefix ? { enableProfiling: true, profileFilePrefix: init.profilePrefix } : {}),
  };
}

async function open(init: SessionInit): Promise<void> {
  if (init.logLevel) ort.env.logLevel = init.logLevel;
  const started = performance.now();
  const create = (providers: ort.InferenceSession.ExecutionProviderConfig[]): Promise<ort.InferenceSession> =>
    typeof init.model === 'string' ? ort.InferenceSession.create(init.model, sessionOptions(init, providers)) : ort.InferenceSession.create(init.model, sessionOptions(init, providers));
  let session: ort.InferenceSession;
  let provider: 'cpu' | 'cuda' = 'cpu';
  let fallbackReason: string | undefined;
  try {
    if (init.device.kind === 'cuda') {
      try {
        // 'cpu' after 'cuda' only places the operators CUDA lacks; it does not rescue a CUDA provider that fails to load.
        session = await create([{ name: 'cuda', deviceId: init.device.id }, 'cpu']);
        provider = 'cuda';
      } catch (e) {
        fallbackReason = failure(e).message;
        if (!init.cpuFallback) {
          reply({ type: 'init-failed', error: failure(e), cudaError: fallbackReason });
          return;
        }
        session = await create(['cpu']);
      }
    } else {
      session = await create(['cpu']);
    }
  } catch (e) {
    reply({ type: 'init-failed', error: failure(e), cudaError: fallbackReason });
    return;
  }
  // onnxruntime has its own copy of everything now; free the model bytes at once rather than
  // whenever this thread's GC runs (workerData keeps them reachable): a model's worth of memory
  // (178 MB for an R-50-FPN Mask R-CNN) less while the first runs grow the activation arena.
  if (typeof init.model !== 'string') releaseArrayBuffers([init.model.buffer], 0);
  reply({
    type: 'ready',
    provider,
    fallbackReason,
    inputs: valueInfos(session.inputMetadata),
    outputs: valueInfos(session.outputMetadata),
    createMs: performance.now() - started,
  });
  serve(session, init.profilePrefix !== undefined);
}

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function serve(session: ort.InferenceSession, profiling: boolean): void {
  // One request at a time, in arrival order: session.run defers to setImmediate, so without the
  // chain a release could overtake the runs queued before it.
  let chain: Promise<void> = Promise.resolve();
  port!.on('message', (request: WorkerRequest) => {
    chain = chain.then(async () => {
      if (request.type === 'run') return run(session, request);
      // The profiler writes its JSON file only when it is ended.
      if (profiling) {
        try {
          session.endProfiling();
        } catch {
          // A profile that cannot be written must not keep the session from being released.
        }
      }
      await session.release().catch(() => undefined);
      reply({ type: 'released' });
      port!.close();
    });
  });
}

/** The lent feeds of `request`, to move back with the reply (whatever the run did). */
function lentFeeds(request: Extract<WorkerRequest, { type: 'run' }>): Record<string, HostTensor> | undefined {
  if (!request.lend?.length) return undefined;
  const out: Record<string, HostTensor> = {};
  for (const name of request.lend) {
    const t = request.feeds[name];
    if (t) out[name] = t;
  }
  return out;
}

async function run(session: ort.InferenceSession, request: Extract<WorkerRequest, { type: 'run' }>): Promise<void> {
  const returned = lentFeeds(request);
  const back = returned ? transferables(Object.values(returned)) : [];
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(request.feeds)) feeds[name] = new ort.Tensor(t.dtype, t.data as never, [...t.dims]);
    const started = performance.now();
    const out = request.fetches ? await session.run(feeds, [...request.fetches]) : await session.run(feeds);
    const sessionMs = performance.now() - started;
    const outputs: Record<string, HostTensor> = {};
    for (const [name, v] of Object.entries(out)) {
      const dtype = HOST_TYPES[v.type];
      if (!dtype) throw new Error(`output "${name}" has type ${v.type}, which rcnn-node does not read`);
      outputs[name] = { dtype, dims: [...v.dims], data: v.data as never } as HostTensor;
    }
    reply({ type: 'result', id: request.id, outputs, sessionMs, ...(returned ? { returned } : {}) }, [...transferables(Object.values(outputs)), ...back]);
  } catch (e) {
    reply({ type: 'run-failed', id: request.id, error: failure(e), ...(returned ? { returned } : {}) }, back);
  }
}

void open(workerData as SessionInit);
