/**
 * The seed function's train branch (Detectron `_single_gpu_build_func` with `model.train`): the
 * same stages as {@link buildModel}, resolved from the registry by the same config names, each
 * adding its losses through its slot's `training` part, in the seed's order: conv body → RPN and
 * its losses → FPN level narrowing → box head and its losses unless RPN-only → mask head and
 * keypoint head and theirs. Outputs `loss.<name>` per loss and `loss.total`, their sum in
 * torchvision's loss-dict order (RoI heads first, then the RPN).
 *
 * Targets and sampling are host work by default ({@link BuiltTrainingModel.targets}); the graph
 * takes them as inputs, and the RPN's proposals come from the inference graph's RPN (with the TRAIN
 * top-n) or are injected — torchvision detaches them. With `targetsInGraph`
 * (TRAIN.PROPOSALS_IN_GRAPH) the graph makes the proposals itself and each training part's
 * `buildTargets` gives the values of the inputs its losses declare, so one session run is a step.
 */
import type { DependencyContainer } from 'tsyringe';
import type { RcnnConfig } from '../config/config.js';
import { ConfigError, at } from '../errors.js';
import { type Blob, type Dim, GraphBuilder } from '../graph/builder.js';
import type { DataType, HostTensor } from '../graph/dtypes.js';
import * as ops from '../graph/onnx-ops.js';
import { addParameterGradients, exposeTrainableParameters, trainableParameters } from '../autodiff/index.js';
import { SLOTS, replicaInfo, resolveImplementation } from '../registry/registry.js';
import { TRAINING_PASSES } from '../internal/passes/index.js';
import { GT_TRAINING_INPUTS, type GroundTruthBlobs, sampleRoisGraph } from '../training/graph-sampling.js';
import { ROI_TRAINING_INPUTS, sampleRois } from '../training/roi-sampling.js';
import type { ResizedTargets } from '../training/targets.js';
import type { WeightStore } from '../weights/store.js';
import { MODEL_INPUTS, type ModelOutput } from './build.js';
import { featureMapDims } from './dims.js';
import type {
  BuildContext,
  FeatureMaps,
  HostTargets,
  ImageBatch,
  LossTerm,
  Proposals,
  RoiBoxOutputsTraining,
  RoiHeadTraining,
  RpnHeadTraining,
  SamplingSource,
  TapLayout,
  TapSpec,
  TrainingBuildContext,
  TrainingRois,
} from './contracts.js';

/** Output name of a loss (`loss.objectness`) and of their sum. */
export const lossOutputName = (name: string): string => `loss.${name}`;
/** Output name of the total loss. */
export const TOTAL_LOSS = 'loss.total';

/** Options of {@link buildTrainingModel}. */
export interface TrainingBuildOptions {
  /** Also output the tapped `train.*` intermediates (`train.roi.class_logits`, …). */
  readonly intermediates?: boolean;
  /** Name scope of the graph (default: the container's replica scope, else none). */
  readonly scope?: string;
  /**
   * Also build the backward: the trainable parameters (TRAIN.FREEZE_CONV_BODY,
   * TRAIN.TRAINABLE_BACKBONE_LAYERS) become graph inputs named by their state-dict key and each
   * gets the output `grad.<key>` of d loss.total / d parameter. Default true. Marks the
   * parameters trainable on `weights` (`setTrainable`).
   */
  readonly gradients?: boolean;
  /**
   * With TRAIN.FREEZE_CONV_BODY: the frozen body's feature maps are graph inputs
   * (`featureInputName(level name)`, fed with the inference pass's `backbone.<name>` of the same
   * images) instead of a second forward of the body in this graph; the body's nodes and weights are
   * then left out of the serialised graph. Ignored for a trainable body.
   */
  readonly featureInputs?: boolean;
  /**
   * Build every target in the graph (TRAIN.PROPOSALS_IN_GRAPH): the graph runs the RPN's proposal
   * pass itself (the training top-n, no gradient), then each training part's `buildTargets` on the
   * ground truth and sampler keys of {@link GT_TRAINING_INPUTS} (fed by `groundTruthFeeds`), so one
   * session run makes the whole step. {@link BuiltTrainingModel.targets} is then not used. Ignores
   * `featureInputs` (a frozen body runs in this graph, behind a StopGradient). Default false.
   */
  readonly targetsInGraph?: boolean;
}

