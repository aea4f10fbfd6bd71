/**
 * Detectron's `fast_rcnn_heads.add_fast_rcnn_outputs` / torchvision's `FastRCNNPredictor`: the
 * class-score and box-regression layers on the box head's representation, followed by the
 * in-graph detection post-processing.
 */
import {
  type Blob,
  type BoxHeadOutput,
  type BuildContext,
  ConfigError,
  DIMS,
  type Detections,
  type HostTargets,
  type HostTensor,
  type Implementation,
  type LossTerm,
  type Proposals,
  type RandomInit,
  type RcnnConfig,
  type RoiBoxOutputs,
  type RoiBoxOutputsTraining,
  type RoiGraphSample,
  type RoiTargetInput,
  type TrainingBuildContext,
  type TrainingRois,
  encodeBox,
  encodeBoxesGraph,
  hostTensor,
  int64Tensor,
  linear,
  losses,
  ops,
} from '@rcnn/core';
import { boxRegressionOutputs, detectionPostprocessOptions, postprocessDetections } from './detection-postprocess.js';

/** State-dict prefix of the predictor's weights (torchvision `roi_heads.box_predictor`). */
export const BOX_PREDICTOR_PREFIX = 'roi_heads.box_predictor.';

/** Random init of cls_score (torchvision's reference init of the predictor: N(0, 0.01²), bias 0). */
export const CLS_SCORE_INIT: RandomInit = { kind: 'normal', std: 0.01 };
/** Random init of bbox_pred (N(0, 0.001²), bias 0): small deltas keep random boxes near their proposals. */
export const BBOX_PRED_INIT: RandomInit = { kind: 'normal', std: 0.001 };

/** cls_score and bbox_pred on the head's representation (inference and training graphs alike). */
function predictor(ctx: BuildContext, head: BoxHeadOutput): { classLogits: ReturnType<typeof linear>; boxRegression: ReturnType<typeof linear> } {
  const { config } = ctx;
  const numClasses = config.MODEL.NUM_CLASSES;
  const classLogits = linear(ctx, head.features, { key: `${BOX_PREDICTOR_PREFIX}cls_score`, inFeatures: head.dim, outFeatures: numClasses, weightInit: CLS_SCORE_INIT });
  const regOutputs = boxRegressionOutputs(numClasses, config.MODEL.CLS_AGNOSTIC_BBOX_REG);
  const boxRegression = linear(ctx, head.features, { key: `${BOX_PREDICTOR_PREFIX}bbox_pred`, inFeatures: head.dim, outFeatures: regOutputs, weightInit: BBOX_PRED_INIT });
  return { classLogits, boxRegression };
}

function buildFastRcnnOutputs(ctx: BuildContext, head: BoxHeadOutput, proposals: Proposals): Detections {
  const { config } = ctx;
  const { classLogits, boxRegression } = predictor(ctx, head);
  ctx.tap('roi.class_logits', classLogits, 'float32', 'proposal-rows', [DIMS.rois, config.MODEL.NUM_CLASSES]);
  ctx.tap('roi.box_regression', boxRegression, 'float32', 'proposal-rows', [DIMS.rois, boxRegressionOutputs(config.MODEL.NUM_CLASSES, config.MODEL.CLS_AGNOSTIC_BBOX_REG)]);
  return postprocessDetections(ctx.graph, { classLogits, boxRegression, proposals, imageSizes: ctx.batch.imageSizes }, detectionPostprocessOptions(config));
}

/** The Fast R-CNN predictor and post-processing as a {@link RoiBoxOutputs}. */
export const fastRcnnOutputs: RoiBoxOutputs = {
  build: buildFastRcnnOutputs,
  weightPrefixes: [BOX_PREDICTOR_PREFIX],
  get training(): RoiBoxOutputsTraining {
    return fastRcnnTraining;
  },
};

/** Names of the graph inputs of the box predictor's training part. */
export const BOX_TRAINING_INPUTS = {
  /** [Rp] int64: flat index r * C' + c of the 4 deltas each positive RoI's loss reads (C' = classes with deltas). */
  positiveDeltas: 'train.box.positive_delta_index',
  /** [Rp,4] float32: regression targets of the positive RoIs (MODEL.BBOX_REG_WEIGHTS). */
  regressionTargets: 'train.box.regression_targets',
} as const;

/**
 * The box losses (torchvision `fastrcnn_loss`): classifier = cross-entropy over every sampled RoI
 * of the batch / their number; box_reg = smooth-L1 (TRAIN.BBOX_SMOOTH_L1_BETA, sum) of the GT
 * class's deltas of the positive RoIs / the number of sampled RoIs.
 */
function buildBoxLosses(ctx: TrainingBuildContext, head: BoxHeadOutput, rois: TrainingRois): LossTerm[] {
  const g = ctx.graph;
  const { classLogits, boxRegression } = predictor(ctx, head);
  // One row per sampled RoI of the batch (the training graph's `R` input rows).
  const classes = ctx.config.MODEL.NUM_CLASSES;
  ctx.tap('train.roi.class_logits', classLogits, 'float32', 'whole', ['R', classes]);
  ctx.tap('train.roi.box_regression', boxRegression, 'float32', 'whole', ['R', boxRegressionOutputs(classes, ctx.config.MODEL.CLS_AGNOSTIC_BBOX_REG)]);
  return g.withScope('losses', () => {
    const sampled = losses.elementCount(g, rois.labels, 'sampled');
    const classifier = losses.safeMean(g, losses.crossEntropySum(g, classLogits, rois.labels), sampled, 'classifier');
    const index = ctx.input(BOX_TRAINING_INPUTS.positiveDeltas, 'int64', ['Rp']);
    const targets = ctx.input(BOX_TRAINING_INPUTS.regressionTargets, 'float32', ['Rp', 4]);
    const deltas = ops.gather(g, ops.reshape(g, boxRegression, [-1, 4], 'deltas4'), index, 0, 'positive_deltas');
    const boxReg = losses.safeMean(g, losses.smoothL1Sum(g, deltas, targets, ctx.config.TRAIN.BBOX_SMOOTH_L1_BETA), sampled, 'box_reg');
    return [
      { name: 'classifier', blob: classifier },
      { name: 'box_reg', blob: boxReg },
    ];
  });
}

