/**
 * One training step on the host and in onnxruntime (docs/training.md): the train-mode transform,
 * target validation and resizing, the detached proposals (the inference graph's RPN with the
 * TRAIN top-n, or injected), every head's host targets and sampling (seeded or injected), and the
 * training graph's forward (losses). Two sessions: proposals carry no gradient in torchvision,
 * so computing them in a first pass changes no loss and no gradient.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type BalancedSample,
  type BuiltTrainingModel,
  type DependencyContainer,
  type HostTensor,
  type ImageTargets,
  InputError,
  MODEL_INPUTS,
  PROPOSAL_OUTPUTS,
  type RcnnConfig,
  type ResizedTargets,
  type RoiReplay,
  type PreparedBatch,
  type RgbImage,
  SLOTS,
  TargetError,
  type WeightStore,
  buildModel,
  buildTrainingModel,
  decodeEntry,
  flipTargets,
  groundTruthFeeds,
  hostTensor,
  readSafetensorsFile,
  resizeTargets,
  resolveImplementation,
  seededRandom,
  trainingProposalConfig,
  validateTargets,
} from '@rcnn/core';
import ort from 'onnxruntime-node';
import { decodeImage } from './image-io.js';

/** Recorded values that replace what the step would draw or compute (parity runs). */
export interface InjectedTraining {
  /** Per image: the RPN's sampled anchors. */
  readonly rpnSamples?: readonly BalancedSample[];
  /** Per image: the RoI sample (indices into proposals + appended GT). */
  readonly roiSamples?: readonly BalancedSample[];
  /** Per image: the detached proposals [P*4] (resized-image pixels, score order). */
  readonly proposals?: readonly Float32Array[];
}

/** Input of {@link trainStep}. */
export interface TrainStepInput {
  readonly images: readonly RgbImage[];
  readonly targets: readonly ImageTargets[];
  readonly injected?: InjectedTraining;
}

/** Options of {@link trainStep}. */
export interface TrainStepOptions {
  /** Also return the fixture-named intermediates (`train.*`, `transform.image_sizes`). */
  readonly intermediates?: boolean;
  /** onnxruntime intra-op threads (default 1: deterministic). */
  readonly threads?: number;
}

/** What {@link trainStep} returns. */
export interface TrainStepResult {
  /** `loss.<name>` and `loss.total`, in torchvision's loss-dict order. */
  readonly losses: ReadonlyMap<string, number>;
  /** Every tensor of the step by fixture name: losses, gradients (`grad.<key>`), and with `intermediates` the `train.*` tensors. */
  readonly tensors: ReadonlyMap<string, HostTensor>;
  /** The training graph that ran. */
  readonly model: BuiltTrainingModel;
}

const ORT_TYPES = { float32: 'float32', int64: 'int64', int32: 'int32', uint8: 'uint8', bool: 'bool', float64: 'float64' } as const;

async function runGraph(bytes: Uint8Array, feeds: Readonly<Record<string, HostTensor>>, threads: number): Promise<Map<string, HostTensor>> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) {
      const type = ORT_TYPES[v.dtype as keyof typeof ORT_TYPES];
      if (!type) throw new InputError(`feed ${k} has unsupported dtype ${v.dtype}`);
      ortFeeds[k] = new ort.Tensor(type, v.data as never, [...v.dims]);
    }
    const out = await session.run(ortFeeds);
    const result = new Map<string, HostTensor>();
    for (const [k, v] of Object.entries(out)) result.set(k, { dtype: v.type, dims: [...v.dims], data: v.data } as HostTensor);
    return result;
  } finally {
    await session.release();
  }
}

