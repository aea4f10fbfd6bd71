/**
 * Detectron's `keypoint_rcnn_heads.add_roi_pose_head_v1convX` / torchvision's `KeypointRCNNHeads` +
 * `KeypointRCNNPredictor`: RoIAlign on the final detections, a stack of conv + ReLU layers, a
 * stride-2 transposed conv to one channel per keypoint and a bilinear upsampling to the heatmaps.
 */
import {
  DIMS,
  type Blob,
  type BuildContext,
  ConfigError,
  type FeatureMaps,
  type Implementation,
  type HostTargets,
  type LossTerm,
  type RandomInit,
  type RcnnConfig,
  type RoiHeadTraining,
  type RoiGraphSample,
  type RoiKeypointHead,
  type RoiTargetInput,
  type Rois,
  TargetError,
  type TrainingBuildContext,
  type TrainingRois,
  conv2d,
  convTranspose,
  int64Tensor,
  losses,
  ops,
  roiPooler,
  sequentialKey,
  upsampleBilinear,
} from '@rcnn/core';
import { KEYPOINT_DECODER } from './heatmaps-to-keypoints.js';

/** State-dict prefix of the conv stack (torchvision `roi_heads.keypoint_head`, a Sequential of Conv2d, ReLU). */
export const KEYPOINT_HEAD_PREFIX = 'roi_heads.keypoint_head.';
/** State-dict prefix of the predictor (torchvision `roi_heads.keypoint_predictor`). */
export const KEYPOINT_PREDICTOR_PREFIX = 'roi_heads.keypoint_predictor.';
/** Name of the host post-processor that turns the heatmaps into keypoints (defined with the decoder). */
export { KEYPOINT_DECODER };

/** The predictor's transposed conv is stride 2 by definition (KRCNN.DECONV_KERNEL: "the stride-2 transposed conv"). */
const DECONV_STRIDE = 2;

/**
 * Random init of kps_score_lowres: Detectron's GaussianFill std 0.001 for the heatmap predictor (as
 * for mask_fcn_logits), so a head trained from scratch starts at the uniform heatmap's loss
 * ln(S²) instead of one scaled by the random body's feature magnitude (He init gave ~170 on the
 * shapes benchmark, and its gradients swamped the shared body).
 */
const KEYPOINT_LOGITS_INIT: RandomInit = { kind: 'normal', std: 0.001 };

/** Shapes of the head derived from KRCNN.*, checked against each other. */
export interface KeypointHeadShape {
  readonly inChannels: number;
  readonly numKeypoints: number;
  readonly convs: number;
  readonly convDim: number;
  readonly convKernel: number;
  readonly deconvKernel: number;
  readonly deconvPad: number;
  readonly upScale: number;
  readonly heatmapSize: number;
}

/** Reads KRCNN.* and the pooled channel count, failing with a ConfigError naming the key that does not fit. */
export function keypointHeadShape(ctx: BuildContext, inChannels: number): KeypointHeadShape {
  const k = ctx.config.KRCNN;
  if (k.CONV_HEAD_KERNEL % 2 !== 1) {
    throw new ConfigError(`KRCNN.CONV_HEAD_KERNEL is ${k.CONV_HEAD_KERNEL}; the head convs keep the 'same' size, which needs an odd kernel`, {
      key: 'KRCNN.CONV_HEAD_KERNEL',
    });
  }
  // torchvision: ConvTranspose2d(k, stride=2, padding=k // 2 - 1), then interpolate(scale_factor=UP_SCALE).
  const deconvPad = Math.floor(k.DECONV_KERNEL / 2) - 1;
  const deconvOut = (k.ROI_XFORM_RESOLUTION - 1) * DECONV_STRIDE - 2 * deconvPad + k.DECONV_KERNEL;
  const heatmapSize = deconvOut * k.UP_SCALE;
  if (heatmapSize !== k.HEATMAP_SIZE) {
    throw new ConfigError(
      `KRCNN.HEATMAP_SIZE is ${k.HEATMAP_SIZE} but the head makes ${heatmapSize}x${heatmapSize} heatmaps ` +
        `(ROI_XFORM_RESOLUTION ${k.ROI_XFORM_RESOLUTION}, DECONV_KERNEL ${k.DECONV_KERNEL}, UP_SCALE ${k.UP_SCALE})`,
      { key: 'KRCNN.HEATMAP_SIZE', hint: `set KRCNN.HEATMAP_SIZE=${heatmapSize}` },
    );
  }
  return {
    inChannels,
    numKeypoints: k.NUM_KEYPOINTS,
    convs: k.NUM_STACKED_CONVS,
    convDim: k.CONV_HEAD_DIM,
    convKernel: k.CONV_HEAD_KERNEL,
    deconvKernel: k.DECONV_KERNEL,
    deconvPad,
    upScale: k.UP_SCALE,
    heatmapSize,
  };
}