/**
 * Host targets of the box losses: for each positive sampled RoI (image order, sampled order) the
 * index of its GT class's deltas and its regression target vs the matched GT box
 * (MODEL.BBOX_REG_WEIGHTS, torchvision `box_coder.encode`; Detectron's +1 widths with
 * MODEL.LEGACY_PLUS_ONE). Also the fixture intermediates
 * `train.roi.regression_targets.<i>` (every sampled row; rows of an image without GT are encoded
 * against a zero box, -inf in dw / dh, as torchvision).
 */
function boxTargets(input: RoiTargetInput, config: RcnnConfig): HostTargets {
  const numClasses = config.MODEL.NUM_CLASSES;
  const agnostic = config.MODEL.CLS_AGNOSTIC_BBOX_REG;
  const classesWithDeltas = boxRegressionOutputs(numClasses, agnostic) / 4;
  const weights = config.MODEL.BBOX_REG_WEIGHTS;
  if (weights.length !== 4) throw new ConfigError(`MODEL.BBOX_REG_WEIGHTS needs 4 values, got ${weights.length}`, { key: 'MODEL.BBOX_REG_WEIGHTS' });
  const intermediates: Record<string, HostTensor> = {};
  const index: number[] = [];
  const targets: number[] = [];
  const zeroBox = new Float32Array(4);
  // Detectron's +1 widths (`bbox_transform_inv`) with MODEL.LEGACY_PLUS_ONE.
  const plusOne = config.MODEL.LEGACY_PLUS_ONE;
  let row = 0;
  input.samples.forEach((s, i) => {
    const gt = input.targets[i]!.boxes;
    const all = new Float32Array(4 * s.sampled.length);
    s.sampled.forEach((r, j) => {
      const m = s.matchedGt[r]!;
      if (m >= 0) encodeBox(gt, 4 * m, s.rows, 4 * r, weights, all, 4 * j, plusOne);
      else if (gt.length > 0) encodeBox(gt, 0, s.rows, 4 * r, weights, all, 4 * j, plusOne);
      else encodeBox(zeroBox, 0, s.rows, 4 * r, weights, all, 4 * j, plusOne);
      const label = s.labels[r]!;
      if (label > 0) {
        index.push((row + j) * classesWithDeltas + (agnostic ? 1 : label));
        targets.push(...all.subarray(4 * j, 4 * j + 4));
      }
    });
    row += s.sampled.length;
    intermediates[`train.roi.regression_targets.${i}`] = hostTensor('float32', [s.sampled.length, 4], all);
  });
  return {
    feeds: {
      [BOX_TRAINING_INPUTS.positiveDeltas]: int64Tensor(index),
      [BOX_TRAINING_INPUTS.regressionTargets]: hostTensor('float32', [index.length, 4], Float32Array.from(targets)),
    },
    intermediates,
  };
}

/** {@link boxTargets} in the graph (TRAIN.PROPOSALS_IN_GRAPH), on the graph's RoI sample: the same two inputs. */
function buildBoxTargets(ctx: TrainingBuildContext, sample: RoiGraphSample): Readonly<Record<string, Blob>> {
  const { graph: g, config } = ctx;
  const agnostic = config.MODEL.CLS_AGNOSTIC_BBOX_REG;
  const classesWithDeltas = boxRegressionOutputs(config.MODEL.NUM_CLASSES, agnostic) / 4;
  return g.withScope('box_targets', () => {
    const p = sample.positives;
    const column = agnostic ? g.constInt64(1, []) : p.labels;
    const index = ops.add(g, ops.mul(g, p.sampledPosition, g.constInt64(classesWithDeltas, []), 'row_base'), column, 'positive_delta_index');
    const gtBoxes = ops.gatherND(g, sample.gt.boxes, p.gtPairs, 0, 'gt_boxes');
    const targets = encodeBoxesGraph(g, gtBoxes, p.boxes, config.MODEL.BBOX_REG_WEIGHTS, config.MODEL.LEGACY_PLUS_ONE);
    return { [BOX_TRAINING_INPUTS.positiveDeltas]: index, [BOX_TRAINING_INPUTS.regressionTargets]: targets };
  });
}

/** Training part of the Fast R-CNN predictor (slot roi-box-outputs). */
export const fastRcnnTraining: RoiBoxOutputsTraining = { targets: boxTargets, buildTargets: buildBoxTargets, buildLosses: buildBoxLosses };

/** Registry entry of the predictor + post-processing (slot roi-box-outputs). */
export const FAST_RCNN_OUTPUTS: Implementation<RoiBoxOutputs> = {
  name: 'fast_rcnn_heads.add_fast_rcnn_outputs',
  aliases: ['FastRCNNPredictor'],
  provider: '@rcnn/box-head',
  description:
    'cls_score (MODEL.NUM_CLASSES) and bbox_pred (4 per class, or 8 with MODEL.CLS_AGNOSTIC_BBOX_REG), then softmax, decode, clip, score threshold, per-class NMS and top TEST.DETECTIONS_PER_IM per image',
  value: fastRcnnOutputs,
};
