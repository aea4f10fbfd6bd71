/**
 * Load: many unique images through several CPU replicas of the toy model at once, some corrupt,
 * some failing inside post-processing (an injected host post-processor), from several concurrent
 * callers. Every request must get exactly its own result (compared with a sequential reference
 * run) or its own error, in order, none lost or duplicated, with no unhandled rejection. A second
 * scenario closes the detector with requests in flight: they finish or fail with ShutdownError.
 */
import assert from 'node:assert/strict';
import {
  type DependencyContainer,
  type HostPostprocessor,
  InputError,
  type RoiMaskHead,
  SLOTS,
  registerImplementation,
  resolveImplementation,
} from '@rcnn/core';
import { type Detector, type ImageInput, type ImageResult, type PredictOutcome, ShutdownError, createDetector, readMasks } from '@rcnn/runtime';
import { register as toy, toyConfig } from '@rcnn/runtime/toy';
import { withTimeout } from './common.js';
import { encode, pattern } from './craft/images.js';

/** Registry names of the fault-injecting mask head and its post-processor. */
export const FAULTY = { maskHead: 'Reliability.faulty_mask_head', paste: 'Reliability.faulty_paste' } as const;

/**
 * Registers the toy model plus a mask head whose host post-processor throws for images of the
 * given sizes (`${width}x${height}`): a post-processing bug that strikes some images only.
 */
export function registerFaultyToy(poisoned: ReadonlySet<string>): (c: DependencyContainer) => void {
  return (c) => {
    toy(c);
    const paste = resolveImplementation(c, SLOTS.hostPostprocessor, 'Toy.paste_masks').value;
    const head = resolveImplementation(c, SLOTS.roiMaskHead, 'Toy.mask_head').value;
    const faulty: HostPostprocessor = {
      apply(outputs, images, rows, config) {
        for (const im of images) {
          const [h, w] = im.originalSize;
          if (poisoned.has(`${w}x${h}`)) throw new Error(`injected post-processing failure for a ${w}x${h} image`);
        }
        paste.apply(outputs, images, rows, config);
      },
    };
    const faultyHead: RoiMaskHead = { ...head, hostPostprocessor: FAULTY.paste };
    registerImplementation(c, SLOTS.hostPostprocessor, { name: FAULTY.paste, provider: '@rcnn/reliability', description: 'toy paste that throws for poisoned sizes', value: faulty });
    registerImplementation(c, SLOTS.roiMaskHead, { name: FAULTY.maskHead, provider: '@rcnn/reliability', description: 'toy mask head with the faulty paste', value: faultyHead });
  };
}

/** Options of {@link runLoad}. */
export interface LoadOptions {
  /** Requests in all (default 300). */
  readonly requests?: number;
  /** CPU replicas (default 2). */
  readonly replicas?: number;
  /** Concurrent callers, each with its own `predict` call over its share of the requests (default 4). */
  readonly callers?: number;
  /** Images per forward pass (default 1; above 1 the content check against the reference is skipped, batching changes padding). */
  readonly batchSize?: number;
  /** Every n-th request is a truncated PNG (default 7). */
  readonly corruptEvery?: number;
  /** Every n-th request fails inside post-processing (default 11). */
  readonly poisonEvery?: number;
  /** Compare every result with a sequential single-replica run (default true). */
  readonly reference?: boolean;
}

/** What a load run measured and checked. */
export interface LoadReport {
  readonly requests: number;
  readonly replicas: number;
  readonly callers: number;
  readonly batchSize: number;
  readonly ok: number;
  /** Failures by kind: corrupt input, injected post-processing failure. */
  readonly corrupt: number;
  readonly poisoned: number;
  /** Results identical to the sequential reference (boxes, scores, labels, masks). */
  readonly matchedReference: number;
  readonly unhandledRejections: number;
  /** Requests handled per replica (`detector.loads()`, batches counted once per image when batch size is 1). */
  readonly perReplica: readonly number[];
  readonly wallMs: number;
  readonly imagesPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP95Ms: number;
}

interface Request {
  readonly index: number;
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly kind: 'good' | 'corrupt' | 'poisoned';
  readonly input: ImageInput;
  readonly pixels: Uint8Array;
}

/** A unique size per request index (3233 distinct sizes), so a result shows whose it is. */
export function requestSize(i: number): [number, number] {
  return [40 + (i % 61), 30 + (Math.floor(i / 61) % 53)];
}

