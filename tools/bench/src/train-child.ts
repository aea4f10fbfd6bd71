/**
 * Child process that measures rcnn-node's TRAINING step on one perf case:
 * `node train-child.js '<json TrainTask>'`. One task per process, so peak RSS belongs to it alone.
 *
 * The step is what `rcnn train` runs per iteration (`detectorTrainingModel` of @rcnn/runtime/training):
 * the host training transform, the proposal pass (session 1), host sampling and targets, the
 * training graph (session 2: forward, losses, backward), then SGD with momentum on the host — the
 * counterpart of torchvision's `model(images, targets)`, `loss.backward()`, `opt.step()` in
 * tools/peer/bench_train_torchvision.py, with the same weights, photo, targets (train_targets.py),
 * trainable set, sampling sizes (torchvision's defaults are the TRAIN.* defaults), threads and
 * optimizer (SGD lr 0.02, momentum 0.9, weight decay 1e-4). As there, the parameters are restored to
 * the initial ones before every step (untimed), so every step does the same work.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ImageTargets, at, decodeEntry, readSafetensorsFile } from '@rcnn/core';
import { type OrtProfileEvent, type RunMemory, decodeImage, readOrtProfile, resolveDevices, resolveModelSources, runKernels, runMemory } from '@rcnn/runtime';
import { type DetectorSample, type DetectorTrainingModel, SgdMomentum, copyParameters, detectorTrainingModel } from '@rcnn/runtime/training';
import { register as registerBackbone } from '@rcnn/backbone';
import { register as registerBoxHead } from '@rcnn/box-head';
import { register as registerFpn } from '@rcnn/fpn';
import { register as registerKeypointHead } from '@rcnn/keypoint-head';
import { register as registerMaskHead } from '@rcnn/mask-head';
import { register as registerRpn } from '@rcnn/rpn';
import { peakRssMb, reportResult } from './child.js';
import { type FlopCount, countKernelFlops } from './flops.js';
import { medianOpTimes } from './profile-runs.js';

/** Config overrides of rcnn-node's side from RCNN_BENCH_SET (space-separated KEY=VALUE, e.g. TRAIN.PROPOSALS_IN_GRAPH=false). */
function benchSetOverrides(): string[] {
  return (process.env.RCNN_BENCH_SET ?? '').split(/\s+/).filter((s) => s.length > 0);
}

/** Which parameters train: torchvision's trainable_backbone_layers=3, or the whole conv body frozen. */
export type Trainability = 'tbl3' | 'frozen';

/** What a training child measures. */
export type TrainTask =
  | { readonly mode: 'steps'; readonly caseDir: string; readonly trainable: Trainability; readonly threads: number; readonly runs: number; readonly profile: boolean }
  | { readonly mode: 'flops'; readonly caseDir: string; readonly trainable: Trainability; readonly threads: number }
  | { readonly mode: 'throughput'; readonly caseDir: string; readonly trainable: Trainability; readonly replicas: number; readonly batch: number; readonly steps: number; readonly threads: number };

/** Kernel time of one session over the profiled steps. */
export interface SessionProfile {
  readonly ops: ReturnType<typeof medianOpTimes>['ops'];
  readonly kernelMs: number;
  /** Kernel time of backward nodes (`backward/grad/` scope). */
  readonly backwardMs: number;
  /** Backward kernels of frozen stages (must be none), by node name. */
  readonly frozenGradientKernels: readonly string[];
  /** Backward kernels of trainable backbone stages (for the report: they exist where they should). */
  readonly backboneGradientKernels: number;
  /** The last profiled run's peak memory in use (and where) and arena size, where the profile records them. */
  readonly memory?: RunMemory;
}

/** Result of a `steps` task. */
export interface TrainStepsResult {
  readonly trainableParameters: number;
  readonly parameters: number;
  readonly buildMs: number;
  readonly warmupMs: number;
  readonly stepsMs: readonly number[];
  /** Within each timed step: onnxruntime's runs (worker side, all sessions) and the SGD update, ms; the rest is host work. */
  readonly phasesMs?: { readonly session: readonly number[]; readonly update: readonly number[] };
  readonly losses: Readonly<Record<string, number>>;
  readonly peakRssMb: number;
  /** `proposals` only with the two-session chain (TRAIN.PROPOSALS_IN_GRAPH false or a plugin head without in-graph targets). */
  readonly profile?: { readonly proposals?: SessionProfile; readonly training: SessionProfile };
}

