/**
 * The seed function's train branch (Detectron `_single_gpu_build_func` with `model.train`): the
 * same stages as {@link buildModel}, resolved from the registry by the same config names, each
 * adding its losses through its slot's `training` part, in the seed's order: conv body → RPN and
 * its losses → FPN level narrowing → box head and its losses unless RPN-only → mask head and
 * keypoint head and theirs. Outputs `loss.<name>` per loss and `loss.total`, their sum in
 * torchvision's loss-dict order (RoI heads first, then the RPN).
 *
 * Targets and sampling are host work ({@link BuiltTrainingModel.targets}); the graph takes them as
 * inputs. The RPN's proposals are not computed here: torchvision detaches them, so they come from
 * the inference graph's RPN (with the TRAIN top-n) or are injected, and the RoI sample built on
 * them on the host is fed in.
 */
import type { DependencyContainer } from 'tsyringe';
import type { RcnnConfig } from '../config/config.js';
import { ConfigError, at } from '../errors.js';
import { type Blob, type Dim, GraphBuilder } from '../graph/builder.js';
import type { DataType, HostTensor } from '../graph/dtypes.js';
import * as ops from '../graph/onnx-ops.js';
import { addParameterGradients, exposeTrainableParameters, trainableParameters } from '../autodiff/index.js';
import { SLOTS, replicaInfo, resolveImplementation } from '../registry/registry.js';
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
  /** Every stage's host side: the feeds of {@link targetInputs} and the `train.*` intermediates. */
  targets(input: TrainingTargetInput): HostTargets;
  toBytes(): Uint8Array;
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
    : options.featureInputs
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
    const rois: TrainingRois = {
      boxes: ctx.input(ROI_TRAINING_INPUTS.boxes, 'float32', ['R', 4]),
      batchIndex: ctx.input(ROI_TRAINING_INPUTS.batchIndex, 'int64', ['R']),
      labels: ctx.input(ROI_TRAINING_INPUTS.labels, 'int64', ['R']),
    };
    const head = g.withScope('box_head', () => boxHead.value.build(ctx, roiFeatures, rois));
    const trainBox = boxTraining;
    roiLosses.push(...g.withScope('box_outputs', () => trainBox.buildLosses(ctx, head, rois)));

    const needsPositives = config.MODEL.MASK_ON || config.MODEL.KEYPOINTS_ON;
    const positives: TrainingRois | undefined = needsPositives
      ? {
          boxes: ctx.input(ROI_TRAINING_INPUTS.positiveBoxes, 'float32', ['Rp', 4]),
          batchIndex: ctx.input(ROI_TRAINING_INPUTS.positiveBatchIndex, 'int64', ['Rp']),
          labels: ctx.input(ROI_TRAINING_INPUTS.positiveLabels, 'int64', ['Rp']),
        }
      : undefined;
    if (config.MODEL.MASK_ON && positives) {
      const maskHead = resolveImplementation(container, SLOTS.roiMaskHead, config.MRCNN.ROI_MASK_HEAD);
      resolved[SLOTS.roiMaskHead.id] = maskHead.name;
      const training = maskHead.value.training ?? ((): never => { throw missingTraining(SLOTS.roiMaskHead, maskHead.name); })();
      roiHeads.push(training);
      roiLosses.push(...g.withScope('mask_head', () => training.buildLosses(ctx, roiFeatures, positives)));
    }
    if (config.MODEL.KEYPOINTS_ON && positives) {
      const kpHead = resolveImplementation(container, SLOTS.roiKeypointHead, config.KRCNN.ROI_KEYPOINTS_HEAD);
      resolved[SLOTS.roiKeypointHead.id] = kpHead.name;
      const training = kpHead.value.training ?? ((): never => { throw missingTraining(SLOTS.roiKeypointHead, kpHead.name); })();
      roiHeads.push(training);
      roiLosses.push(...g.withScope('keypoint_head', () => training.buildLosses(ctx, roiFeatures, positives)));
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
    toBytes() {
      bytes ??= g.toModelProto({ passes: [], metadata: { 'rcnn.config': JSON.stringify(config), 'rcnn.kind': 'training' } });
      return bytes;
    },
  };
}