function buildKeypointHead(ctx: BuildContext, features: FeatureMaps, detections: Rois): { readonly heatmaps: Blob } {
  const g = ctx.graph;
  // RoIAlign on the final boxes (resized-image pixels), as torchvision's keypoint_roi_pool.
  const pooled = roiPooler(ctx, features, { boxes: detections.boxes, batchIndex: detections.batchIndex }, ctx.config.KRCNN, { what: 'RoI keypoint head' });
  const shape = keypointHeadShape(ctx, pooled.channels);
  let x = pooled.features;
  let channels = shape.inChannels;
  for (let i = 0; i < shape.convs; i++) {
    // Sequential(Conv2d, ReLU, ...): conv i is module 2i of the state dict.
    x = conv2d(ctx, x, { key: sequentialKey(KEYPOINT_HEAD_PREFIX, 2 * i), name: `conv_fcn${i + 1}`, inChannels: channels, outChannels: shape.convDim, kernel: shape.convKernel, activation: 'relu' });
    channels = shape.convDim;
  }
  const lowres = convTranspose(ctx, x, {
    key: `${KEYPOINT_PREDICTOR_PREFIX}kps_score_lowres`,
    inChannels: channels,
    outChannels: shape.numKeypoints,
    kernel: shape.deconvKernel,
    stride: DECONV_STRIDE,
    pad: shape.deconvPad,
    weightInit: KEYPOINT_LOGITS_INIT,
  });
  // torchvision: interpolate(scale_factor=UP_SCALE, bilinear, align_corners=False).
  const heatmaps = g.withScope('kps_score', () => upsampleBilinear(ctx, lowres, shape.upScale));
  ctx.tap('roi.keypoint_logits', heatmaps, 'float32', 'whole', [DIMS.detections, shape.numKeypoints, DIMS.heatmapSize, DIMS.heatmapSize]);
  return { heatmaps };
}

/** The keypoint head as a {@link RoiKeypointHead}. */
export const keypointRcnnHeads: RoiKeypointHead = {
  build: buildKeypointHead,
  weightPrefixes: [KEYPOINT_HEAD_PREFIX, KEYPOINT_PREDICTOR_PREFIX],
  hostPostprocessor: KEYPOINT_DECODER,
  get training(): RoiHeadTraining {
    return keypointTraining;
  },
};

/** Names of the graph inputs of the keypoint head's training part. */
export const KEYPOINT_TRAINING_INPUTS = {
  /** [V] int64: flat index r * K + k of every valid (positive RoI, keypoint) pair. */
  validRows: 'train.keypoint.valid_rows',
  /** [V] int64: heatmap cell y * S + x of each valid pair. */
  targetIndex: 'train.keypoint.target_index',
} as const;

/**
 * The keypoint loss (torchvision `keypointrcnn_loss`): the heatmap logits of the positive RoIs
 * viewed [Rp*K, S*S], cross-entropy of the valid rows against their target cell, mean over valid
 * rows (0 when none is valid), times KRCNN.LOSS_WEIGHT.
 */
