/**
 * The conformance kit's training checks: a head's `training` part (slots rpn-head,
 * roi-box-outputs, roi-mask-head, roi-keypoint-head) built alone on synthetic features, GT
 * (one image with objects, one without) and a seeded sample, run in onnxruntime. Checks that
 *
 * - the registry value has a training part, its `buildLosses` builds and its host `targets` feeds
 *   exactly the inputs `buildLosses` declared;
 * - the losses are named, distinct, scalar and finite (also for the image without GT);
 * - every trainable parameter the stage reads gets a finite gradient, and the largest element of
 *   each of a few parameters' gradients agrees with central finite differences of the loss sum
 *   (parameters are graph inputs, so each difference is two runs of the same session).
 *
 * Use it from node:test: `assertConformance(await runTrainingConformance({ slot, name, container, config }))`.
 */
import {
  type Blob,
  type BoxHeadOutput,
  ConfigError,
  type DependencyContainer,
  type FeatureMaps,
  GraphBuilder,
  type HostTensor,
  type ImageBatch,
  type LossTerm,
  MODEL_INPUTS,
  type RcnnConfig,
  ROI_TRAINING_INPUTS,
  type ResizedTargets,
  type RoiBoxOutputs,
  type RoiHeadTraining,
  type RpnHead,
  SLOTS,
  type Slot,
  type TrainingBuildContext,
  type TrainingRois,
  WeightStore,
  addParameterGradients,
  exposeTrainableParameters,
  hostTensor,
  ops,
  resolveImplementation,
  sampleRois,
} from '@rcnn/core';
import type { ConformanceCheck, ConformanceReport } from './conformance.js';
import { type FeatureSpec, defaultFeatures, levelSize, randomFloat, seededRandom } from './conformance-inputs.js';
import { createTestSession, runModel } from './ort.js';

/** Slots whose training part the kit checks. */
export type TrainingSlotId = 'rpn-head' | 'roi-box-outputs' | 'roi-mask-head' | 'roi-keypoint-head';

/** Options of {@link runTrainingConformance}. */
export interface TrainingConformanceOptions {
  readonly slot: TrainingSlotId;
  readonly name: string;
  readonly container: DependencyContainer;
  readonly config: RcnnConfig;
  /** Weights (default `WeightStore.random(seed)`); every key under the head's weight prefixes trains. */
  readonly weights?: WeightStore;
  readonly seed?: number;
  /** Padded image size (default [64, 96]). */
  readonly imageSize?: readonly [number, number];
  /** Feature maps (default: from the config). */
  readonly features?: readonly FeatureSpec[];
  /** Width of the synthetic box-head representation (roi-box-outputs; default 16). */
  readonly boxHeadDim?: number;
  /** Parameters checked by finite differences (default 3, those with the largest gradients). */
  readonly finiteDifferenceParameters?: number;
  /** Relative tolerance of a finite-difference check (default 0.05). */
  readonly finiteDifferenceTolerance?: number;
}

const SLOT_OF: Readonly<Record<TrainingSlotId, Slot<unknown>>> = {
  'rpn-head': SLOTS.rpnHead,
  'roi-box-outputs': SLOTS.roiBoxOutputs,
  'roi-mask-head': SLOTS.roiMaskHead,
  'roi-keypoint-head': SLOTS.roiKeypointHead,
};

const message = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/** Synthetic GT of a batch of two (h, w) images: three objects in the first, none in the second. */
function syntheticTargets(config: RcnnConfig, size: readonly [number, number], rand: () => number): ResizedTargets[] {
  const [h, w] = size;
  const k = config.KRCNN.NUM_KEYPOINTS;
  const boxes: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < 3; i++) {
    const x1 = Math.floor(rand() * w * 0.5);
    const y1 = Math.floor(rand() * h * 0.5);
    boxes.push(x1, y1, x1 + 8 + Math.floor(rand() * w * 0.4), y1 + 8 + Math.floor(rand() * h * 0.4));
    labels.push(1 + (i % Math.max(1, config.MODEL.NUM_CLASSES - 1)));
  }
  const masks = new Uint8Array(3 * h * w);
  const keypoints = new Float32Array(3 * k * 3);
  for (let i = 0; i < 3; i++) {
    const [x1, y1, x2, y2] = [boxes[4 * i]!, boxes[4 * i + 1]!, boxes[4 * i + 2]!, boxes[4 * i + 3]!];
    for (let y = y1; y < Math.min(y2, h); y++) for (let x = x1; x < Math.min(x2, w); x++) masks[(i * h + y) * w + x] = (x + y) % 3 === 0 ? 0 : 1;
    for (let j = 0; j < k; j++) keypoints.set([x1 + rand() * (x2 - x1), y1 + rand() * (y2 - y1), j % 4 === 0 ? 0 : 2], (i * k + j) * 3);
  }
  const one: ResizedTargets = { boxes: Float32Array.from(boxes), labels: Int32Array.from(labels), masks, keypoints, size: [h, w] };
  const none: ResizedTargets = { boxes: new Float32Array(0), labels: new Int32Array(0), masks: new Uint8Array(0), keypoints: new Float32Array(0), size: [h, w] };
  return [one, none];
}