async function makeRequests(n: number, corruptEvery: number, poisonEvery: number): Promise<Request[]> {
  assert.ok(n <= 61 * 53, `at most ${61 * 53} unique sizes`);
  const out: Request[] = [];
  for (let i = 0; i < n; i++) {
    const [width, height] = requestSize(i);
    const px = pattern(width, height, i + 1);
    const name = `req-${i}.png`;
    const kind = i % corruptEvery === corruptEvery - 1 ? 'corrupt' : i % poisonEvery === poisonEvery - 1 ? 'poisoned' : 'good';
    let png: Uint8Array = await encode(px, 'png');
    if (kind === 'corrupt') png = png.subarray(0, Math.floor(png.length / 2));
    out.push({ index: i, name, width, height, kind, input: { data: png, name }, pixels: px.data });
  }
  return out;
}

const percentile = (sorted: readonly number[], p: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);

/** Asserts two results carry the same detections and masks. */
function sameResult(a: ImageResult, b: ImageResult): boolean {
  const da = a.detections!;
  const db = b.detections!;
  const eq = (x: ArrayLike<number>, y: ArrayLike<number>): boolean => x.length === y.length && Array.prototype.every.call(x, (v: number, i: number) => Object.is(v, y[i]));
  if (!eq(da.boxes, db.boxes) || !eq(da.scores, db.scores) || !eq(da.labels, db.labels)) return false;
  const ma = readMasks(da);
  const mb = readMasks(db);
  return ma !== undefined && mb !== undefined && eq(ma.binaryTensor().data, mb.binaryTensor().data);
}

/**
 * Runs the load scenario and checks every outcome (throws an AssertionError naming the request at
 * fault). Installs an `unhandledRejection` listener for its duration and counts what it sees.
 */
export async function runLoad(options: LoadOptions = {}): Promise<LoadReport> {
  const n = options.requests ?? 300;
  const replicas = options.replicas ?? 2;
  const callers = options.callers ?? 4;
  const batchSize = options.batchSize ?? 1;
  const requests = await makeRequests(n, options.corruptEvery ?? 7, options.poisonEvery ?? 11);
  const poisoned = new Set(requests.filter((r) => r.kind === 'poisoned').map((r) => `${r.width}x${r.height}`));
  let unhandled = 0;
  const onUnhandled = (): void => {
    unhandled++;
  };
  process.on('unhandledRejection', onUnhandled);
  const quiet = { onWarning: () => undefined };
  const detector = await createDetector({
    config: toyConfig({ mask: true }),
    set: [`MRCNN.ROI_MASK_HEAD=${FAULTY.maskHead}`, `LIMITS.MAX_BATCH=${Math.max(32, batchSize)}`],
    register: [registerFaultyToy(poisoned)],
    devices: Array.from({ length: replicas }, () => 'cpu'),
    threads: { intraOp: 1 },
    batchSize,
    ...quiet,
  });
  const outcomes = new Map<string, { outcome: PredictOutcome; caller: number; position: number }>();
  const latencies: number[] = [];
  let wallMs: number;
  let loads: ReturnType<Detector['loads']>;
  try {
    const shares = Array.from({ length: callers }, (_, c) => requests.filter((r) => r.index % callers === c));
    const t0 = performance.now();
    await withTimeout(
      Promise.all(
        shares.map(async (share, c) => {
          let position = 0;
          for await (const o of detector.stream(share.map((r) => r.input))) {
            assert.ok(!outcomes.has(o.source), `${o.source} delivered twice`);
            outcomes.set(o.source, { outcome: o, caller: c, position: position++ });
            if (o.ok) latencies.push(o.result.timings.totalMs + o.result.timings.queueMs);
          }
        }),
      ),
      Math.max(120_000, n * 200),
      'the load run',
    );
    wallMs = performance.now() - t0;
    loads = detector.loads();
  } finally {
    await detector.close();
  }

  // Every request: exactly one outcome, in its caller's order, of the right kind, about itself.
  assert.equal(outcomes.size, n, `${n} requests, ${outcomes.size} distinct outcomes`);
  let ok = 0;
  let corrupt = 0;
  let poisonedCount = 0;
  for (const r of requests) {
    const got = outcomes.get(r.name);
    assert.ok(got, `${r.name} got no outcome (lost)`);
    const { outcome, caller, position } = got;
    assert.equal(caller, r.index % callers, `${r.name} was answered to another caller`);
    assert.equal(position, Math.floor(r.index / callers), `${r.name} out of order`);
    assert.equal(outcome.index, position, `${r.name}: outcome index`);
    if (r.kind === 'corrupt') {
      assert.ok(!outcome.ok && outcome.error instanceof InputError, `${r.name} (corrupt) must fail with an InputError`);
      assert.equal((outcome.error as InputError).source, r.name);
      corrupt++;
    } else if (r.kind === 'poisoned') {
      assert.ok(!outcome.ok, `${r.name} (poisoned) must fail`);
      assert.ok(outcome.error.message.includes(`${r.width}x${r.height}`), `${r.name} got someone else's error: ${outcome.error.message}`);
      poisonedCount++;
    } else {
      assert.ok(outcome.ok, `${r.name} failed: ${outcome.ok ? '' : outcome.error.message}`);
      assert.equal(outcome.result.source, r.name);
      assert.deepEqual([outcome.result.width, outcome.result.height], [r.width, r.height], `${r.name} got the result of another image`);
      ok++;
    }
  }

  // Content: each good result equals a sequential single-replica run of the same pixels.
  let matched = 0;
  if ((options.reference ?? true) && batchSize === 1) {
    const reference = await createDetector({ config: toyConfig({ mask: true }), register: [toy], threads: { intraOp: 1 }, ...quiet });
    try {
      for (const r of requests.filter((q) => q.kind === 'good')) {
        const expected = await reference.predictOne({ data: r.pixels, width: r.width, height: r.height, maxValue: 255 });
        const got = outcomes.get(r.name)!.outcome as Extract<PredictOutcome, { ok: true }>;
        assert.ok(sameResult(got.result, expected), `${r.name}: its detections differ from a sequential run of the same image`);
        matched++;
      }
    } finally {
      await reference.close();
    }
  }
  process.off('unhandledRejection', onUnhandled);
  latencies.sort((a, b) => a - b);
  return {
    requests: n,
    replicas,
    callers,
    batchSize,
    ok,
    corrupt,
    poisoned: poisonedCount,
    matchedReference: matched,
    unhandledRejections: unhandled,
    perReplica: loads.map((l) => l.completed + l.failed),
    wallMs,
    imagesPerSecond: (n * 1000) / wallMs,
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP95Ms: percentile(latencies, 0.95),
  };
}