/** Mirrors an interleaved RGB image left-right. */
function flipImage(image: RgbImage): RgbImage {
  const { width: w, height: h } = image;
  const data = new (image.data.constructor as Uint8ArrayConstructor | Float32ArrayConstructor)(image.data.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = image.data[(y * w + (w - 1 - x)) * 3 + c]!;
  return { data, width: w, height: h, maxValue: image.maxValue };
}

/** The config of the training transform: TEST.SCALE / MAX_SIZE replaced by the drawn TRAIN.SCALES choice and TRAIN.MAX_SIZE. */
function trainingTransformConfig(config: RcnnConfig, scale: number): RcnnConfig {
  return { ...config, TEST: { ...config.TEST, SCALE: scale, MAX_SIZE: config.TRAIN.MAX_SIZE || config.TEST.MAX_SIZE } };
}

/** The config of the proposal pass of a training step: the model RPN-only, with the training pre/post-NMS top-n (core's `trainingProposalConfig`). */
export const proposalConfig: (config: RcnnConfig) => RcnnConfig = trainingProposalConfig;

/** A batch after the training transform ({@link prepareTrainingBatch}). */
export interface PreparedTrainingBatch {
  /** The config with TEST.SCALE / MAX_SIZE set to the drawn training size. */
  readonly config: RcnnConfig;
  readonly prepared: PreparedBatch;
  /** Each image's targets, flipped with it and resized to its network size. */
  readonly targets: ResizedTargets[];
}

/**
 * The training transform of a batch: one TRAIN.SCALES choice for the batch, a horizontal flip per
 * image with TRAIN.USE_FLIPPED (targets flipped with KRCNN.FLIP_MAP), target validation, the
 * registered image transform, and the targets resized to the network input. Draws from `rand`.
 */
export function prepareTrainingBatch(config: RcnnConfig, container: DependencyContainer, inputImages: readonly RgbImage[], inputTargets: readonly ImageTargets[], rand: () => number): PreparedTrainingBatch {
  const scales = config.TRAIN.SCALES.length > 0 ? config.TRAIN.SCALES : [config.TEST.SCALE];
  const scale = scales[Math.min(Math.floor(rand() * scales.length), scales.length - 1)]!;
  const cfg = trainingTransformConfig(config, scale);
  const images: RgbImage[] = [];
  const targets: ImageTargets[] = [];
  inputImages.forEach((image, i) => {
    validateTargets(inputTargets[i]!, [image.height, image.width], cfg, i);
    const flip = cfg.TRAIN.USE_FLIPPED && rand() < 0.5;
    images.push(flip ? flipImage(image) : image);
    targets.push(flip ? flipTargets(inputTargets[i]!, [image.height, image.width], cfg) : inputTargets[i]!);
  });
  const transform = resolveImplementation(container, SLOTS.imageTransform, cfg.INPUT.TRANSFORM);
  const prepared = transform.value.prepare(images, cfg);
  const sizes = prepared.imageSizes.data as BigInt64Array;
  const resized = targets.map((t, i) => resizeTargets(t, [images[i]!.height, images[i]!.width], [Number(sizes[2 * i]), Number(sizes[2 * i + 1])], i));
  return { config: cfg, prepared, targets: resized };
}

/** The number of images of a step's input: at least one, with one target set each. */
function checkedBatchSize(input: Pick<TrainStepInput, 'images' | 'targets'>): number {
  const n = input.images.length;
  if (n === 0) throw new InputError('a training step needs at least one image');
  if (input.targets.length !== n) throw new TargetError(`${n} image(s) but ${input.targets.length} target set(s): one per image`);
  return n;
}

/**
 * Runs one training forward (see module doc): returns the losses and, on request, the
 * fixture-named intermediates. Sampling draws from a PRNG seeded by TRAIN.SEED unless injected.
 */
export async function trainStep(config: RcnnConfig, container: DependencyContainer, weights: WeightStore, input: TrainStepInput, options: TrainStepOptions = {}): Promise<TrainStepResult> {
  const n = checkedBatchSize(input);
  const threads = options.threads ?? 1;
  const rand = seededRandom(config.TRAIN.SEED);

  // 1. Transform: the min-size choice, flips, validation, resize of images and targets.
  const { config: cfg, prepared, targets: resized } = prepareTrainingBatch(config, container, input.images, input.targets, rand);
  // 2. Anchors and detached proposals: the inference graph's RPN with the training top-n.
  const rpnConfig = proposalConfig(cfg);
  const rpnModel = buildModel(rpnConfig, container, weights.fork(), { intermediates: true });
  const rpnOut = await runGraph(
    rpnModel.toBytes(),
    { [MODEL_INPUTS.images]: prepared.images, [MODEL_INPUTS.imageSizes]: prepared.imageSizes, [MODEL_INPUTS.originalSizes]: prepared.originalSizes },
    threads,
  );
  const anchors = rpnOut.get('rpn.anchors')!.data as Float32Array;
  const tensors = new Map<string, HostTensor>();
  // This run's own proposals are always dumped (compare them as a set: NMS near-ties); the RoI
  // stage uses the injected ones when given, so that recorded RoI indices mean the same rows.
  const boxes = rpnOut.get(PROPOSAL_OUTPUTS.boxesResized)!;
  const scores = rpnOut.get(PROPOSAL_OUTPUTS.scores)!.data as Float32Array;
  const counts = rpnOut.get(PROPOSAL_OUTPUTS.counts)!.data as BigInt64Array;
  const k = boxes.dims[1]!;
  const own = Array.from({ length: n }, (_, i) => (boxes.data as Float32Array).slice(i * k * 4, (i * k + Number(counts[i])) * 4));
  own.forEach((p, i) => {
    tensors.set(`train.rpn.proposals.${i}`, hostTensor('float32', [p.length / 4, 4], p));
    tensors.set(`train.rpn.proposal_scores.${i}`, hostTensor('float32', [p.length / 4], scores.slice(i * k, i * k + p.length / 4)));
  });
  const injectedProposals = input.injected?.proposals;
  if (injectedProposals && injectedProposals.length !== n) throw new InputError(`${injectedProposals.length} injected proposal sets for ${n} image(s)`);
  const proposals = injectedProposals ? [...injectedProposals] : own;

  // 3. Every head's host targets, then the training graph.
  const model = buildTrainingModel(cfg, container, weights, { intermediates: options.intermediates ?? false });
  const host = model.targets({
    anchors,
    proposals,
    targets: resized,
    rpnSampling: { rand, ...(input.injected?.rpnSamples ? { injected: input.injected.rpnSamples } : {}) },
    roiSampling: { rand, ...(input.injected?.roiSamples ? { injected: input.injected.roiSamples } : {}) },
  });
  const out = await runGraph(
    model.toBytes(),
    { [MODEL_INPUTS.images]: prepared.images, [MODEL_INPUTS.imageSizes]: prepared.imageSizes, ...host.feeds, ...Object.fromEntries(model.parameters) },
    threads,
  );

  const losses = new Map<string, number>();
  for (const o of model.outputs.filter((x) => x.name.startsWith('loss.'))) {
    const t = out.get(o.name)!;
    const value = (t.data as Float32Array)[0]!;
    if (!Number.isFinite(value)) throw new TargetError(`${o.name} is ${value}: the targets or weights make this loss non-finite`, { source: o.name });
    losses.set(o.name, value);
    tensors.set(o.name, t);
  }
  for (const name of model.gradientOutputs) tensors.set(name, out.get(name)!);
  if (options.intermediates) {
    for (const t of model.taps) tensors.set(t.name, out.get(t.name)!);
    for (const [k, v] of Object.entries(host.intermediates)) tensors.set(k, v);
    tensors.set('transform.image_sizes', prepared.imageSizes);
    resized.forEach((t, i) => {
      const g = t.labels.length;
      tensors.set(`train.target.boxes_resized.${i}`, hostTensor('float32', [g, 4], t.boxes));
      if (t.masks) tensors.set(`train.target.masks_resized.${i}`, hostTensor('uint8', [g, t.size[0], t.size[1]], t.masks));
      if (t.keypoints) tensors.set(`train.target.keypoints_resized.${i}`, hostTensor('float32', [g, t.keypoints.length / (3 * Math.max(g, 1)), 3], t.keypoints));
    });
  } else {
    for (const [k] of [...tensors]) if (!k.startsWith('loss.') && !k.startsWith('grad.')) tensors.delete(k);
  }
  return { losses, tensors, model };
}

/** Recorded samples a one-session step replays ({@link trainStepInGraph}): per image. */
export interface InGraphReplay {
  readonly rpn: readonly BalancedSample[];
  readonly roi: readonly RoiReplay[];
}

/** Options of {@link trainStepInGraph}. */
export interface TrainStepInGraphOptions {
  /** onnxruntime intra-op threads (default 1: deterministic). */
  readonly threads?: number;
  /** Replay these samples (keys 1 on their members) instead of drawing the sampler keys. */
  readonly replay?: InGraphReplay;
}

/**
 * One training forward and backward as `rcnn train` runs it with TRAIN.PROPOSALS_IN_GRAPH: the
 * training transform on the host (TRAIN.SEED), then one session run of the training graph that
 * makes the proposals, samples (by keys drawn after the transform, or `replay`) and builds every
 * target itself. Returns the losses and `loss.*` / `grad.<key>` tensors.
 */
export async function trainStepInGraph(
  config: RcnnConfig,
  container: DependencyContainer,
  weights: WeightStore,
  input: Pick<TrainStepInput, 'images' | 'targets'>,
  options: TrainStepInGraphOptions = {},
): Promise<Omit<TrainStepResult, 'model'>> {
  checkedBatchSize(input);
  const rand = seededRandom(config.TRAIN.SEED);
  const { config: cfg, prepared, targets: resized } = prepareTrainingBatch(config, container, input.images, input.targets, rand);
  const model = buildTrainingModel(cfg, container, weights, { targetsInGraph: true });
  const padded = [prepared.images.dims[2]!, prepared.images.dims[3]!] as const;
  const gt = groundTruthFeeds(cfg, resized, { padded, rpnKeyWidth: model.rpnKeyWidth(padded), rand, ...(options.replay ? { replay: options.replay } : {}) });
  const out = await runGraph(model.toBytes(), { [MODEL_INPUTS.images]: prepared.images, [MODEL_INPUTS.imageSizes]: prepared.imageSizes, ...gt, ...Object.fromEntries(model.parameters) }, options.threads ?? 1);
  const losses = new Map<string, number>();
  const tensors = new Map<string, HostTensor>();
  for (const o of model.outputs) {
    const t = out.get(o.name)!;
    if (o.name.startsWith('loss.')) losses.set(o.name, (t.data as Float32Array)[0]!);
    tensors.set(o.name, t);
  }
  return { losses, tensors };
}

/** A training case directory (the fixture format): images, targets and the recorded sampling / proposals. */
export interface TrainingCase {
  readonly caseJson: string;
  readonly weights: string;
  readonly images: RgbImage[];
  readonly targets: ImageTargets[];
  /** Recorded sampling and proposals when the case has them (`train.rpn.sampled_*`, `train.roi.sampled_*`, `train.rpn.proposals.*`). */
  readonly injected: InjectedTraining;
  /** The case's reference tensors (decoded on demand). */
  reference(name: string): HostTensor | undefined;
}

/**
 * Reads a training case directory: `case.json`, `weights.safetensors`, `image_<i>.png`, and
 * `reference.safetensors` for the targets (`target.*.<i>`) and, when present, the recorded samples
 * and proposals to inject.
 */
export async function loadTrainingCase(dir: string): Promise<TrainingCase> {
  const refPath = join(dir, 'reference.safetensors');
  if (!existsSync(refPath)) throw new InputError(`${dir}: no reference.safetensors with the targets (target.boxes.<i>, target.labels.<i>, …)`, { source: dir });
  const ref = readSafetensorsFile(refPath);
  const get = (name: string): HostTensor | undefined => {
    const e = ref.entries.get(name);
    return e ? decodeEntry(e, refPath) : undefined;
  };
  const imageFiles = readdirSync(dir)
    .filter((f) => /^image_\d+\.png$/.test(f))
    .sort((a, b) => Number(a.slice(6, -4)) - Number(b.slice(6, -4)));
  if (imageFiles.length === 0) throw new InputError(`${dir}: no image_<i>.png`, { source: dir });
  const limits = { maxPixels: 64_000_000, maxSide: 20_000 };
  const images = await Promise.all(imageFiles.map((f) => decodeImage(join(dir, f), limits)));
  const toInt32 = (t: HostTensor): Int32Array => Int32Array.from(t.data as BigInt64Array, (v) => Number(v));
  const toIndices = (t: HostTensor | undefined): Int32Array | undefined => (t ? toInt32(t) : undefined);
  const targets: ImageTargets[] = images.map((_, i) => {
    const boxes = get(`target.boxes.${i}`);
    const labels = get(`target.labels.${i}`);
    if (!boxes || !labels) throw new InputError(`${refPath}: no target.boxes.${i} / target.labels.${i}`, { source: refPath });
    const masks = get(`target.masks.${i}`);
    const keypoints = get(`target.keypoints.${i}`);
    return {
      boxes: boxes.data as Float32Array,
      labels: toInt32(labels),
      ...(masks ? { masks: masks.data as Uint8Array } : {}),
      ...(keypoints ? { keypoints: keypoints.data as Float32Array } : {}),
    };
  });
  const samples = (stage: 'rpn' | 'roi'): BalancedSample[] | undefined => {
    const all = images.map((_, i) => ({ positive: toIndices(get(`train.${stage}.sampled_pos.${i}`)), negative: toIndices(get(`train.${stage}.sampled_neg.${i}`)) }));
    return all.every((s) => s.positive && s.negative) ? all.map((s) => ({ positive: s.positive!, negative: s.negative! })) : undefined;
  };
  const props = images.map((_, i) => get(`train.rpn.proposals.${i}`)?.data as Float32Array | undefined);
  const rpnSamples = samples('rpn');
  const roiSamples = samples('roi');
  const injected: InjectedTraining = {
    ...(rpnSamples ? { rpnSamples } : {}),
    ...(roiSamples ? { roiSamples } : {}),
    ...(props.every((p) => p) ? { proposals: props as Float32Array[] } : {}),
  };
  const caseJson = join(dir, 'case.json');
  JSON.parse(readFileSync(caseJson, 'utf8'));
  return { caseJson, weights: join(dir, 'weights.safetensors'), images, targets, injected, reference: get };
}
