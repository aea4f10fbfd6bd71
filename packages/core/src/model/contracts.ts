/**
 * The typed contracts between the stages of the model, one interface per slot. A stage receives
 * blobs with their bookkeeping (channels, spatial scale — Detectron's `dim_conv, spatial_scale_conv`)
 * and returns blobs with theirs; stages never reach back into each other.
 *
 * Tensor layouts (N images, K proposal slots per image, R = N*K RoIs, D detections in all):
 * - images [N,3,Hp,Wp] float32 (normalised, resized, zero-padded); image sizes [N,2] int64 (h, w).
 * - proposals [N,K,4] float32 (x1,y1,x2,y2) in resized-image pixels, sorted by score per image;
 *   slots at and after an image's count are padding (valid = false).
 * - detections are flattened over the batch: [D,…] with a non-decreasing batch index [D] int64.
 */
import type { DependencyContainer } from 'tsyringe';
import type { RcnnConfig } from '../config/config.js';
import type { Blob, Dim, GraphBuilder } from '../graph/builder.js';
import type { BalancedSample } from '../training/matching.js';
import type { ResizedTargets } from '../training/targets.js';
import type { GroundTruthBlobs, RoiGraphSample } from '../training/graph-sampling.js';
import type { DataType, HostTensor } from '../graph/dtypes.js';
import type { WeightStore } from '../weights/store.js';

/** One feature map and its bookkeeping. */
export interface FeatureMap {
  /** torchvision's name of the level (`'0'`..`'3'`, `'pool'`); reference tensors are `backbone.<name>`. */
  readonly name: string;
  /** [N, channels, H/stride, W/stride] float32. */
  readonly blob: Blob;
  /** Number of channels. */
  readonly channels: number;
  /** 1 / stride relative to the padded input (Detectron's spatial_scale). */
  readonly spatialScale: number;
  /** Pyramid level log2(stride) (P2 = 2); used for FPN level narrowing and RoI level mapping. */
  readonly level: number;
}

/** Feature maps ordered from finest to coarsest. */
export type FeatureMaps = readonly FeatureMap[];

/** Graph inputs describing the image batch. */
export interface ImageBatch {
  /** [N,3,Hp,Wp] float32. */
  readonly images: Blob;
  /** [N,2] int64: (h, w) of each image after resizing, before padding. */
  readonly imageSizes: Blob;
  /** [N,2] int64: (h, w) of each original image. */
  readonly originalSizes: Blob;
}

/** Proposals per image, padded to a common K. */
export interface Proposals {
  /** [N,K,4] float32, resized-image coordinates, sorted by score within each image. */
  readonly boxes: Blob;
  /** [N,K] float32 sigmoid(objectness); padding slots hold -inf. */
  readonly scores: Blob;
  /** [N,K] bool: slot holds a real proposal. */
  readonly valid: Blob;
  /** [N] int64: number of real proposals of each image. */
  readonly counts: Blob;
}

/** RoIs in RoiAlign's layout. */
export interface Rois {
  /** [R,4] float32 (x1,y1,x2,y2) in resized-image coordinates. */
  readonly boxes: Blob;
  /** [R] int64 image index of each RoI. */
  readonly batchIndex: Blob;
}

/** Final detections, flattened over the batch. */
export interface Detections {
  /** [D,4] float32 in resized-image coordinates. */
  readonly boxes: Blob;
  /** [D] float32. */
  readonly scores: Blob;
  /** [D] int64, 1..NUM_CLASSES-1 (0 = background never appears). */
  readonly labels: Blob;
  /** [D] int64, non-decreasing. */
  readonly batchIndex: Blob;
}

/** Where an intermediate tensor's rows come from, so a dump can split/select rows per image. */
export type TapLayout =
  /** Written as is. */
  | 'whole'
  /** [N, …]: written per image as `<name>.<i>`. */
  | 'per-image'
  /** Identical for every image (e.g. anchors): written once per image as `<name>.<i>`. */
  | 'replicated-per-image'
  /** [N,K,…] proposal slots: written per image as `<name>.<i>`, first counts[i] rows. */
  | 'per-image-proposals'
  /** [N*K,…] one row per proposal slot: written as one tensor of the valid rows, in image order. */
  | 'proposal-rows'
  /** [D,…] one row per detection: written per image as `<name>.<i>` by batch index. */
  | 'per-image-detections';