/** Result of a `flops` task. */
export interface TrainFlopsResult {
  /** Only with the two-session chain. */
  readonly proposals?: FlopCount;
  readonly training: FlopCount;
  /** Of the training graph: GFLOPs of the backward (`backward/grad/` nodes). */
  readonly backwardGflop: number;
}

/** Result of a `throughput` task. */
export interface TrainThroughputResult {
  readonly replicas: number;
  readonly batch: number;
  readonly images: number;
  readonly wallMs: number;
  readonly imagesPerSecond: number;
  readonly peakRssMb: number;
}

const REGISTER = [registerBackbone, registerFpn, registerRpn, registerBoxHead, registerMaskHead, registerKeypointHead];

/** The benchmark's optimizer: torchvision script's SGD(lr 0.02, momentum 0.9, weight_decay 1e-4), biases alike. */
const SOLVER_SET = ['SOLVER.BASE_LR=0.02', 'SOLVER.MOMENTUM=0.9', 'SOLVER.WEIGHT_DECAY=0.0001', 'SOLVER.BIAS_LR_FACTOR=1', 'SOLVER.WEIGHT_DECAY_BIAS=0.0001', 'SOLVER.WARM_UP_ITERS=0'];

/** The config overrides of a trainability rule. */
export function trainabilitySet(trainable: Trainability): string[] {
  return trainable === 'frozen' ? ['TRAIN.FREEZE_CONV_BODY=true'] : ['TRAIN.FREEZE_CONV_BODY=false', 'TRAIN.TRAINABLE_BACKBONE_LAYERS=3'];
}

/** Prefix of the backward nodes' names: `backward/grad/<forward node>/…`. */
export const BACKWARD_PREFIX = 'backward/grad/';

/** Conv-body stages (graph node names) a rule freezes: their parameters get no gradient, their nodes no backward. */
export function frozenStages(trainable: Trainability): readonly string[] {
  return trainable === 'frozen' ? ['conv_body.'] : ['conv_body.body.stem', 'conv_body.body.layer1.'];
}

interface Setup {
  readonly model: DetectorTrainingModel;
  readonly sample: DetectorSample;
  readonly solver: ConstructorParameters<typeof SgdMomentum>[0];
  readonly buildMs: number;
}

async function setup(caseDir: string, trainable: Trainability): Promise<Setup> {
  const t = performance.now();
  const sources = await resolveModelSources({
    config: join(caseDir, 'case.json'),
    weights: join(caseDir, 'weights.safetensors'),
    set: [...trainabilitySet(trainable), ...SOLVER_SET, ...benchSetOverrides()],
    register: REGISTER,
    onWarning: (m) => process.stderr.write(`${m}\n`),
  });
  const config = sources.resolved.config;
  const model = detectorTrainingModel({ config, container: sources.container, weights: sources.weights });
  const image = await decodeImage(join(caseDir, 'image_0.png'), { maxPixels: config.LIMITS.MAX_IMAGE_PIXELS, maxSide: config.LIMITS.MAX_IMAGE_SIDE });
  return { model, sample: { image, targets: readTargets(caseDir), source: 'image_0.png' }, solver: config.SOLVER, buildMs: performance.now() - t };
}

/** The targets train_targets.py wrote (those of bench_train_torchvision.py). */
export function readTargets(caseDir: string): ImageTargets {
  const path = join(caseDir, 'train_targets.safetensors');
  const file = readSafetensorsFile(path);
  const get = (name: string) => {
    const e = file.entries.get(name);
    return e ? decodeEntry(e, path) : undefined;
  };
  const boxes = get('target.boxes.0');
  const labels = get('target.labels.0');
  if (!boxes || !labels) throw new Error(`${path}: no target.boxes.0 / target.labels.0 (run tools/peer/train_targets.py)`);
  const masks = get('target.masks.0');
  const keypoints = get('target.keypoints.0');
  return {
    boxes: boxes.data as Float32Array,
    labels: Int32Array.from(labels.data as BigInt64Array, (v) => Number(v)),
    ...(masks ? { masks: masks.data as Uint8Array } : {}),
    ...(keypoints ? { keypoints: keypoints.data as Float32Array } : {}),
  };
}

const cpu = () => at(resolveDevices('cpu').devices, 0, "resolveDevices('cpu')");

/** The profile file a replica's session `session` wrote into `dir` (`train-<session>_<timestamp>.json`), if it has one. */
function profileFile(dir: string, session: string): string | undefined {
  return readdirSync(dir).find((f) => f.startsWith(`train-${session}`) && f.endsWith('.json'));
}