/**
 * The config of a training step's proposals: the model's RPN with the training pre/post-NMS top-n
 * (torchvision's `pre_nms_top_n` / `post_nms_top_n` of train mode).
 */
export function trainingProposalConfig(config: RcnnConfig): RcnnConfig {
  return {
    ...config,
    MODEL: { ...config.MODEL, RPN_ONLY: true },
    TEST: { ...config.TEST, RPN_PRE_NMS_TOP_N: config.TRAIN.RPN_PRE_NMS_TOP_N, RPN_POST_NMS_TOP_N: config.TRAIN.RPN_POST_NMS_TOP_N },
  };
}

/** Graph input of the frozen body's feature map `name` ({@link TrainingBuildOptions.featureInputs}). */
export const featureInputName = (name: string): string => `features.${name}`;

/** Host input of {@link BuiltTrainingModel.targets}. */
export interface TrainingTargetInput {
  /** [A*4] anchors over the padded batch (the inference RPN's `rpn.anchors`). */
  readonly anchors: Float32Array;
  /** Detached proposals of each image ([P*4], resized-image pixels, score order). */
  readonly proposals: readonly Float32Array[];
  /** Resized GT of each image. */
  readonly targets: readonly ResizedTargets[];
  readonly rpnSampling: SamplingSource;
  readonly roiSampling: SamplingSource;
}

/** A training graph assembled by {@link buildTrainingModel}. */
export interface BuiltTrainingModel {
  readonly config: RcnnConfig;
  readonly graph: GraphBuilder;
  /** `loss.<name>` in torchvision's loss-dict order, then `loss.total`. */
  readonly outputs: readonly ModelOutput[];
  /** Loss names in summation order (torchvision's `loss_dict` order, without the `loss_` prefix). */
  readonly lossNames: readonly string[];
  /** Intermediates exposed as outputs (only with `intermediates: true`). */
  readonly taps: readonly TapSpec[];
  /** Host-fed inputs besides `images` and `image_sizes`, by name. */
  readonly targetInputs: readonly { readonly name: string; readonly dtype: DataType }[];
  /** Registry names resolved per slot. */
  readonly resolved: Readonly<Record<string, string>>;
  /** The trainable parameters (graph inputs named by state-dict key) with their current values, to feed at every step; empty without gradients. */
  readonly parameters: ReadonlyMap<string, HostTensor>;
  /** `grad.<key>` output names, in parameter order. */
  readonly gradientOutputs: readonly string[];
  /** Whether the targets are built in the graph ({@link TrainingBuildOptions.targetsInGraph}): feed `groundTruthFeeds`, not {@link targets}. */
  readonly targetsInGraph: boolean;
  /**
   * With targets in the graph: the width of the RPN keys input for a padded batch of (H, W) — at
   * least the anchors per image over the RPN levels, from their spatial scales and the anchors per
   * position.
   */
  rpnKeyWidth(padded: readonly [number, number]): number;
  /** Every stage's host side: the feeds of {@link targetInputs} and the `train.*` intermediates. */
  targets(input: TrainingTargetInput): HostTargets;
  toBytes(): Uint8Array;
}

function missingGraphTargets(slot: { title: string; configKey: string }, name: string): ConfigError {
  return new ConfigError(`the ${slot.title} "${name}" (${slot.configKey}) builds no targets in the graph (its training part has no buildTargets)`, {
    key: 'TRAIN.PROPOSALS_IN_GRAPH',
    hint: 'set TRAIN.PROPOSALS_IN_GRAPH false: the step then runs the proposal pass and the host targets (docs/training.md)',
  });
}

function missingTraining(slot: { title: string; configKey: string }, name: string): ConfigError {
  return new ConfigError(`the ${slot.title} "${name}" (${slot.configKey}) has no training part: it cannot be trained`, {
    key: slot.configKey,
    hint: 'a head trains when its registry value has a `training` member (docs/training.md)',
  });
}

