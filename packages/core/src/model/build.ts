/**
 * The seed function: Detectron's `build_generic_detection_model` re-made over the DI registry.
 * Every stage is resolved by its config name; nothing here imports a head.
 */
import type { DependencyContainer } from 'tsyringe';
import type { RcnnConfig } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { type Blob, type Dim, GraphBuilder } from '../graph/builder.js';
import type { DataType } from '../graph/dtypes.js';
import * as ops from '../graph/onnx-ops.js';
import { batchIndexGrid, originalScaleFactors, proposalsToRois } from '../detection/batch.js';
import { SLOTS, replicaInfo, resolveImplementation } from '../registry/registry.js';
import type { WeightStore } from '../weights/store.js';
import type { BuildContext, Detections, FeatureMaps, ImageBatch, Proposals, TapLayout, TapSpec } from './contracts.js';
import { DIMS, featureMapDims } from './dims.js';
import { MODEL_INPUTS, MODEL_METADATA, PROPOSAL_OUTPUTS, DETECTION_OUTPUTS } from './names.js';

export { DETECTION_OUTPUTS, MODEL_INPUTS, MODEL_METADATA, PROPOSAL_OUTPUTS } from './names.js';

/** A declared output of a built model. */
export interface ModelOutput {
  readonly name: string;
  readonly dtype: DataType;
  /** Declared shape (symbolic names from {@link DIMS} for run-time sizes). */
  readonly dims: readonly Dim[];
}

/** Options of {@link buildModel}. */
export interface BuildOptions {
  /** Also output every tapped intermediate (`backbone.*`, `rpn.*`, `roi.*`) for dumps and parity tests. */
  readonly intermediates?: boolean;
  /** Name scope of this replica's graph (default: the container's replica scope, else none). */
  readonly scope?: string;
  /** Fail when the weights hold tensors the model does not use (default false: they are reported). */
  readonly strictWeights?: boolean;
  /**
   * `float16`: the serialised model runs its conv stages (convs, deconvs, fully connected layers
   * and the ReLU / Add / pooling / resize between them) in float16 with float16 weights; box
   * arithmetic, RoIAlign, NMS and every input and output stay float32. A GPU option: onnxruntime's
   * CPU provider has few float16 kernels (it inserts casts around the others), so on CPU it is
   * slower, and results differ from float32 by float16 rounding. Default `float32`.
   */
  readonly precision?: 'float32' | 'float16';
}

/** A model assembled by {@link buildModel}. */
export interface BuiltModel {
  readonly config: RcnnConfig;
  /** `detections` for Faster/Mask/Keypoint R-CNN, `proposals` for RPN-only. */
  readonly kind: 'detections' | 'proposals';
  readonly graph: GraphBuilder;
  readonly outputs: readonly ModelOutput[];
  /** Intermediates exposed as outputs (only with `intermediates: true`). */
  readonly taps: readonly TapSpec[];
  /** Host post-processors (slot host-postprocessor) the runtime applies, in order. */
  readonly hostPostprocessors: readonly string[];
  /** TRAIN.FREEZE_CONV_BODY: the conv body's outputs pass through `stopGradient` (no effect on inference). */
  readonly frozenConvBody: boolean;
  /** Description of the weights (file or random seed) and whether they are random. */
  readonly weights: { readonly description: string; readonly random: boolean; readonly unusedKeys: readonly string[] };
  /** The registry names that were resolved for each slot. */
  readonly resolved: Readonly<Record<string, string>>;
  /** ModelProto bytes (serialised once, on first call). */
  toBytes(): Uint8Array;
}

function createContext(
  g: GraphBuilder,
  config: RcnnConfig,
  weights: WeightStore,
  container: DependencyContainer,
  batch: ImageBatch,
  taps: TapSpec[],
  tapBlobs: Map<string, Blob>,
): BuildContext {
  return {
    graph: g,
    config,
    weights,
    container,
    batch,
    tap(name, blob, dtype, layout: TapLayout, dims: readonly Dim[]) {
      if (tapBlobs.has(name)) throw new ConfigError(`intermediate "${name}" is tapped twice`);
      taps.push({ name, dtype, layout, dims: [...dims] });
      tapBlobs.set(name, blob);
    },
  };
}