/** Random proposals of an image plus jittered copies of its GT (so some RoIs are positive). */
function syntheticProposals(gt: ResizedTargets, size: readonly [number, number], rand: () => number): Float32Array {
  const [h, w] = size;
  const out: number[] = [];
  for (let i = 0; i < 24; i++) {
    const x1 = rand() * w * 0.7;
    const y1 = rand() * h * 0.7;
    out.push(x1, y1, x1 + 4 + rand() * w * 0.3, y1 + 4 + rand() * h * 0.3);
  }
  for (let i = 0; i < gt.boxes.length; i++) out.push(gt.boxes[i]! + (rand() - 0.5) * 2);
  return Float32Array.from(out);
}

/** Anchors in the RPN head's flattened (level, y, x, a) order: a box around each location. */
function syntheticAnchors(config: RcnnConfig, specs: readonly FeatureSpec[], padded: readonly [number, number]): Float32Array {
  const perLocation = config.FPN.FPN_ON
    ? (config.FPN.RPN_ANCHOR_SIZES[0]?.length ?? 1) * config.FPN.RPN_ASPECT_RATIOS.length
    : config.RPN.SIZES.length * config.RPN.ASPECT_RATIOS.length;
  const out: number[] = [];
  for (const s of specs) {
    const scale = s.spatialScale ?? 2 ** -s.level;
    const [fh, fw] = levelSize(padded, scale);
    const stride = 1 / scale;
    for (let y = 0; y < fh; y++) {
      for (let x = 0; x < fw; x++) {
        for (let a = 0; a < perLocation; a++) {
          const half = stride * (1 + a);
          out.push(x * stride - half, y * stride - half, x * stride + half, y * stride + half);
        }
      }
    }
  }
  return Float32Array.from(out);
}