/** What {@link trainingTargets} needs of a build: the stages' host sides and the graph's declared inputs. */
interface TrainingTargetParts {
  readonly config: RcnnConfig;
  readonly rpnTraining: RpnHeadTraining;
  readonly boxTraining: RoiBoxOutputsTraining | undefined;
  readonly roiHeads: readonly RoiHeadTraining[];
  readonly targetInputs: readonly { readonly name: string; readonly dtype: DataType }[];
}

/**
 * The host side of a build ({@link BuiltTrainingModel.targets}). A function of its own (not a
 * closure inside {@link buildTrainingModel}) so that keeping it does not keep the graph builder —
 * its nodes and every initializer — alive for the whole training run.
 */
function trainingTargets(parts: TrainingTargetParts): (input: TrainingTargetInput) => HostTargets {
  const { config, rpnTraining, boxTraining, roiHeads, targetInputs } = parts;
  return (input) => {
    const feeds: Record<string, HostTensor> = {};
    const intermediates: Record<string, HostTensor> = {};
    const merge = (h: HostTargets): void => {
      Object.assign(feeds, h.feeds);
      Object.assign(intermediates, h.intermediates);
    };
    merge(rpnTraining.targets({ anchors: input.anchors, targets: input.targets, sampling: input.rpnSampling }, config));
    if (boxTraining) {
      const roi = sampleRois(input.proposals, input.targets, config, input.roiSampling);
      merge(roi.host);
      const roiInput = { samples: roi.samples, targets: input.targets };
      merge(boxTraining.targets(roiInput, config));
      for (const h of roiHeads) merge(h.targets(roiInput, config));
    }
    // Only what this graph declares: the RoI sample also makes the positives' feeds, which a Faster R-CNN graph does not take.
    const declared: Record<string, HostTensor> = {};
    const missing: string[] = [];
    for (const t of targetInputs) {
      const fed = feeds[t.name];
      if (fed === undefined) missing.push(t.name);
      else declared[t.name] = fed;
    }
    if (missing.length > 0) throw new ConfigError(`the training parts fed no value for graph input(s) ${missing.join(', ')}`);
    return { feeds: declared, intermediates };
  };
}

/**
 * An upper bound of the anchors per image over `features` for a padded (H, W): per level
 * (ceil(H · scale) + 1) · (ceil(W · scale) + 1) positions times the anchors per position of the
 * config (FPN.RPN_ANCHOR_SIZES / RPN_ASPECT_RATIOS, or RPN.SIZES x RPN.ASPECT_RATIOS).
 */
function rpnKeyWidthOf(config: RcnnConfig, features: FeatureMaps): (padded: readonly [number, number]) => number {
  const fpnSizes = config.FPN.RPN_ANCHOR_SIZES.length > 0 ? Math.max(...config.FPN.RPN_ANCHOR_SIZES.map((s) => s.length)) : 1;
  const perPosition = config.FPN.FPN_ON ? fpnSizes * config.FPN.RPN_ASPECT_RATIOS.length : config.RPN.SIZES.length * config.RPN.ASPECT_RATIOS.length;
  const scales = features.map((f) => f.spatialScale);
  return ([h, w]) => perPosition * scales.reduce((sum, s) => sum + (Math.ceil(h * s) + 1) * (Math.ceil(w * s) + 1), 0);
}

/**
 * Which training parts of `config`'s model cannot build their targets in the graph (no
 * `buildTargets`): empty when {@link TrainingBuildOptions.targetsInGraph} can be used. Each entry
 * names the slot, its config key and the registry name.
 */