function declareInputs(g: GraphBuilder): ImageBatch {
  return {
    images: g.input(MODEL_INPUTS.images, 'float32', [DIMS.images, 3, DIMS.height, DIMS.width]),
    imageSizes: g.input(MODEL_INPUTS.imageSizes, 'int64', [DIMS.images, 2]),
    originalSizes: g.input(MODEL_INPUTS.originalSizes, 'int64', [DIMS.images, 2]),
  };
}

/** Builds the conv body (with FPN when its name says so) and checks FPN.FPN_ON against it. */
function buildConvBody(ctx: BuildContext, resolved: Record<string, string>): FeatureMaps {
  const { config, container, graph: g } = ctx;
  const body = resolveImplementation(container, SLOTS.convBody, config.MODEL.CONV_BODY);
  resolved[SLOTS.convBody.id] = body.name;
  if (body.value.isFpn !== config.FPN.FPN_ON) {
    throw new ConfigError(
      `FPN.FPN_ON is ${config.FPN.FPN_ON} but MODEL.CONV_BODY "${config.MODEL.CONV_BODY}" ${body.value.isFpn ? 'is' : 'is not'} an FPN body`,
      { key: 'FPN.FPN_ON', hint: `set FPN.FPN_ON=${body.value.isFpn}` },
    );
  }
  const features = g.withScope('conv_body', () => body.value.build(ctx, ctx.batch.images));
  if (features.length === 0) throw new ConfigError(`conv body "${body.name}" produced no feature maps`);
  if (!ctx.config.TRAIN.FREEZE_CONV_BODY) return features;
  // Detectron: StopGradient on every blob_conv, so no backward ever reaches the body (or FPN).
  return g.withScope('conv_body', () => features.map((f) => ({ ...f, blob: g.stopGradient(f.blob, `frozen_${f.name}`) })));
}

/** The proposals with their boxes and scores behind a stopGradient (no backward into the RPN's box decoding). */
export function detachProposals(g: GraphBuilder, proposals: Proposals): Proposals {
  return { ...proposals, boxes: g.stopGradient(proposals.boxes, 'detached_boxes'), scores: g.stopGradient(proposals.scores, 'detached_scores') };
}

/** Detectron's `_narrow_to_fpn_roi_levels` (and the RPN's level range). */
function levelsBetween(features: FeatureMaps, min: number, max: number, what: string): FeatureMaps {
  const picked = features.filter((f) => f.level >= min && f.level <= max);
  if (picked.length === 0) {
    throw new ConfigError(`no feature level in [${min}, ${max}] for the ${what}; the body has levels ${features.map((f) => f.level).join(', ')}`);
  }
  return picked;
}

/**
 * Assembles the model Detectron-style: conv body → (features-only net is {@link buildFeaturesNet})
 * → RPN if on → narrow FPN levels → box head unless RPN-only → mask head if MASK_ON → keypoint
 * head if KEYPOINTS_ON. Each stage comes from the registry by its config name.
 */