/** An intermediate tensor a stage exposes for `--dump-intermediates` and parity tests. */
export interface TapSpec {
  /** Fixture name, e.g. `rpn.objectness.0`, `roi.box_features`. */
  readonly name: string;
  readonly dtype: DataType;
  readonly layout: TapLayout;
  /**
   * Shape of the tensor, as declared on the graph output (symbolic names for run-time sizes: `N`
   * images, `P` proposal slots per image, `R` RoI rows (N*P), `D` detections, `H_<level>` /
   * `W_<level>` a feature level's size, …; docs/serving.md).
   */
  readonly dims: readonly Dim[];
}

/**
 * What every stage's `build` receives: the graph, the config, the weights, the DI container of
 * this replica, and `tap` to expose intermediates.
 */
export interface BuildContext {
  readonly graph: GraphBuilder;
  readonly config: RcnnConfig;
  readonly weights: WeightStore;
  readonly container: DependencyContainer;
  /** Graph inputs of the image batch (available to every stage, e.g. for clipping). */
  readonly batch: ImageBatch;
  /**
   * Exposes `blob` as the intermediate `name` (a graph output only in builds with intermediates),
   * of element type `dtype` and shape `dims` (every graph output declares its rank; use the
   * symbolic names of {@link TapSpec.dims}).
   */
  tap(name: string, blob: Blob, dtype: DataType, layout: TapLayout, dims: readonly Dim[]): void;
}

/** Slot `conv-body` (MODEL.CONV_BODY). */
export interface ConvBody {
  /** Builds the body on `images`; returns its output feature maps (finest to coarsest). */
  build(ctx: BuildContext, images: Blob): FeatureMaps;
  /** True when the output is a feature pyramid (FPN.FPN_ON must agree). */
  readonly isFpn: boolean;
  /** State-dict prefixes the body owns (`backbone.`), for weight-usage checks. */
  readonly weightPrefixes: readonly string[];
}

/** Slot `fpn` (FPN.IMPL): a pyramid over a bottom-up body's outputs. */
export interface FeaturePyramid {
  build(ctx: BuildContext, bottomUp: FeatureMaps): FeatureMaps;
}

/** Slot `rpn-head` (RPN.HEAD): RPN head, anchors and proposal generation for the given levels. */
export interface RpnHead {
  build(ctx: BuildContext, features: FeatureMaps): Proposals;
  readonly weightPrefixes: readonly string[];
  /** Training part: anchor targets and sampling on the host, the RPN losses in the graph. */
  readonly training?: RpnHeadTraining;
}

/** The representation a box head produces for each RoI. */
export interface BoxHeadOutput {
  /** [R, dim] float32. */
  readonly features: Blob;
  readonly dim: number;
}

/** Slot `roi-box-head` (FAST_RCNN.ROI_BOX_HEAD): pools RoI features and maps them to a vector. */
export interface RoiBoxHead {
  build(ctx: BuildContext, features: FeatureMaps, rois: Rois): BoxHeadOutput;
  readonly weightPrefixes: readonly string[];
}

/** Slot `roi-box-outputs` (FAST_RCNN.OUTPUTS): class scores, box deltas and detection post-processing. */
export interface RoiBoxOutputs {
  build(ctx: BuildContext, head: BoxHeadOutput, proposals: Proposals): Detections;
  readonly weightPrefixes: readonly string[];
  /** Training part: box regression targets of the sampled RoIs, classifier and box losses. */
  readonly training?: RoiBoxOutputsTraining;
}

/** Slot `roi-mask-head` (MRCNN.ROI_MASK_HEAD). */
export interface RoiMaskHead {
  /** Returns [D,1,M,M] float32 mask probabilities of each detection's class. */
  build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly maskProbs: Blob };
  readonly weightPrefixes: readonly string[];
  /** Host post-processor (slot host-postprocessor) that pastes the masks. */
  readonly hostPostprocessor: string;
  /** Training part: mask targets of the positive RoIs and the mask loss. */
  readonly training?: RoiHeadTraining;
}