/** Backward kernels among node `names` that belong to a frozen stage, and how many belong to the backbone at all. */
export function gradientKernels(names: readonly string[], frozen: readonly string[]): { frozen: string[]; backbone: number } {
  const grads = names.filter((n) => n.startsWith(BACKWARD_PREFIX)).map((n) => n.slice(BACKWARD_PREFIX.length));
  return { frozen: grads.filter((n) => frozen.some((f) => n.startsWith(f))), backbone: grads.filter((n) => n.startsWith('conv_body.')).length };
}

function sessionProfile(events: readonly OrtProfileEvent[], runs: number, frozen: readonly string[]): SessionProfile {
  const times = medianOpTimes(events, runs);
  const kernels = runKernels(events, -1);
  const backwardMs = kernels.filter((k) => k.node.startsWith(BACKWARD_PREFIX)).reduce((a, k) => a + k.selfMs, 0);
  const g = gradientKernels([...new Set(kernels.map((k) => k.node))], frozen);
  const memory = runMemory(kernels);
  return { ops: times.ops, kernelMs: times.kernelMs, backwardMs, frozenGradientKernels: g.frozen, backboneGradientKernels: g.backbone, ...(memory ? { memory } : {}) };
}

/**
 * With `RCNN_BENCH_MEMORY=1`: the process's memory at a phase of the step on stderr (RSS and peak,
 * V8 heap, array buffers), to tell host copies (array buffers) from onnxruntime's own memory (the rest of RSS).
 */
function memoryPhase(phase: string): void {
  if (!process.env.RCNN_BENCH_MEMORY) return;
  const m = process.memoryUsage();
  const mb = (b: number) => `${Math.round(b / 1048576)}`;
  process.stderr.write(`memory ${phase}: rss ${mb(m.rss)} MB, peak ${Math.round(peakRssMb())} MB, heap ${mb(m.heapUsed)} MB, array buffers ${mb(m.arrayBuffers)} MB\n`);
}