export function graphTargetGaps(config: RcnnConfig, container: DependencyContainer): string[] {
  const gaps: string[] = [];
  const check = (slot: { title: string; configKey: string }, name: string, training: { buildTargets?: unknown } | undefined): void => {
    if (!training?.buildTargets) gaps.push(`the ${slot.title} "${name}" (${slot.configKey})`);
  };
  const rpn = resolveImplementation(container, SLOTS.rpnHead, config.RPN.HEAD);
  check(SLOTS.rpnHead, rpn.name, rpn.value.training);
  if (!config.MODEL.RPN_ONLY) {
    const box = resolveImplementation(container, SLOTS.roiBoxOutputs, config.FAST_RCNN.OUTPUTS);
    check(SLOTS.roiBoxOutputs, box.name, box.value.training);
    if (config.MODEL.MASK_ON) {
      const mask = resolveImplementation(container, SLOTS.roiMaskHead, config.MRCNN.ROI_MASK_HEAD);
      check(SLOTS.roiMaskHead, mask.name, mask.value.training);
    }
    if (config.MODEL.KEYPOINTS_ON) {
      const kp = resolveImplementation(container, SLOTS.roiKeypointHead, config.KRCNN.ROI_KEYPOINTS_HEAD);
      check(SLOTS.roiKeypointHead, kp.name, kp.value.training);
    }
  }
  return gaps;
}