/** Slot `roi-keypoint-head` (KRCNN.ROI_KEYPOINTS_HEAD). */
export interface RoiKeypointHead {
  /** Returns [D,K,S,S] float32 heatmap logits of each detection. */
  build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly heatmaps: Blob };
  readonly weightPrefixes: readonly string[];
  /** Host post-processor (slot host-postprocessor) that decodes the heatmaps. */
  readonly hostPostprocessor: string;
  /** Training part: heatmap targets of the positive RoIs and the keypoint loss. */
  readonly training?: RoiHeadTraining;
}

/** An RGB (or gray/RGBA, converted) image as decoded pixels. */
export interface RgbImage {
  /** Interleaved HWC, 3 channels, RGB order. */
  readonly data: Uint8Array | Float32Array;
  readonly width: number;
  readonly height: number;
  /**
   * Value of full intensity: 255 for 8-bit data; 1 for float data already in [0, 1].
   */
  readonly maxValue: number;
}

/** The network input for a batch, made on the host. */
export interface PreparedBatch {
  /** [N,3,Hp,Wp]. */
  readonly images: HostTensor<'float32'>;
  /** [N,2] (h, w) after resizing. */
  readonly imageSizes: HostTensor<'int64'>;
  /** [N,2] (h, w) of the originals. */
  readonly originalSizes: HostTensor<'int64'>;
}

/** Slot `image-transform` (INPUT.TRANSFORM): decoded images to the network input. */
export interface ImageTransform {
  prepare(images: readonly RgbImage[], config: RcnnConfig): PreparedBatch;
}

/** Detections of one image as host arrays, in original-image pixels. */
export interface ImageDetections {
  readonly imageIndex: number;
  /** (h, w) of the original image. */
  readonly originalSize: readonly [number, number];
  /** (h, w) after resizing. */
  readonly resizedSize: readonly [number, number];
  /** [D*4] (x1,y1,x2,y2) original pixels. */
  readonly boxes: Float32Array;
  /** [D*4] resized-image pixels. */
  readonly boxesResized: Float32Array;
  /** [D]. */
  readonly scores: Float32Array;
  /** [D] class indices (torchvision's, 1..NUM_CLASSES-1). */
  readonly labels: Int32Array;
  /** Extra per-detection fields added by host post-processors: use `getExtra`/`setExtra` with a typed key (`EXTRA_KEYS.masks`, `EXTRA_KEYS.keypoints`). */
  readonly extras: Map<string, unknown>;
}

/** Raw session outputs by output name. */
export type RawOutputs = ReadonlyMap<string, HostTensor>;

/** Slot `host-postprocessor`: turns raw graph outputs into per-image results (mask pasting, keypoint decoding). */
export interface HostPostprocessor {
  /** Adds this head's results to each image's `extras` with `setExtra`; `rows[i]` are image i's rows of the [D,…] outputs. */
  apply(outputs: RawOutputs, images: readonly ImageDetections[], rows: readonly (readonly [number, number])[], config: RcnnConfig): void;
}

// ---------------------------------------------------------------------------------------------
// Training parts of the slots (train mode, docs/training.md). A head trains when its registry
// value has a `training` member: `targets` runs on the host (matching, sampling, target
// encoding: nothing there carries a gradient) and returns the feeds of the graph inputs that
// `buildLosses` declares with `ctx.input`, plus fixture-named intermediates for dumps.
// ---------------------------------------------------------------------------------------------

/** What a training part's host side returns. */
export interface HostTargets {
  /** Feeds of the graph inputs its `buildLosses` declared, by input name. */
  readonly feeds: Readonly<Record<string, HostTensor>>;
  /** Intermediates by fixture name (`train.rpn.matched_gt.0`, …) for `--dump-intermediates`. */
  readonly intermediates: Readonly<Record<string, HostTensor>>;
}

/** One loss of the training graph: a float32 scalar named like torchvision's loss dict (`objectness` -> output `loss.objectness`). */
export interface LossTerm {
  readonly name: string;
  readonly blob: Blob;
}

/** The build context of the training graph: also declares host-fed inputs (targets). */
export interface TrainingBuildContext extends BuildContext {
  /** Declares a graph input fed by the host side's `feeds[name]`. */
  input(name: string, dtype: DataType, dims: readonly Dim[]): Blob;
}

/** Where a balanced sample comes from: drawn with `rand`, or recorded samples injected per image. */
export interface SamplingSource {
  readonly rand: () => number;
  /** One recorded sample per image (parity runs replay torchvision's); undefined = draw. */
  readonly injected?: readonly BalancedSample[];
}