async function steps(task: Extract<TrainTask, { mode: 'steps' }>): Promise<TrainStepsResult> {
  memoryPhase('start');
  const s = await setup(task.caseDir, task.trainable);
  memoryPhase('graphs built');
  const dir = task.profile ? mkdtempSync(join(tmpdir(), 'rcnn-train-profile-')) : undefined;
  try {
    const replica = await s.model.openReplica({ device: cpu(), threads: { intraOp: task.threads, interOp: 1 }, ...(dir ? { profile: join(dir, 'train') } : {}) });
    s.model.releaseGraphs?.();
    memoryPhase('sessions open');
    const parameters = new Map([...s.model.initial].map(([k, v]) => [k, v.slice()]));
    const sgd = new SgdMomentum(s.solver);
    let losses: Record<string, number> = {};
    const phases = { session: [] as number[], update: [] as number[] };
    const stepOnce = async (iteration: number): Promise<number> => {
      for (const [k, v] of s.model.initial) parameters.get(k)!.set(v); // same weights every step (untimed)
      const t = performance.now();
      const r = await replica.step([s.sample], parameters, { iteration, replica: 0, replicas: 1, seed: 7 });
      memoryPhase(`step ${iteration}`);
      const u = performance.now();
      await sgd.stepAsync(parameters, r.gradients, iteration);
      const end = performance.now();
      memoryPhase(`step ${iteration} + SGD`);
      losses = { ...r.losses };
      if (iteration > 0 && r.sessionMs !== undefined) {
        phases.session.push(r.sessionMs);
        phases.update.push(end - u);
      }
      return end - t;
    };
    let result: TrainStepsResult;
    try {
      const warmupMs = await stepOnce(0);
      const stepsMs: number[] = [];
      for (let i = 0; i < task.runs; i++) stepsMs.push(await stepOnce(i + 1));
      result = {
        trainableParameters: [...s.model.initial.values()].reduce((a, v) => a + v.length, 0),
        parameters: s.model.parameters.length,
        buildMs: s.buildMs,
        warmupMs,
        stepsMs,
        ...(phases.session.length === stepsMs.length ? { phasesMs: phases } : {}),
        losses,
        peakRssMb: peakRssMb(),
      };
    } finally {
      await Promise.all([replica.release(), sgd.close()]);
    }
    if (!dir) return result;
    const frozen = frozenStages(task.trainable);
    const read = async (session: string): Promise<SessionProfile> => {
      const file = profileFile(dir, session);
      if (!file) throw new Error(`no profile of the ${session} session`);
      return sessionProfile(await readOrtProfile(join(dir, file)), task.runs, frozen);
    };
    // The proposal session exists only with the two-session chain.
    const proposals = profileFile(dir, 'proposals') ? await read('proposals') : undefined;
    return { ...result, profile: { ...(proposals ? { proposals } : {}), training: await read('training') } };
  } finally {
    if (dir && !process.env.RCNN_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
    else if (dir) process.stderr.write(`profiles kept in ${dir}\n`);
  }
}

/** FLOPs of one step at the case's shapes: both graphs unoptimised (node names are the graph's), one profiled step. */
async function flops(task: Extract<TrainTask, { mode: 'flops' }>): Promise<TrainFlopsResult> {
  const s = await setup(task.caseDir, task.trainable);
  const dir = mkdtempSync(join(tmpdir(), 'rcnn-train-flops-'));
  try {
    const replica = await s.model.openReplica({ device: cpu(), threads: { intraOp: task.threads, interOp: 1 }, profile: join(dir, 'train'), graphOptimizationLevel: 'disabled' });
    try {
      await replica.step([s.sample], copyParameters(s.model.initial), { iteration: 0, replica: 0, replicas: 1, seed: 7 });
    } finally {
      await replica.release();
    }
    const count = async (session: string) => {
      const file = profileFile(dir, session);
      if (!file) throw new Error(`no profile of the ${session} session`);
      return runKernels(await readOrtProfile(join(dir, file)), -1);
    };
    const proposals = profileFile(dir, 'proposals') ? countKernelFlops(await count('proposals')) : undefined;
    const trainingKernels = await count('training');
    const training = countKernelFlops(trainingKernels);
    const backward = countKernelFlops(trainingKernels.filter((k) => k.node.startsWith(BACKWARD_PREFIX)));
    return { ...(proposals ? { proposals } : {}), training, backwardGflop: backward.total / 1e9 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Data-parallel throughput: `replicas` CPU replicas (threads split between them) each stepping its
 * share of a batch of `replicas * batch` copies of the photo, gradients averaged on the host as the
 * engine does, then one SGD update; images per second over `steps` steps after one warm-up step.
 */
async function throughput(task: Extract<TrainTask, { mode: 'throughput' }>): Promise<TrainThroughputResult> {
  const s = await setup(task.caseDir, task.trainable);
  const threads = Math.max(1, Math.floor(task.threads / task.replicas));
  const replicas = await Promise.all(Array.from({ length: task.replicas }, () => s.model.openReplica({ device: cpu(), threads: { intraOp: threads, interOp: 1 } })));
  const parameters = new Map([...s.model.initial].map(([k, v]) => [k, v.slice()]));
  const sgd = new SgdMomentum(s.solver);
  const batch = Array.from({ length: task.batch }, () => s.sample);
  const stepOnce = async (iteration: number): Promise<void> => {
    for (const [k, v] of s.model.initial) parameters.get(k)!.set(v);
    // As the engine does: the first replica may lend the parameters' own buffers, the others get copies made before any step starts.
    const own = replicas.map((_, i) => (i === 0 ? parameters : copyParameters(parameters)));
    const results = await Promise.all(replicas.map((r, i) => r.step(batch, own[i]!, { iteration, replica: i, replicas: replicas.length, seed: 7 + i })));
    const gradients = new Map<string, Float32Array>();
    for (const [name, g] of results[0]!.gradients) {
      const sum = g; // the step's own array (StepResult.gradients)
      for (const r of results.slice(1)) {
        const o = r.gradients.get(name)!;
        for (let i = 0; i < sum.length; i++) sum[i]! += o[i]!;
      }
      if (results.length > 1) for (let i = 0; i < sum.length; i++) sum[i]! /= results.length;
      gradients.set(name, sum);
    }
    await sgd.stepAsync(parameters, gradients, iteration);
  };
  try {
    await stepOnce(0);
    const t = performance.now();
    for (let i = 0; i < task.steps; i++) await stepOnce(i + 1);
    const wallMs = performance.now() - t;
    const images = task.steps * task.replicas * task.batch;
    return { replicas: task.replicas, batch: task.batch, images, wallMs, imagesPerSecond: images / (wallMs / 1000), peakRssMb: peakRssMb() };
  } finally {
    await Promise.all([...replicas.map((r) => r.release()), sgd.close()]);
  }
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '{}') as TrainTask;
  switch (task.mode) {
    case 'steps':
      return reportResult(await steps(task));
    case 'flops':
      return reportResult(await flops(task));
    case 'throughput':
      return reportResult(await throughput(task));
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