function buildKeypointLosses(ctx: TrainingBuildContext, features: FeatureMaps, positives: TrainingRois): LossTerm[] {
  const g = ctx.graph;
  const { heatmaps } = buildKeypointHead(ctx, features, positives);
  return g.withScope('losses', () => {
    const s = ctx.config.KRCNN.HEATMAP_SIZE;
    const rows = ctx.input(KEYPOINT_TRAINING_INPUTS.validRows, 'int64', ['V']);
    const target = ctx.input(KEYPOINT_TRAINING_INPUTS.targetIndex, 'int64', ['V']);
    const logits = ops.gather(g, ops.reshape(g, heatmaps, [-1, s * s], 'rows'), rows, 0, 'valid_logits');
    const weight = ctx.config.KRCNN.LOSS_WEIGHT;
    const mean = losses.safeMean(g, losses.crossEntropySum(g, logits, target), losses.elementCount(g, target, 'valid'), weight === 1 ? 'keypoint' : 'keypoint_mean');
    // The default weight adds no node, so the default graph stays torchvision's.
    const loss = weight === 1 ? mean : ops.mul(g, mean, g.constFloat32(weight), 'keypoint');
    return [{ name: 'keypoint', blob: loss }];
  });
}

/**
 * Host targets (torchvision `keypoints_to_heatmap`; Detectron's `keypoints_to_heatmap_labels` is the
 * same, without +1) of every positive sampled RoI's matched GT keypoints, in float32:
 * x' = floor((x - x1) * f32(S / (x2 - x1))), the same for y, x == x2 -> S - 1 and y == y2 -> S - 1
 * (exact equality), valid when inside [0, S) and v > 0; target y' * S + x'. Fed as the graph
 * inputs `inputs` names (a plugin keypoint head passes its own).
 */
export function keypointHeatmapTargets(
  input: RoiTargetInput,
  config: RcnnConfig,
  inputs: { readonly validRows: string; readonly targetIndex: string } = KEYPOINT_TRAINING_INPUTS,
): HostTargets {
  const f = Math.fround;
  const s = config.KRCNN.HEATMAP_SIZE;
  const k = config.KRCNN.NUM_KEYPOINTS;
  const targetsAll: number[] = [];
  const validAll: number[] = [];
  const validRows: number[] = [];
  const targetIndex: number[] = [];
  let row = 0;
  input.samples.forEach((sample, i) => {
    const kps = input.targets[i]!.keypoints;
    if (sample.positives.length > 0 && !kps) throw new TargetError(`image ${i} has positive RoIs but no GT keypoints`, { source: `image ${i} keypoints` });
    for (const r of sample.positives) {
      const [x1, y1, x2, y2] = [sample.rows[4 * r]!, sample.rows[4 * r + 1]!, sample.rows[4 * r + 2]!, sample.rows[4 * r + 3]!];
      const scaleX = f(s / f(x2 - x1));
      const scaleY = f(s / f(y2 - y1));
      const base = sample.matchedGt[r]! * k * 3;
      for (let j = 0; j < k; j++) {
        const x = kps![base + 3 * j]!;
        const y = kps![base + 3 * j + 1]!;
        const v = kps![base + 3 * j + 2]!;
        const cx = x === x2 ? s - 1 : Math.floor(f(f(x - x1) * scaleX));
        const cy = y === y2 ? s - 1 : Math.floor(f(f(y - y1) * scaleY));
        const valid = cx >= 0 && cy >= 0 && cx < s && cy < s && v > 0;
        targetsAll.push(valid ? cy * s + cx : 0);
        validAll.push(valid ? 1 : 0);
        if (valid) {
          validRows.push(row * k + j);
          targetIndex.push(cy * s + cx);
        }
      }
      row++;
    }
  });
  return {
    feeds: { [inputs.validRows]: int64Tensor(validRows), [inputs.targetIndex]: int64Tensor(targetIndex) },
    intermediates: { 'train.keypoint.targets': int64Tensor(targetsAll, [row, k]), 'train.keypoint.valid': int64Tensor(validAll, [row, k]) },
  };
}

