/**
 * Child process that measures rcnn-node on one perf case: `node rcnn-child.js '<json RcnnTask>'`.
 * One task per process, so RSS, cold start and caches belong to that measurement only.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder, type HostTensor, SLOTS, buildModel, loadConfig, ops, resolveImplementation } from '@rcnn/core';
import {
  type Detector,
  type DetectorOptions,
  type NodePlacement,
  createDetector,
  decodeImage,
  describePlacement,
  dumpTensors,
  nodePlacement,
  readOrtProfile,
  resolveModelSources,
  runKernels,
} from '@rcnn/runtime';
import { compareDetections, compareKeypoints, compareMasks, loadParityCase } from '@rcnn/testing';
import { register as registerBackbone } from '@rcnn/backbone';
import { register as registerBoxHead } from '@rcnn/box-head';
import { register as registerFpn } from '@rcnn/fpn';
import { register as registerKeypointHead } from '@rcnn/keypoint-head';
import { register as registerMaskHead } from '@rcnn/mask-head';
import { register as registerRpn } from '@rcnn/rpn';
import ort from 'onnxruntime-node';
import { peakRssMb, reportResult } from './child.js';
import { type FlopCount, countFlops } from './flops.js';
import { median } from './stats.js';
import { medianOpTimes } from './profile-runs.js';

/** What a child measures. */
export type RcnnTask =
  | { readonly mode: 'steady'; readonly caseDir: string; readonly threads: number; readonly runs: number }
  | { readonly mode: 'profile'; readonly caseDir: string; readonly threads: number; readonly runs: number }
  | { readonly mode: 'throughput'; readonly caseDir: string; readonly batch: number; readonly replicas: number; readonly images: number; readonly threads?: number }
  | { readonly mode: 'conv'; readonly threads: number; readonly channels: number; readonly height: number; readonly width: number; readonly runs: number }
  | { readonly mode: 'placement'; readonly caseDir: string; readonly device: string; readonly precision: 'float32' | 'float16' };

/** One image's pipeline, ms. */
export interface PipelineRun {
  /** predictOne from the file path to the result, on the main thread. */
  readonly totalMs: number;
  readonly decodeMs: number;
  readonly preprocessMs: number;
  readonly sessionMs: number;
  /** Moving tensors between the main thread and the session's worker. */
  readonly transferMs: number;
  readonly postprocessMs: number;
}

/** Result of a `steady` task. */
export interface SteadyResult {
  /** Process start → this module running (Node start-up and module loading), ms. */
  readonly startupMs: number;
  /** createDetector: weights, graph build, serialisation and the onnxruntime session, ms. */
  readonly createMs: number;
  /** onnxruntime's InferenceSession.create inside the worker, ms. */
  readonly sessionCreateMs: number;
  readonly firstMs: number;
  /** Process start → first result, ms. */
  readonly firstResultAtMs: number;
  readonly runs: readonly PipelineRun[];
  readonly detections: number;
  readonly peakRssMb: number;
}

/** Result of a `profile` task. */
export interface ProfileResult {
  readonly ops: ReturnType<typeof medianOpTimes>['ops'];
  readonly kernelMs: number;
  readonly runMs: number;
  readonly flops: FlopCount;
  /** Parity of the det.* outputs against the case's reference (the harness's rules). */
  readonly check: readonly { readonly name: string; readonly pass: boolean; readonly detail: string }[];
}

/** Result of a `throughput` task. */
export interface ThroughputResult {
  readonly batch: number;
  readonly replicas: number;
  readonly images: number;
  readonly wallMs: number;
  readonly imagesPerSecond: number;
  readonly peakRssMb: number;
}

/** Result of a `placement` task. */
export interface PlacementResult {
  readonly device: string;
  /** The execution provider the session got, and onnxruntime's reason when it is not the one asked for. */
  readonly provider: string;
  readonly fallbackReason: string | undefined;
  readonly placement: NodePlacement;
  readonly text: string;
}

/** Result of a `conv` task. */
export interface ConvProbeResult {
  readonly gflop: number;
  readonly runsMs: readonly number[];
  readonly gflopPerSecond: number;
}

const REGISTER = [registerBackbone, registerFpn, registerRpn, registerBoxHead, registerMaskHead, registerKeypointHead];

const caseOptions = (caseDir: string): DetectorOptions => ({
  config: join(caseDir, 'case.json'),
  weights: join(caseDir, 'weights.safetensors'),
  register: REGISTER,
  onWarning: (m) => process.stderr.write(`${m}\n`),
});

const imageOf = (caseDir: string): string => join(caseDir, 'image_0.png');

function pipelineRun(totalMs: number, r: Awaited<ReturnType<Detector['predictOne']>>): PipelineRun {
  const t = r.timings;
  return { totalMs, decodeMs: t.decodeMs, preprocessMs: t.preprocessMs, sessionMs: t.sessionMs, transferMs: Math.max(0, t.runMs - t.sessionMs), postprocessMs: t.postprocessMs };
}