/** Builds the training graph (see module doc). */
export function buildTrainingModel(config: RcnnConfig, container: DependencyContainer, weights: WeightStore, options: TrainingBuildOptions = {}): BuiltTrainingModel {
  const scope = options.scope ?? replicaInfo(container)?.scope;
  const withGradients = options.gradients ?? true;
  if (withGradients) {
    // Random weights have no key list: decide key by key (the rule only looks at the name).
    weights.setTrainable(weights.isRandom ? (key) => trainableParameters(config, [key]).length === 1 : trainableParameters(config, weights.keys()));
  }
  const g = new GraphBuilder({ name: 'rcnn_train', ...(scope ? { scope } : {}) });
  const batch: ImageBatch = {
    images: g.input(MODEL_INPUTS.images, 'float32', ['N', 3, 'H', 'W']),
    imageSizes: g.input(MODEL_INPUTS.imageSizes, 'int64', ['N', 2]),
    get originalSizes(): Blob {
      throw new ConfigError('the training graph has no original_sizes input: training works in resized-image pixels');
    },
  };
  const taps: TapSpec[] = [];
  const tapBlobs = new Map<string, Blob>();
  const targetInputs: { name: string; dtype: DataType }[] = [];
  const inGraph = options.targetsInGraph ?? false;
  // With targets in the graph: the values of the training parts' inputs, built before they declare them.
  const provided = new Map<string, Blob>();
  const ctx: TrainingBuildContext = {
    graph: g,
    config,
    weights,
    container,
    batch,
    tap(name: string, blob: Blob, dtype: DataType, layout: TapLayout, dims: readonly Dim[]) {
      if (tapBlobs.has(name)) throw new ConfigError(`intermediate "${name}" is tapped twice`);
      taps.push({ name, dtype, layout, dims: [...dims] });
      tapBlobs.set(name, blob);
    },
    input(name, dtype, dims) {
      const value = provided.get(name);
      if (value) return value;
      if (inGraph && !Object.values(GT_TRAINING_INPUTS).includes(name as never)) {
        throw new ConfigError(`training input "${name}" has no in-graph value: a training part declares an input its buildTargets does not build`, {
          key: 'TRAIN.PROPOSALS_IN_GRAPH',
          hint: 'set TRAIN.PROPOSALS_IN_GRAPH false to feed it from the host targets',
        });
      }
      if (targetInputs.some((t) => t.name === name)) throw new ConfigError(`training input "${name}" is declared twice`);
      targetInputs.push({ name, dtype });
      return g.input(name, dtype, dims);
    },
  };
  const resolved: Record<string, string> = {};
  const roiLosses: LossTerm[] = [];
  const rpnLosses: LossTerm[] = [];

  // 1. Conv body (+ FPN).
  const body = resolveImplementation(container, SLOTS.convBody, config.MODEL.CONV_BODY);
  resolved[SLOTS.convBody.id] = body.name;
  if (body.value.isFpn !== config.FPN.FPN_ON) {
    throw new ConfigError(`FPN.FPN_ON is ${config.FPN.FPN_ON} but MODEL.CONV_BODY "${config.MODEL.CONV_BODY}" ${body.value.isFpn ? 'is' : 'is not'} an FPN body`, { key: 'FPN.FPN_ON' });
  }
  const bodyFeatures = g.withScope('conv_body', () => body.value.build(ctx as BuildContext, batch.images));
  // Detectron's TRAIN.FREEZE_CONV_BODY: StopGradient on every blob_conv (no backward into the body or FPN).
  // With featureInputs the body's nodes are dead (nothing reads them) and not serialised.
  const features = !config.TRAIN.FREEZE_CONV_BODY
    ? bodyFeatures
    : options.featureInputs && !inGraph
      ? bodyFeatures.map((f) => ({ ...f, blob: g.input(featureInputName(f.name), 'float32', featureMapDims(f)) }))
      : g.withScope('conv_body', () => bodyFeatures.map((f) => ({ ...f, blob: g.stopGradient(f.blob, `frozen_${f.name}`) })));
  const fpn = config.FPN.FPN_ON;
  const levels = (min: number, max: number, what: string): FeatureMaps => {
    const picked = features.filter((f) => f.level >= min && f.level <= max);
    if (picked.length === 0) throw new ConfigError(`no feature level in [${min}, ${max}] for the ${what}`);
    return picked;
  };

  // 2. RPN and its losses.
  const rpn = resolveImplementation(container, SLOTS.rpnHead, config.RPN.HEAD);
  resolved[SLOTS.rpnHead.id] = rpn.name;
  const rpnTraining: RpnHeadTraining = rpn.value.training ?? ((): never => { throw missingTraining(SLOTS.rpnHead, rpn.name); })();
  const rpnFeatures = fpn ? levels(config.FPN.RPN_MIN_LEVEL, config.FPN.RPN_MAX_LEVEL, 'RPN') : features.slice(-1);
  let gt: GroundTruthBlobs | undefined;
  let proposals: Proposals | undefined;
  if (inGraph) {
    const lazy = (name: string, dtype: DataType, dims: readonly Dim[]): (() => Blob) => {
      let blob: Blob | undefined;
      return () => (blob ??= ctx.input(name, dtype, dims));
    };
    gt = {
      boxes: ctx.input(GT_TRAINING_INPUTS.boxes, 'float32', ['N', 'G', 4]),
      labels: ctx.input(GT_TRAINING_INPUTS.labels, 'int64', ['N', 'G']),
      valid: ctx.input(GT_TRAINING_INPUTS.valid, 'bool', ['N', 'G']),
      masks: lazy(GT_TRAINING_INPUTS.masks, 'float32', ['NG', 1, 'H', 'W']),
      keypoints: lazy(GT_TRAINING_INPUTS.keypoints, 'float32', ['N', 'G', config.KRCNN.NUM_KEYPOINTS, 3]),
    };
    const buildTargets = rpnTraining.buildTargets ?? ((): never => { throw missingGraphTargets(SLOTS.rpnHead, rpn.name); })();
    // The proposal pass inside this graph: the RPN's inference part with the training top-n. Its
    // taps stay local (the loss part taps the same names); its weights are the trainable ones
    // (one input per parameter, read twice); nothing of it reaches a loss but through the
    // StopGradient of the RoI sample.
    const proposalTaps = new Map<string, Blob>();
    const proposalCtx: BuildContext = { ...(ctx as BuildContext), config: trainingProposalConfig(config), tap: (name: string, blob: Blob) => void proposalTaps.set(name, blob) };
    proposals = g.withScope('proposal_pass', () => rpn.value.build(proposalCtx, rpnFeatures));
    const anchors = proposalTaps.get('rpn.anchors');
    if (!anchors) throw new ConfigError(`the RPN head "${rpn.name}" taps no rpn.anchors: its targets cannot be built in the graph`, { key: 'TRAIN.PROPOSALS_IN_GRAPH', hint: 'set TRAIN.PROPOSALS_IN_GRAPH false' });
    const keys = ctx.input(GT_TRAINING_INPUTS.rpnKeys, 'float32', ['N', 'A_keys']);
    const built = g.withScope('rpn', () => buildTargets(ctx, { anchors, gt: gt!, keys }));
    for (const [name, blob] of Object.entries(built)) provided.set(name, blob);
  }
  rpnLosses.push(...g.withScope('rpn', () => rpnTraining.buildLosses(ctx, rpnFeatures)));

  // 3. Box head, then mask and keypoint heads, on the sampled RoIs.
  let boxTraining: RoiBoxOutputsTraining | undefined;
  const roiHeads: RoiHeadTraining[] = [];
  if (!config.MODEL.RPN_ONLY) {
    const roiFeatures = fpn ? levels(config.FPN.ROI_MIN_LEVEL, config.FPN.ROI_MAX_LEVEL, 'RoI heads') : features.slice(-1);
    const boxHead = resolveImplementation(container, SLOTS.roiBoxHead, config.FAST_RCNN.ROI_BOX_HEAD);
    const boxOutputs = resolveImplementation(container, SLOTS.roiBoxOutputs, config.FAST_RCNN.OUTPUTS);
    resolved[SLOTS.roiBoxHead.id] = boxHead.name;
    resolved[SLOTS.roiBoxOutputs.id] = boxOutputs.name;
    boxTraining = boxOutputs.value.training ?? ((): never => { throw missingTraining(SLOTS.roiBoxOutputs, boxOutputs.name); })();
    // The mask and keypoint heads train on the positive RoIs.
    type Slot = { readonly id: string; readonly title: string; readonly configKey: string };
    const roiHeadParts: { slot: Slot; name: string; scope: string; training: RoiHeadTraining }[] = [];
    const addRoiHead = (slot: Slot, scope: string, impl: { name: string; value: { training?: RoiHeadTraining } }): void => {
      resolved[slot.id] = impl.name;
      const training = impl.value.training ?? ((): never => { throw missingTraining(slot, impl.name); })();
      roiHeadParts.push({ slot, name: impl.name, scope, training });
    };
    if (config.MODEL.MASK_ON) addRoiHead(SLOTS.roiMaskHead, 'mask_head', resolveImplementation(container, SLOTS.roiMaskHead, config.MRCNN.ROI_MASK_HEAD));
    if (config.MODEL.KEYPOINTS_ON) addRoiHead(SLOTS.roiKeypointHead, 'keypoint_head', resolveImplementation(container, SLOTS.roiKeypointHead, config.KRCNN.ROI_KEYPOINTS_HEAD));

    // Targets in the graph: the RoI sample and every head's targets, before the heads declare them.
    if (inGraph) {
      const roiKeys = ctx.input(GT_TRAINING_INPUTS.roiKeys, 'float32', ['N', 'K_keys']);
      const sample = sampleRoisGraph(g, proposals!, gt!, roiKeys, config);
      const sampled: readonly (readonly [string, Blob])[] = [
        [ROI_TRAINING_INPUTS.boxes, sample.sampled.boxes],
        [ROI_TRAINING_INPUTS.batchIndex, sample.sampled.batchIndex],
        [ROI_TRAINING_INPUTS.labels, sample.sampled.labels],
        [ROI_TRAINING_INPUTS.positiveBoxes, sample.positives.boxes],
        [ROI_TRAINING_INPUTS.positiveBatchIndex, sample.positives.batchIndex],
        [ROI_TRAINING_INPUTS.positiveLabels, sample.positives.labels],
      ];
      for (const [name, blob] of sampled) provided.set(name, blob);
      const parts: { slot: Slot; name: string; training: RoiBoxOutputsTraining | RoiHeadTraining }[] = [{ slot: SLOTS.roiBoxOutputs, name: boxOutputs.name, training: boxTraining }, ...roiHeadParts];
      for (const part of parts) {
        const build = part.training.buildTargets ?? ((): never => { throw missingGraphTargets(part.slot, part.name); })();
        for (const [name, blob] of Object.entries(build.call(part.training, ctx, sample))) provided.set(name, blob);
      }
    }
    const rois: TrainingRois = {
      boxes: ctx.input(ROI_TRAINING_INPUTS.boxes, 'float32', ['R', 4]),
      batchIndex: ctx.input(ROI_TRAINING_INPUTS.batchIndex, 'int64', ['R']),
      labels: ctx.input(ROI_TRAINING_INPUTS.labels, 'int64', ['R']),
    };
    const head = g.withScope('box_head', () => boxHead.value.build(ctx, roiFeatures, rois));
    const trainBox = boxTraining;
    roiLosses.push(...g.withScope('box_outputs', () => trainBox.buildLosses(ctx, head, rois)));

    if (roiHeadParts.length > 0) {
      const positives: TrainingRois = {
        boxes: ctx.input(ROI_TRAINING_INPUTS.positiveBoxes, 'float32', ['Rp', 4]),
        batchIndex: ctx.input(ROI_TRAINING_INPUTS.positiveBatchIndex, 'int64', ['Rp']),
        labels: ctx.input(ROI_TRAINING_INPUTS.positiveLabels, 'int64', ['Rp']),
      };
      for (const part of roiHeadParts) {
        roiHeads.push(part.training);
        roiLosses.push(...g.withScope(part.scope, () => part.training.buildLosses(ctx, roiFeatures, positives)));
      }
    }
  }

  // 4. Losses as outputs, and their sum in torchvision's loss-dict order.
  const losses = [...roiLosses, ...rpnLosses];
  const outputs: ModelOutput[] = [];
  const seen = new Set<string>();
  for (const l of losses) {
    if (seen.has(l.name)) throw new ConfigError(`two stages add a loss named "${l.name}"`);
    seen.add(l.name);
    g.output(l.blob, lossOutputName(l.name), 'float32', []);
    outputs.push({ name: lossOutputName(l.name), dtype: 'float32', dims: [] });
  }
  const total = g.withScope('loss_total', () => losses.slice(1).reduce((acc, l, i) => ops.add(g, acc, l.blob, `sum${i}`), at(losses, 0, 'losses').blob));
  g.output(total, TOTAL_LOSS, 'float32', []);
  outputs.push({ name: TOTAL_LOSS, dtype: 'float32', dims: [] });

  // 5. The backward: trainable parameters become inputs, grad.<key> outputs.
  const parameters = new Map<string, HostTensor>();
  const gradientOutputs: string[] = [];
  if (withGradients) {
    for (const [, tensor] of g.listInitializers()) {
      if (!(tensor.data instanceof Float32Array)) continue;
      const key = weights.keyOfData(tensor.data);
      if (key !== undefined && weights.isTrainable(key)) parameters.set(key, tensor);
    }
    const inputs = exposeTrainableParameters(g, weights);
    g.withScope('backward', () => addParameterGradients(g, { loss: total, parameters: inputs }));
    for (const p of inputs) {
      gradientOutputs.push(`grad.${p.key}`);
      // As the backward declared it (the parameter's shape).
      const declared = g.declaredOutputs.find((o) => o.name === `grad.${p.key}`);
      outputs.push({ name: `grad.${p.key}`, dtype: 'float32', dims: [...(declared?.dims ?? [])] });
    }
  }

  const exposed: TapSpec[] = [];
  if (options.intermediates) {
    // Only the fixture-named `train.*` intermediates: the inference-named taps the shared stage
    // code also makes (`rpn.objectness.*`, …) belong to the inference graph's dumps.
    for (const t of taps) {
      if (!t.name.startsWith('train.')) continue;
      g.output(tapBlobs.get(t.name)!, t.name, t.dtype, t.dims);
      exposed.push(t);
    }
  }

  let bytes: Uint8Array | undefined;
  return {
    config,
    graph: g,
    outputs,
    lossNames: losses.map((l) => l.name),
    taps: exposed,
    targetInputs,
    resolved,
    parameters,
    gradientOutputs,
    targets: trainingTargets({ config, rpnTraining, boxTraining, roiHeads, targetInputs }),
    targetsInGraph: inGraph,
    rpnKeyWidth: rpnKeyWidthOf(config, rpnFeatures),
    toBytes() {
      bytes ??= g.toModelProto({ passes: TRAINING_PASSES, metadata: { 'rcnn.config': JSON.stringify(config), 'rcnn.kind': 'training' } });
      return bytes;
    },
  };
}