/** Training part of the keypoint head (slot roi-keypoint-head). */
export const keypointTraining: RoiHeadTraining = {
  targets: (input, config) => keypointHeatmapTargets(input, config),
  buildTargets: (ctx, sample) => buildKeypointHeatmapTargets(ctx, sample),
  buildLosses: buildKeypointLosses,
};

/**
 * {@link keypointHeatmapTargets} in the graph (TRAIN.PROPOSALS_IN_GRAPH), the same float32
 * arithmetic on each positive's matched `train.gt.keypoints`: the valid (RoI, keypoint) rows and
 * their heatmap cells, by the graph input names `inputs` (a plugin keypoint head passes its own).
 */
export function buildKeypointHeatmapTargets(
  ctx: TrainingBuildContext,
  sample: RoiGraphSample,
  inputs: { readonly validRows: string; readonly targetIndex: string } = KEYPOINT_TRAINING_INPUTS,
): Readonly<Record<string, Blob>> {
  const { graph: g, config } = ctx;
  const s = config.KRCNN.HEATMAP_SIZE;
  return g.withScope('keypoint_targets', () => {
    const p = sample.positives;
    const kps = ops.gatherND(g, sample.gt.keypoints(), p.gtPairs, 0, 'keypoints'); // [Rp,K,3]
    const [x, y, v] = ops.split(g, kps, [1, 1, 1], 2, 'xyv'); // [Rp,K,1]
    const box = ops.unsqueeze(g, p.boxes, [1], 'box'); // [Rp,1,4]
    const [x1, y1, x2, y2] = ops.split(g, box, [1, 1, 1, 1], 2, 'corners'); // [Rp,1,1]
    const size = g.constFloat32(s);
    const last = g.constFloat32(s - 1);
    const cell = (c: Blob, lo: Blob, hi: Blob, tag: string): Blob => {
      const scale = ops.div(g, size, ops.sub(g, hi, lo, `${tag}_extent`), `${tag}_scale`);
      const scaled = ops.floor(g, ops.mul(g, ops.sub(g, c, lo, `${tag}_offset`), scale, `${tag}_scaled`), `${tag}_floor`);
      return ops.where(g, ops.equal(g, c, hi, `${tag}_at_edge`), last, scaled, `${tag}_cell`);
    };
    const cx = cell(x, x1, x2, 'x');
    const cy = cell(y, y1, y2, 'y');
    const zero = g.constFloat32(0);
    const inside = (c: Blob, tag: string): Blob => ops.and(g, ops.greaterOrEqual(g, c, zero, `${tag}_ge0`), ops.less(g, c, size, `${tag}_lt`), `${tag}_inside`);
    const valid = ops.and(g, ops.and(g, inside(cx, 'x'), inside(cy, 'y'), 'inside'), ops.greater(g, v, zero, 'visible'), 'valid'); // [Rp,K,1]
    const rows = ops.squeeze(g, ops.nonZero(g, ops.reshape(g, valid, [-1], 'valid_flat'), 'valid_at'), [0], 'valid_rows');
    const target = ops.cast(g, ops.add(g, ops.mul(g, cy, size, 'cy_row'), cx, 'cell_flat'), 'int64', 'cell_i64');
    return { [inputs.validRows]: rows, [inputs.targetIndex]: ops.gather(g, ops.reshape(g, target, [-1], 'target_flat'), rows, 0, 'target_index') };
  });
}

/** Registry entry of the keypoint head (slot roi-keypoint-head). */
export const KEYPOINT_RCNN_HEADS: Implementation<RoiKeypointHead> = {
  name: 'keypoint_rcnn_heads.add_roi_pose_head_v1convX',
  aliases: ['KeypointRCNNHeads'],
  provider: '@rcnn/keypoint-head',
  description:
    'RoIAlign (KRCNN.ROI_XFORM_*) on the detections, KRCNN.NUM_STACKED_CONVS x (conv + ReLU), stride-2 deconv to KRCNN.NUM_KEYPOINTS heatmaps, bilinear x KRCNN.UP_SCALE (torchvision KeypointRCNNHeads + KeypointRCNNPredictor)',
  value: keypointRcnnHeads,
};