async function steady(task: Extract<RcnnTask, { mode: 'steady' }>, startupMs: number): Promise<SteadyResult> {
  let t = performance.now();
  const detector = await createDetector({ ...caseOptions(task.caseDir), threads: { intraOp: task.threads, interOp: 1 } });
  const createMs = performance.now() - t;
  try {
    t = performance.now();
    const first = await detector.predictOne(imageOf(task.caseDir));
    const firstResultAtMs = performance.now();
    const firstMs = firstResultAtMs - t;
    const runs: PipelineRun[] = [];
    for (let i = 0; i < task.runs; i++) {
      t = performance.now();
      const r = await detector.predictOne(imageOf(task.caseDir));
      runs.push(pipelineRun(performance.now() - t, r));
    }
    return {
      startupMs,
      createMs,
      sessionCreateMs: detector.replicas[0]!.sessionCreateMs,
      firstMs,
      firstResultAtMs,
      runs,
      detections: first.detections?.scores.length ?? 0,
      peakRssMb: peakRssMb(),
    };
  } finally {
    await detector.close();
  }
}

/** FLOPs of the case's model at the case image's shapes: the unoptimised graph, profiled once. */
async function flopsOf(caseDir: string, threads: number): Promise<FlopCount> {
  const sources = await resolveModelSources(caseOptions(caseDir));
  const built = buildModel(sources.resolved.config, sources.container, sources.weights);
  const transform = resolveImplementation(sources.container, SLOTS.imageTransform, sources.resolved.config.INPUT.TRANSFORM);
  const image = await decodeImage(imageOf(caseDir), { maxPixels: sources.resolved.config.LIMITS.MAX_IMAGE_PIXELS, maxSide: sources.resolved.config.LIMITS.MAX_IMAGE_SIDE });
  const batch = transform.value.prepare([image], sources.resolved.config);
  const dir = mkdtempSync(join(tmpdir(), 'rcnn-flops-'));
  try {
    const session = await ort.InferenceSession.create(built.toBytes(), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'disabled',
      enableProfiling: true,
      profileFilePrefix: join(dir, 'flops'),
    });
    const tensor = (t: { dtype: string; dims: readonly number[]; data: unknown }): ort.Tensor => new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, [...t.dims]);
    await session.run({ images: tensor(batch.images), image_sizes: tensor(batch.imageSizes), original_sizes: tensor(batch.originalSizes) });
    session.endProfiling();
    await session.release();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('onnxruntime wrote no profile');
    return countFlops(built.graph, runKernels(await readOrtProfile(join(dir, file)), -1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The case's det.* reference tensors of image 0 against rcnn-node's, with the parity harness's
 * rules: detections matched one to one (boxes ≤ 1e-2 px, scores ≤ 1e-4, labels equal), binary
 * masks IoU ≥ 0.99, ≥ 99% of keypoints within 1 px.
 */
export function checkDetections(caseDir: string, produced: ReadonlyMap<string, HostTensor>): ProfileResult['check'] {
  const ref = loadParityCase(caseDir);
  const got = (n: string): HostTensor => {
    const t = produced.get(n);
    if (!t) throw new Error(`rcnn-node produced no ${n}`);
    return t;
  };
  const out: { name: string; pass: boolean; detail: string }[] = [];
  const dets = compareDetections('det.boxes.0 (+scores, labels)', { boxes: got('det.boxes.0'), scores: got('det.scores.0'), labels: got('det.labels.0') }, { boxes: ref.reference('det.boxes.0'), scores: ref.reference('det.scores.0'), labels: ref.reference('det.labels.0') });
  out.push(dets);
  const matching = dets.matching.includes(-1) ? undefined : dets.matching;
  if (ref.hasReference('det.masks.0')) out.push(compareMasks('det.masks.0', got('det.masks.0'), ref.reference('det.masks.0'), 0.99, matching));
  if (ref.hasReference('det.keypoints.0')) {
    out.push(compareKeypoints('det.keypoints.0 (+scores)', { keypoints: got('det.keypoints.0'), scores: got('det.keypoints_scores.0') }, { keypoints: ref.reference('det.keypoints.0'), scores: ref.reference('det.keypoints_scores.0') }, 1, 0.99, 1e-3, matching));
  }
  return out.map((v) => ({ name: v.name, pass: v.pass, detail: v.detail }));
}

async function profile(task: Extract<RcnnTask, { mode: 'profile' }>): Promise<ProfileResult> {
  const dir = mkdtempSync(join(tmpdir(), 'rcnn-profile-'));
  try {
    const detector = await createDetector({ ...caseOptions(task.caseDir), threads: { intraOp: task.threads, interOp: 1 }, profile: join(dir, 'rcnn') });
    let check: ProfileResult['check'];
    try {
      // Run 1 (warm-up) keeps its outputs for the parity check; the next `runs` are the profiled ones.
      const first = await detector.predict([imageOf(task.caseDir)], { keepOutputs: true });
      if (!first[0]!.ok) throw first[0]!.error;
      const produced = dumpTensors([first[0]!.result], loadConfig({ layers: [join(task.caseDir, 'case.json')] }));
      check = checkDetections(task.caseDir, produced);
      for (let i = 0; i < task.runs; i++) await detector.predictOne(imageOf(task.caseDir));
    } finally {
      await detector.close();
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('the detector wrote no profile');
    const times = medianOpTimes(await readOrtProfile(join(dir, file)), task.runs);
    const flops = await flopsOf(task.caseDir, task.threads);
    return { ...times, flops, check };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function throughput(task: Extract<RcnnTask, { mode: 'throughput' }>): Promise<ThroughputResult> {
  const detector = await createDetector({
    ...caseOptions(task.caseDir),
    devices: Array.from({ length: task.replicas }, () => 'cpu'),
    batchSize: task.batch,
    ...(task.threads ? { threads: { intraOp: task.threads, interOp: 1 } } : {}),
  });
  try {
    const image = imageOf(task.caseDir);
    // Warm-up: one batch per replica, at once, so every session has run before timing.
    const warm = await detector.predict(Array.from({ length: task.batch * task.replicas }, () => image));
    for (const o of warm) if (!o.ok) throw o.error;
    const started = performance.now();
    const outcomes = await detector.predict(Array.from({ length: task.images }, () => image));
    const wallMs = performance.now() - started;
    for (const o of outcomes) if (!o.ok) throw o.error;
    return { batch: task.batch, replicas: task.replicas, images: task.images, wallMs, imagesPerSecond: task.images / (wallMs / 1000), peakRssMb: peakRssMb() };
  } finally {
    await detector.close();
  }
}

/**
 * Where each node of the model runs on `device` (e.g. `cuda:0`): one profiled run, then the
 * profile's provider per node. Without a usable CUDA provider the detector falls back to CPU and
 * the result says why.
 */
async function placement(task: Extract<RcnnTask, { mode: 'placement' }>): Promise<PlacementResult> {
  const dir = mkdtempSync(join(tmpdir(), 'rcnn-placement-'));
  try {
    const detector = await createDetector({ ...caseOptions(task.caseDir), devices: task.device, profile: join(dir, 'placement'), precision: task.precision });
    const replica = detector.replicas[0]!;
    try {
      await detector.predictOne(imageOf(task.caseDir));
    } finally {
      await detector.close();
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('the detector wrote no profile');
    const p = nodePlacement(runKernels(await readOrtProfile(join(dir, file)), -1));
    return { device: task.device, provider: replica.provider, fallbackReason: replica.fallbackReason, placement: p, text: describePlacement(p) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One large 3x3 conv (C→C, stride 1, pad 1) on [1, C, H, W]: the kernel's attainable GFLOP/s on this machine. */
export function convProbeModel(channels: number, height: number, width: number): { bytes: Uint8Array; gflop: number } {
  const g = new GraphBuilder({ name: 'conv_probe' });
  const x = g.input('x', 'float32', [1, channels, height, width]);
  const w = Float32Array.from({ length: channels * channels * 9 }, (_, i) => Math.sin(i * 0.37) * 0.05);
  const b = new Float32Array(channels);
  const y = ops.conv(g, x, g.initializer('w', { dtype: 'float32', dims: [channels, channels, 3, 3], data: w }), g.initializer('b', { dtype: 'float32', dims: [channels], data: b }), { kernel: 3, pad: 1 });
  g.output(y, 'y', 'float32');
  return { bytes: g.toModelProto(), gflop: (2 * channels * channels * 9 * height * width) / 1e9 };
}

async function convProbe(task: Extract<RcnnTask, { mode: 'conv' }>): Promise<ConvProbeResult> {
  const { bytes, gflop } = convProbeModel(task.channels, task.height, task.width);
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: task.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' });
  const x = new ort.Tensor('float32', Float32Array.from({ length: task.channels * task.height * task.width }, (_, i) => Math.cos(i * 0.01)), [1, task.channels, task.height, task.width]);
  await session.run({ x });
  const runsMs: number[] = [];
  for (let i = 0; i < task.runs; i++) {
    const t = performance.now();
    await session.run({ x });
    runsMs.push(performance.now() - t);
  }
  await session.release();
  return { gflop, runsMs, gflopPerSecond: gflop / (median(runsMs) / 1000) };
}

async function main(): Promise<void> {
  const startupMs = performance.now();
  const task = JSON.parse(process.argv[2] ?? '{}') as RcnnTask;
  switch (task.mode) {
    case 'steady':
      return reportResult(await steady(task, startupMs));
    case 'profile':
      return reportResult(await profile(task));
    case 'throughput':
      return reportResult(await throughput(task));
    case 'conv':
      return reportResult(await convProbe(task));
    case 'placement':
      return reportResult(await placement(task));
    default:
      throw new Error(`unknown task ${process.argv[2]}`);
  }
}

// Run only as a child process (the tests import the module for its helpers).
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