/** What the shutdown scenario saw. */
export interface ShutdownReport {
  readonly requests: number;
  readonly finished: number;
  readonly shutDown: number;
  readonly closeMs: number;
  readonly unhandledRejections: number;
}

/**
 * Closes a 2-replica detector after `closeAfter` of `requests` outcomes have arrived, while the
 * rest are queued or running: every request still gets one outcome — a result, or a
 * ShutdownError — the stream ends, close() resolves, later calls are refused.
 */
export async function runShutdown(options: { requests?: number; closeAfter?: number; replicas?: number } = {}): Promise<ShutdownReport> {
  const n = options.requests ?? 120;
  const closeAfter = options.closeAfter ?? 15;
  let unhandled = 0;
  const onUnhandled = (): void => {
    unhandled++;
  };
  process.on('unhandledRejection', onUnhandled);
  const detector = await createDetector({
    config: toyConfig({ mask: true }),
    register: [toy],
    devices: Array.from({ length: options.replicas ?? 2 }, () => 'cpu'),
    threads: { intraOp: 1 },
    onWarning: () => undefined,
  });
  const inputs = await Promise.all(Array.from({ length: n }, async (_, i) => ({ data: await encode(pattern(...requestSize(i), i + 1), 'png'), name: `s-${i}.png` })));
  let closing: Promise<void> | undefined;
  let closeMs = 0;
  const seen: PredictOutcome[] = [];
  try {
    await withTimeout(
      (async () => {
        for await (const o of detector.stream(inputs)) {
          seen.push(o);
          if (seen.length === closeAfter) {
            const t0 = performance.now();
            closing = detector.close().then(() => {
              closeMs = performance.now() - t0;
            });
          }
        }
      })(),
      60_000,
      'the stream after close()',
    );
    await withTimeout(closing ?? Promise.resolve(), 30_000, 'close() with requests in flight');
  } finally {
    await detector.close();
    process.off('unhandledRejection', onUnhandled);
  }
  assert.equal(seen.length, n, 'every request got an outcome');
  assert.deepEqual(
    seen.map((o) => o.source),
    inputs.map((i) => i.name),
    'in order, none lost or duplicated',
  );
  let finished = 0;
  let shutDown = 0;
  for (const o of seen) {
    if (o.ok) {
      finished++;
      assert.deepEqual([o.result.width, o.result.height], requestSize(o.index));
    } else {
      assert.ok(o.error instanceof ShutdownError, `${o.source}: expected a result or a ShutdownError, got ${o.error.name}: ${o.error.message}`);
      shutDown++;
    }
  }
  assert.ok(finished >= closeAfter, 'the requests before close() finished');
  assert.ok(shutDown > 0, 'some requests were still queued and were refused');
  const after = await detector.predict([inputs[0]!]);
  assert.ok(!after[0]!.ok && after[0]!.error instanceof ShutdownError, 'a closed detector refuses new requests');
  assert.ok(detector.loads().every((l) => l.inFlight === 0), 'nothing left running');
  return { requests: n, finished, shutDown, closeMs, unhandledRejections: unhandled };
}