export function buildModel(config: RcnnConfig, container: DependencyContainer, weights: WeightStore, options: BuildOptions = {}): BuiltModel {
  const scope = options.scope ?? replicaInfo(container)?.scope;
  const g = new GraphBuilder({ name: 'rcnn', ...(scope ? { scope } : {}) });
  const batch = declareInputs(g);
  const taps: TapSpec[] = [];
  const tapBlobs = new Map<string, Blob>();
  const ctx = createContext(g, config, weights, container, batch, taps, tapBlobs);
  const resolved: Record<string, string> = {};
  const outputs: ModelOutput[] = [];
  const hostPostprocessors: string[] = [];
  const out = (blob: Blob, name: string, dtype: DataType, dims: readonly Dim[]): void => {
    g.output(blob, name, dtype, dims);
    outputs.push({ name, dtype, dims });
  };
  const { images: N, proposals: P, detections: D } = DIMS;

  // 1. Conv body (+ FPN).
  const features = buildConvBody(ctx, resolved);
  for (const f of features) ctx.tap(`backbone.${f.name}`, f.blob, 'float32', 'whole', featureMapDims(f));
  const fpn = config.FPN.FPN_ON;

  // 2. RPN on its levels.
  const rpnFeatures = fpn ? levelsBetween(features, config.FPN.RPN_MIN_LEVEL, config.FPN.RPN_MAX_LEVEL, 'RPN') : features.slice(-1);
  const rpn = resolveImplementation(container, SLOTS.rpnHead, config.RPN.HEAD);
  resolved[SLOTS.rpnHead.id] = rpn.name;
  // torchvision and Detectron do not backprop through the proposals (`proposals.detach()`): the
  // RoI stages, their sampling and their regression targets treat them as constants.
  const proposals = g.withScope('rpn', () => detachProposals(g, rpn.value.build(ctx, rpnFeatures)));
  ctx.tap('rpn.proposals', proposals.boxes, 'float32', 'per-image-proposals', [N, P, 4]);
  ctx.tap('rpn.proposal_scores', proposals.scores, 'float32', 'per-image-proposals', [N, P]);
  // Dumps of per-image proposal tensors and proposal rows need each image's proposal count.
  ctx.tap(PROPOSAL_OUTPUTS.counts, proposals.counts, 'int64', 'whole', [N]);

  let kind: BuiltModel['kind'] = 'detections';
  if (config.MODEL.RPN_ONLY) {
    kind = 'proposals';
    g.withScope('rpn_outputs', () => {
      const flat = ops.reshape(g, proposals.boxes, [-1, 4], 'flat');
      const rows = ops.reshape(g, batchIndexGrid(g, proposals.boxes), [-1], 'rows');
      const scale = originalScaleFactors(g, batch.imageSizes, batch.originalSizes, rows);
      const original = ops.reshape(g, ops.mul(g, flat, scale), ops.shape(g, proposals.boxes), 'original');
      out(original, PROPOSAL_OUTPUTS.boxes, 'float32', [N, P, 4]);
      out(proposals.boxes, PROPOSAL_OUTPUTS.boxesResized, 'float32', [N, P, 4]);
      out(proposals.scores, PROPOSAL_OUTPUTS.scores, 'float32', [N, P]);
      out(proposals.counts, PROPOSAL_OUTPUTS.counts, 'int64', [N]);
    });
  } else {
    // 3. Box head on the RoI levels.
    const roiFeatures = fpn ? levelsBetween(features, config.FPN.ROI_MIN_LEVEL, config.FPN.ROI_MAX_LEVEL, 'RoI heads') : features.slice(-1);
    const boxHead = resolveImplementation(container, SLOTS.roiBoxHead, config.FAST_RCNN.ROI_BOX_HEAD);
    const boxOutputs = resolveImplementation(container, SLOTS.roiBoxOutputs, config.FAST_RCNN.OUTPUTS);
    resolved[SLOTS.roiBoxHead.id] = boxHead.name;
    resolved[SLOTS.roiBoxOutputs.id] = boxOutputs.name;
    const rois = proposalsToRois(g, proposals);
    const head = g.withScope('box_head', () => boxHead.value.build(ctx, roiFeatures, rois));
    const detections: Detections = g.withScope('box_outputs', () => boxOutputs.value.build(ctx, head, proposals));
    g.withScope('det_outputs', () => {
      const scale = originalScaleFactors(g, batch.imageSizes, batch.originalSizes, detections.batchIndex);
      out(ops.mul(g, detections.boxes, scale, 'boxes_original'), DETECTION_OUTPUTS.boxes, 'float32', [D, 4]);
      out(detections.boxes, DETECTION_OUTPUTS.boxesResized, 'float32', [D, 4]);
      out(detections.scores, DETECTION_OUTPUTS.scores, 'float32', [D]);
      out(detections.labels, DETECTION_OUTPUTS.labels, 'int64', [D]);
      out(detections.batchIndex, DETECTION_OUTPUTS.batchIndex, 'int64', [D]);
    });

    // 4. Mask and keypoint heads on the final detections.
    if (config.MODEL.MASK_ON) {
      const maskHead = resolveImplementation(container, SLOTS.roiMaskHead, config.MRCNN.ROI_MASK_HEAD);
      resolved[SLOTS.roiMaskHead.id] = maskHead.name;
      const { maskProbs } = g.withScope('mask_head', () => maskHead.value.build(ctx, roiFeatures, detections));
      out(maskProbs, DETECTION_OUTPUTS.maskProbs, 'float32', [D, 1, DIMS.maskSize, DIMS.maskSize]);
      hostPostprocessors.push(maskHead.value.hostPostprocessor);
    }
    if (config.MODEL.KEYPOINTS_ON) {
      const kpHead = resolveImplementation(container, SLOTS.roiKeypointHead, config.KRCNN.ROI_KEYPOINTS_HEAD);
      resolved[SLOTS.roiKeypointHead.id] = kpHead.name;
      const { heatmaps } = g.withScope('keypoint_head', () => kpHead.value.build(ctx, roiFeatures, detections));
      out(heatmaps, DETECTION_OUTPUTS.keypointHeatmaps, 'float32', [D, DIMS.keypoints, DIMS.heatmapSize, DIMS.heatmapSize]);
      hostPostprocessors.push(kpHead.value.hostPostprocessor);
    }
  }

  // Intermediates become outputs only when asked for: unused taps are pruned by ORT anyway,
  // but declaring them would keep large tensors alive.
  const exposed: TapSpec[] = [];
  if (options.intermediates) {
    const declared = new Set(outputs.map((o) => o.name));
    for (const t of taps) {
      if (declared.has(t.name)) continue;
      g.output(tapBlobs.get(t.name)!, t.name, t.dtype, t.dims);
      exposed.push(t);
    }
  }

  if (options.strictWeights) weights.assertAllUsed();
  let bytes: Uint8Array | undefined;
  return {
    config,
    kind,
    graph: g,
    outputs,
    taps: exposed,
    hostPostprocessors,
    frozenConvBody: config.TRAIN.FREEZE_CONV_BODY,
    weights: { description: weights.description, random: weights.isRandom, unusedKeys: weights.unusedKeys() },
    resolved,
    toBytes() {
      const float16 = options.precision === 'float16';
      const metadata = {
        [MODEL_METADATA.config]: JSON.stringify(config),
        [MODEL_METADATA.kind]: kind,
        [MODEL_METADATA.hostPostprocessors]: hostPostprocessors.join(','),
        ...(float16 ? { [MODEL_METADATA.precision]: 'float16' } : {}),
      };
      bytes ??= g.toModelProto({ metadata, float16, requireShapes: true });
      return bytes;
    },
  };
}