/** Runs the training checks on one implementation (see module doc); never throws for a non-conforming one. */
export async function runTrainingConformance(o: TrainingConformanceOptions): Promise<ConformanceReport> {
  const started = performance.now();
  const checks: ConformanceCheck[] = [];
  const add = (id: string, title: string, pass: boolean, detail: string): boolean => {
    checks.push({ id, title, pass, detail });
    return pass;
  };
  const seed = o.seed ?? 0;
  const base = o.weights ?? WeightStore.random(seed);
  let provider: string | undefined;
  const finish = (): ConformanceReport => ({
    slot: o.slot,
    name: o.name,
    provider,
    passed: checks.every((c) => c.pass),
    checks,
    weights: { source: base.description, prefixes: [], consumed: [], unusedInPrefixes: [] },
    taps: [],
    cases: [],
    durationMs: performance.now() - started,
  });
  const slot = SLOT_OF[o.slot];
  if (!slot) throw new ConfigError(`the training conformance kit has no checks for slot "${o.slot}"; it checks ${Object.keys(SLOT_OF).join(', ')}`);
  let value: { training?: unknown; weightPrefixes?: readonly string[] };
  try {
    const impl = resolveImplementation(o.container, slot, o.name);
    provider = impl.provider;
    value = impl.value as typeof value;
  } catch (e) {
    add('training.resolve', `"${o.name}" resolves in slot ${o.slot}`, false, message(e));
    return finish();
  }
  if (!add('training.present', 'the registry value has a training part', value.training !== undefined, value.training ? 'training part found' : 'no `training` member: buildTrainingModel refuses this head')) {
    return finish();
  }

  // Build the stage's losses alone, on synthetic inputs, with its parameters trainable.
  const config = o.config;
  const padded = o.imageSize ?? [64, 96];
  const rand = seededRandom(seed + 1);
  const weights = base.fork();
  const prefixes = value.weightPrefixes ?? [];
  weights.setTrainable((key) => prefixes.some((p) => key.startsWith(p)));
  const g = new GraphBuilder({ name: `training_conformance_${o.slot.replace(/-/g, '_')}` });
  const batch: ImageBatch = {
    images: g.input(MODEL_INPUTS.images, 'float32', ['N', 3, 'H', 'W']),
    imageSizes: g.input(MODEL_INPUTS.imageSizes, 'int64', ['N', 2]),
    get originalSizes(): Blob {
      throw new ConfigError('a training part must not read original_sizes (training works in resized-image pixels)');
    },
  };
  const declared: string[] = [];
  const ctx: TrainingBuildContext = {
    graph: g,
    config,
    weights,
    container: o.container,
    batch,
    tap: () => undefined,
    input(name, dtype, dims) {
      declared.push(name);
      return g.input(name, dtype, dims);
    },
  };
  const specs = o.features ?? defaultFeatures(config, o.slot === 'rpn-head' ? 'rpn' : 'roi');
  const features: FeatureMaps = specs.map((s, i) => ({
    name: s.name,
    blob: g.input(`conformance.features.${s.name}`, 'float32', ['N', s.channels, `H${i}`, `W${i}`]),
    channels: s.channels,
    spatialScale: s.spatialScale ?? 2 ** -s.level,
    level: s.level,
  }));
  const feeds: Record<string, HostTensor> = {
    [MODEL_INPUTS.images]: randomFloat([2, 3, padded[0], padded[1]], rand),
    [MODEL_INPUTS.imageSizes]: hostTensor('int64', [2, 2], BigInt64Array.from([padded[0], padded[1], padded[0], padded[1]].map(BigInt))),
  };
  for (const s of specs) {
    const [h, w] = levelSize(padded, s.spatialScale ?? 2 ** -s.level);
    feeds[`conformance.features.${s.name}`] = randomFloat([2, s.channels, h, w], rand);
  }
  const targets = syntheticTargets(config, padded, rand);
  const sampling = { rand };
  let losses: readonly LossTerm[];
  let host: { feeds: Readonly<Record<string, HostTensor>> };
  try {
    if (o.slot === 'rpn-head') {
      const training = (value as RpnHead).training!;
      losses = training.buildLosses(ctx, features);
      host = training.targets({ anchors: syntheticAnchors(config, specs, padded), targets, sampling }, config);
    } else {
      const roi = sampleRois(targets.map((t) => syntheticProposals(t, padded, rand)), targets, config, sampling);
      const input = { samples: roi.samples, targets };
      const positives = o.slot !== 'roi-box-outputs';
      const roiFeeds = roi.host.feeds;
      const rois: TrainingRois = positives
        ? {
            boxes: g.input(ROI_TRAINING_INPUTS.positiveBoxes, 'float32', ['R', 4]),
            batchIndex: g.input(ROI_TRAINING_INPUTS.positiveBatchIndex, 'int64', ['R']),
            labels: g.input(ROI_TRAINING_INPUTS.positiveLabels, 'int64', ['R']),
          }
        : {
            boxes: g.input(ROI_TRAINING_INPUTS.boxes, 'float32', ['R', 4]),
            batchIndex: g.input(ROI_TRAINING_INPUTS.batchIndex, 'int64', ['R']),
            labels: g.input(ROI_TRAINING_INPUTS.labels, 'int64', ['R']),
          };
      const roiNames = positives
        ? [ROI_TRAINING_INPUTS.positiveBoxes, ROI_TRAINING_INPUTS.positiveBatchIndex, ROI_TRAINING_INPUTS.positiveLabels]
        : [ROI_TRAINING_INPUTS.boxes, ROI_TRAINING_INPUTS.batchIndex, ROI_TRAINING_INPUTS.labels];
      for (const n of roiNames) feeds[n] = roiFeeds[n]!;
      if (o.slot === 'roi-box-outputs') {
        const dim = o.boxHeadDim ?? 16;
        const head: BoxHeadOutput = { features: g.input('conformance.box_features', 'float32', ['R', dim]), dim };
        feeds['conformance.box_features'] = randomFloat([roiFeeds[ROI_TRAINING_INPUTS.labels]!.dims[0]!, dim], rand);
        const training = (value as RoiBoxOutputs).training!;
        losses = training.buildLosses(ctx, head, rois);
        host = training.targets(input, config);
      } else {
        const training = value.training as RoiHeadTraining;
        losses = training.buildLosses(ctx, features, rois);
        host = training.targets(input, config);
      }
    }
  } catch (e) {
    add('training.build', 'the training part builds its losses and host targets', false, message(e));
    return finish();
  }
  add('training.build', 'the training part builds its losses and host targets', true, `${losses.length} loss(es): ${losses.map((l) => l.name).join(', ')}`);
  const fed = Object.keys(host.feeds);
  const missing = declared.filter((n) => !fed.includes(n));
  const extra = fed.filter((n) => !declared.includes(n));
  add('training.feeds', 'the host targets feed exactly the inputs buildLosses declared', missing.length === 0 && extra.length === 0, missing.length || extra.length ? `missing ${missing.join(', ') || 'none'}; not declared ${extra.join(', ') || 'none'}` : declared.join(', '));
  const names = losses.map((l) => l.name);
  add('training.loss-names', 'losses are named and distinct', names.length > 0 && new Set(names).size === names.length && names.every((n) => /^[a-z0-9_]+$/.test(n)), names.join(', ') || 'none');
  for (const n of declared) if (host.feeds[n]) feeds[n] = host.feeds[n];

  let total = losses[0]!.blob;
  losses.slice(1).forEach((l, i) => (total = ops.add(g, total, l.blob, `total${i}`)));
  const values = new Map<string, HostTensor>();
  for (const [, t] of g.listInitializers()) {
    const key = t.data instanceof Float32Array ? weights.keyOfData(t.data) : undefined;
    if (key !== undefined && weights.isTrainable(key)) values.set(key, t);
  }
  let parameters: ReturnType<typeof exposeTrainableParameters>;
  try {
    parameters = exposeTrainableParameters(g, weights);
    addParameterGradients(g, { loss: total, parameters });
  } catch (e) {
    add('training.gradients', 'every trainable parameter it reads gets a gradient', false, message(e));
    return finish();
  }
  losses.forEach((l) => g.output(l.blob, `loss.${l.name}`, 'float32', []));
  g.output(total, 'loss.sum', 'float32', []);
  for (const p of parameters) feeds[p.key] = values.get(p.key)!;

  let session: Awaited<ReturnType<typeof createTestSession>>;
  let out: Map<string, HostTensor>;
  try {
    session = await createTestSession(g.toModelProto());
    out = await runModel(session, feeds);
  } catch (e) {
    add('training.run', 'the losses and gradients run in onnxruntime', false, message(e));
    return finish();
  }
  const lossValues = names.map((n) => (out.get(`loss.${n}`)!.data as Float32Array)[0]);
  add('training.losses-finite', 'every loss is a finite scalar (one image has no GT)', lossValues.every(Number.isFinite), names.map((n, i) => `${n} ${lossValues[i]}`).join(', '));
  const grads = parameters.map((p) => ({ key: p.key, data: out.get(`grad.${p.key}`)!.data as Float32Array }));
  const bad = grads.filter((gr) => !gr.data.every(Number.isFinite)).map((gr) => gr.key);
  add('training.gradients', 'every trainable parameter it reads gets a finite gradient', parameters.length > 0 && bad.length === 0, parameters.length === 0 ? 'no trainable parameter under the weight prefixes' : bad.length ? `non-finite: ${bad.join(', ')}` : `${parameters.length} parameters`);

  // Finite differences of the loss sum at each checked parameter's largest gradient element.
  const maxAbs = (a: Float32Array): [number, number] => a.reduce<[number, number]>((best, v, i) => (Math.abs(v) > best[1] ? [i, Math.abs(v)] : best), [0, 0]);
  const picked = grads
    .map((gr) => ({ ...gr, at: maxAbs(gr.data) }))
    .filter((gr) => gr.at[1] > 0)
    .sort((a, b) => b.at[1] - a.at[1])
    .slice(0, o.finiteDifferenceParameters ?? 3);
  const tol = o.finiteDifferenceTolerance ?? 0.05;
  const details: string[] = [];
  let fdPass = picked.length > 0;
  for (const p of picked) {
    const original = feeds[p.key];
    if (original === undefined) throw new RangeError(`conformance: no feed for the checked parameter ${p.key}`);
    const lossAt = async (delta: number): Promise<number> => {
      const data = Float32Array.from(original.data as Float32Array);
      data[p.at[0]]! += delta;
      const r = await runModel(session, { ...feeds, [p.key]: { ...original, data } as HostTensor });
      return (r.get('loss.sum')!.data as Float32Array)[0]!;
    };
    const h = 1e-2 * Math.max(1, Math.abs((original.data as Float32Array)[p.at[0]]!));
    const fd = ((await lossAt(h)) - (await lossAt(-h))) / (2 * h);
    const analytic = p.data[p.at[0]]!;
    const ok = Math.abs(fd - analytic) <= tol * Math.abs(analytic) + 1e-4;
    fdPass &&= ok;
    details.push(`${p.key}[${p.at[0]}] analytic ${analytic.toPrecision(5)} vs ${fd.toPrecision(5)}${ok ? '' : ' (off)'}`);
  }
  add('training.finite-differences', 'gradients agree with central finite differences of the loss sum', fdPass, details.join('; ') || 'no non-zero gradient to check');
  await session.release();
  return finish();
}