/** Host input of the RPN's training targets. */
export interface RpnTargetInput {
  /** [A*4] anchors over the padded batch, the same for every image, in the order of the head's flattened outputs. */
  readonly anchors: Float32Array;
  /** Resized GT of each image. */
  readonly targets: readonly ResizedTargets[];
  readonly sampling: SamplingSource;
}

/**
 * Graph values the RPN's in-graph targets build on (TRAIN.PROPOSALS_IN_GRAPH): the anchors the
 * proposal pass made over this graph's features, the ground truth, and the sampler keys.
 */
export interface RpnGraphTargetInput {
  /** [A,4] anchors, shared by every image, in the order of the head's flattened outputs. */
  readonly anchors: Blob;
  readonly gt: GroundTruthBlobs;
  /** [N, ≥A] float32 keys of the balanced sampler (`train.rpn.sample_keys`). */
  readonly keys: Blob;
}

/** Training part of slot rpn-head. */
export interface RpnHeadTraining {
  targets(input: RpnTargetInput, config: RcnnConfig): HostTargets;
  /**
   * The same targets as {@link targets}, built in the graph (TRAIN.PROPOSALS_IN_GRAPH): the value
   * of every graph input that {@link buildLosses} declares, by input name. Optional: without it the
   * model trains with the host targets (two sessions per step).
   */
  buildTargets?(ctx: TrainingBuildContext, input: RpnGraphTargetInput): Readonly<Record<string, Blob>>;
  /** The RPN losses (torchvision: `objectness`, `rpn_box_reg`) on the head's outputs over `features`. */
  buildLosses(ctx: TrainingBuildContext, features: FeatureMaps): readonly LossTerm[];
}

/** The RoI sample of one image (core's host-side RoI matching and sampling). */
export interface RoiImageSample {
  /** [(P+G)*4] proposals with the GT boxes appended (TRAIN.ADD_GT_PROPOSALS). */
  readonly rows: Float32Array;
  /** [P+G] Matcher result: GT index, -1 background, -2 ignored. */
  readonly matchedGt: Int32Array;
  /** [P+G] class of each row: GT label, 0 background, -1 ignored. */
  readonly labels: Int32Array;
  /** Ascending indices of the sampled rows (positives and negatives interleaved): the sampled order. */
  readonly sampled: Int32Array;
  /** The sampled rows with label > 0, in sampled order. */
  readonly positives: Int32Array;
}

/** Host input of the RoI heads' training targets. */
export interface RoiTargetInput {
  readonly samples: readonly RoiImageSample[];
  readonly targets: readonly ResizedTargets[];
}

/** RoIs of the training graph (graph inputs fed from the RoI sample), with their class. */
export interface TrainingRois extends Rois {
  /** [R] int64 class of each RoI (0 = background). */
  readonly labels: Blob;
}

/** Training part of slot roi-box-outputs. */
export interface RoiBoxOutputsTraining {
  targets(input: RoiTargetInput, config: RcnnConfig): HostTargets;
  /** {@link targets} built in the graph on the graph's RoI sample (TRAIN.PROPOSALS_IN_GRAPH), by graph input name; optional. */
  buildTargets?(ctx: TrainingBuildContext, sample: RoiGraphSample): Readonly<Record<string, Blob>>;
  /** Losses (torchvision: `classifier`, `box_reg`) on the box head's output for the sampled RoIs (image order, sampled order). */
  buildLosses(ctx: TrainingBuildContext, head: BoxHeadOutput, rois: TrainingRois): readonly LossTerm[];
}

/** Training part of slots roi-mask-head and roi-keypoint-head: they see the positive sampled RoIs only. */
export interface RoiHeadTraining {
  targets(input: RoiTargetInput, config: RcnnConfig): HostTargets;
  /** {@link targets} built in the graph on the graph's RoI sample (TRAIN.PROPOSALS_IN_GRAPH), by graph input name; optional. */
  buildTargets?(ctx: TrainingBuildContext, sample: RoiGraphSample): Readonly<Record<string, Blob>>;
  buildLosses(ctx: TrainingBuildContext, features: FeatureMaps, positives: TrainingRois): readonly LossTerm[];
}