/** Output name of each level of the features-only net: `features.<level name>`. */
export const featureOutputName = (levelName: string): string => `features.${levelName}`;

/** The features-only net (Detectron's `conv_body_net`). */
export interface BuiltFeaturesNet {
  readonly graph: GraphBuilder;
  /** Levels in output order, with their output names. */
  readonly levels: readonly { readonly output: string; readonly name: string; readonly channels: number; readonly spatialScale: number }[];
  toBytes(): Uint8Array;
}

/**
 * Builds the features-only net: the conv body (and FPN) alone, outputting `features.<name>` for
 * every level. Takes only the `images` input. Uses a fork of the weights so the main model's
 * usage report is unaffected.
 */
export function buildFeaturesNet(config: RcnnConfig, container: DependencyContainer, weights: WeightStore, options: { scope?: string } = {}): BuiltFeaturesNet {
  const scope = options.scope ?? replicaInfo(container)?.scope;
  const g = new GraphBuilder({ name: 'rcnn_features', ...(scope ? { scope } : {}) });
  const images = g.input(MODEL_INPUTS.images, 'float32', [DIMS.images, 3, DIMS.height, DIMS.width]);
  // The body sees only images; image sizes are not inputs of this net, so stages that need them fail loudly.
  const batch: ImageBatch = {
    images,
    get imageSizes(): Blob {
      throw new ConfigError('the features-only net has no image_sizes input: a conv body must not depend on it');
    },
    get originalSizes(): Blob {
      throw new ConfigError('the features-only net has no original_sizes input: a conv body must not depend on it');
    },
  };
  const ctx = createContext(g, config, weights.fork(), container, batch, [], new Map());
  const features = buildConvBody(ctx, {});
  const levels = features.map((f) => {
    const output = featureOutputName(f.name);
    g.output(f.blob, output, 'float32', featureMapDims(f));
    return { output, name: f.name, channels: f.channels, spatialScale: f.spatialScale };
  });
  let bytes: Uint8Array | undefined;
  return {
    graph: g,
    levels,
    toBytes() {
      bytes ??= g.toModelProto({ metadata: { [MODEL_METADATA.config]: JSON.stringify(config), [MODEL_METADATA.kind]: 'features' }, requireShapes: true });
      return bytes;
    },
  };
}
