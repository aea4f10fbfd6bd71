/**
 * Mask R-CNN's FCN mask head (Detectron `mask_rcnn_heads.mask_rcnn_fcn_head_v1upXconvs`,
 * torchvision `MaskRCNNHeads` + `MaskRCNNPredictor` + `maskrcnn_inference`), built on the final
 * detections:
 *
 * RoIAlign (MRCNN.ROI_XFORM_*, FPN level mapping) → MRCNN.NUM_STACKED_CONVS x (3x3 conv, padding =
 * dilation = MRCNN.DILATION, + ReLU) → ConvTranspose (kernel = stride = MRCNN.UPSAMPLE_RATIO) +
 * ReLU → 1x1 conv to class logits [D,C,M,M] → the channel of each detection's label → sigmoid.
 */
import {
  DIMS,
  type Blob,
  type BuildContext,
  ConfigError,
  type Detections,
  type FeatureMaps,
  type RandomInit,
  type HostTargets,
  type Implementation,
  type LossTerm,
  type RcnnConfig,
  type RoiGraphSample,
  type RoiMaskHead,
  type RoiTargetInput,
  type Rois,
  TargetError,
  type TrainingBuildContext,
  type TrainingRois,
  conv2d,
  convTranspose,
  hostTensor,
  int64Tensor,
  losses,
  ops,
  roiPooler,
  sequentialKey,
} from '@rcnn/core';
import { roiAlignBitmap } from './mask-targets.js';
import { PASTE_MASKS } from './paste-masks.js';

/** State-dict prefix of the conv stack (torchvision `roi_heads.mask_head`). */
export const MASK_HEAD_PREFIX = 'roi_heads.mask_head.';
/** State-dict prefix of the predictor (torchvision `roi_heads.mask_predictor`). */
export const MASK_PREDICTOR_PREFIX = 'roi_heads.mask_predictor.';

/** Random init of mask_fcn_logits (torchvision: kaiming_normal_ would do; small logits keep random masks near 0.5). */
const MASK_LOGITS_INIT: RandomInit = { kind: 'normal', std: 0.001 };

/** Checks the config keys the head's shapes depend on. */
function validate(ctx: BuildContext): void {
  const c = ctx.config.MRCNN;
  if (c.RESOLUTION !== c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO) {
    throw new ConfigError(
      `MRCNN.RESOLUTION is ${c.RESOLUTION} but the head makes ROI_XFORM_RESOLUTION x UPSAMPLE_RATIO = ${c.ROI_XFORM_RESOLUTION} x ${c.UPSAMPLE_RATIO} = ${c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO}`,
      { key: 'MRCNN.RESOLUTION', hint: `set MRCNN.RESOLUTION=${c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO}` },
    );
  }
}

/**
 * RoIAlign, the conv stack and the predictor on `rois`: every class's logits [R, C, M, M]
 * (inference and training graphs build the same nodes).
 */
function maskLogits(ctx: BuildContext, features: FeatureMaps, rois: Rois): Blob {
  const c = ctx.config.MRCNN;
  const numClasses = c.CLS_SPECIFIC_MASK ? ctx.config.MODEL.NUM_CLASSES : 1;
  validate(ctx);
  const pooled = roiPooler(ctx, features, rois, c, { what: 'mask head' });
  let x = pooled.features;
  let channels = pooled.channels;
  for (let i = 0; i < c.NUM_STACKED_CONVS; i++) {
    // torchvision >= 0.13 names conv i `mask_head.<i>.0`; checkpoints saved before (including
    // torchvision's own COCO weights) use `mask_head.mask_fcn<i+1>`, which torchvision renames on load.
    x = conv2d(ctx, x, {
      key: sequentialKey(MASK_HEAD_PREFIX, i, 0),
      aliases: [`${MASK_HEAD_PREFIX}mask_fcn${i + 1}`],
      name: `fcn${i + 1}`,
      inChannels: channels,
      outChannels: c.CONV_HEAD_DIM,
      kernel: 3,
      dilation: c.DILATION,
      activation: 'relu',
    });
    channels = c.CONV_HEAD_DIM;
  }

  // torchvision MaskRCNNPredictor: conv5_mask (ConvTranspose, kernel = stride) + ReLU, then the
  // 1x1 mask_fcn_logits to every class's logits [D, C, M, M]. (Graph passes at serialisation
  // build conv5_mask of inference graphs as a 1x1 conv + DepthToSpace and compute only the
  // label's logits; see docs/architecture.md. Training graphs keep the ConvTranspose, so its
  // parameters get their gradients.)
  const r = c.UPSAMPLE_RATIO;
  x = convTranspose(ctx, x, { key: `${MASK_PREDICTOR_PREFIX}conv5_mask`, inChannels: channels, outChannels: c.DIM_REDUCED, kernel: r, stride: r, activation: 'relu' });
  return conv2d(ctx, x, { key: `${MASK_PREDICTOR_PREFIX}mask_fcn_logits`, inChannels: c.DIM_REDUCED, outChannels: numClasses, kernel: 1, weightInit: MASK_LOGITS_INIT });
}

/**
 * The mask loss (torchvision `maskrcnn_loss`): every class's logits of the positive RoIs, the
 * channel of each RoI's GT class (channel 0 with MRCNN.CLS_SPECIFIC_MASK false), BCE-with-logits
 * against the projected GT mask, mean over RoIs x M x M (0 when the batch has no positive).
 */
function buildMaskLosses(ctx: TrainingBuildContext, features: FeatureMaps, positives: TrainingRois): LossTerm[] {
  const g = ctx.graph;
  const c = ctx.config.MRCNN;
  const logits = maskLogits(ctx, features, positives);
  return g.withScope('losses', () => {
    const m = c.RESOLUTION;
    const index = ctx.input(MASK_TRAINING_INPUTS.channelIndex, 'int64', ['Rp']);
    const targets = ctx.input(MASK_TRAINING_INPUTS.targets, 'float32', ['Rp', m, m]);
    const selected = ops.gather(g, ops.reshape(g, logits, [-1, m, m], 'per_channel'), index, 0, 'selected');
    const loss = losses.safeMean(g, losses.bceWithLogitsSum(g, selected, targets), losses.elementCount(g, targets, 'elements'), 'mask');
    return [{ name: 'mask', blob: loss }];
  });
}

/** The mask head (see module doc): a stateless object, so one value serves every container. */
export const maskRcnnFcnHead: RoiMaskHead = {
  weightPrefixes: [MASK_HEAD_PREFIX, MASK_PREDICTOR_PREFIX],
  hostPostprocessor: PASTE_MASKS,

  build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly maskProbs: Blob } {
    const g = ctx.graph;
    const c = ctx.config.MRCNN;
    const numClasses = c.CLS_SPECIFIC_MASK ? ctx.config.MODEL.NUM_CLASSES : 1;
    const logits = maskLogits(ctx, features, { boxes: detections.boxes, batchIndex: detections.batchIndex });
    ctx.tap('roi.mask_logits', logits, 'float32', 'whole', [DIMS.detections, numClasses, DIMS.maskSize, DIMS.maskSize]);

    // torchvision maskrcnn_inference: mask_prob[arange(D), labels][:, None].sigmoid(); one
    // class-agnostic channel without MRCNN.CLS_SPECIFIC_MASK.
    const maskProbs = g.withScope('mask_probs', () => {
      const selected = c.CLS_SPECIFIC_MASK
        ? ops.unsqueeze(g, ops.gatherND(g, logits, ops.unsqueeze(g, detections.labels, [1], 'label'), 1, 'select'), [1], 'selected')
        : logits;
      return ops.sigmoid(g, selected);
    });
    return { maskProbs };
  },

  /** Training part: mask targets on the host or in the graph, the mask loss in the graph. */
  training: { targets: (input, config) => projectMaskTargets(input, config), buildTargets: (ctx, sample) => buildMaskTargets(ctx, sample), buildLosses: buildMaskLosses },
};

/** Registry entry of the mask head (slot roi-mask-head). */
export const MASK_RCNN_FCN_HEAD: Implementation<RoiMaskHead> = {
  name: 'mask_rcnn_heads.mask_rcnn_fcn_head_v1up4convs',
  // The number of convs is MRCNN.NUM_STACKED_CONVS, so the v1upXconvs name is the same head.
  aliases: ['MaskRCNNHeads', 'mask_rcnn_heads.mask_rcnn_fcn_head_v1upXconvs'],
  provider: '@rcnn/mask-head',
  description: 'Mask R-CNN FCN mask head: RoIAlign, NUM_STACKED_CONVS x (3x3 conv + ReLU), 2x deconv, per-class 1x1 logits, sigmoid',
  value: maskRcnnFcnHead,
};

/** Names of the graph inputs of the mask head's training part. */
export const MASK_TRAINING_INPUTS = {
  /** [Rp] int64: flat index r * C + class of the logits channel each positive RoI's loss reads. */
  channelIndex: 'train.mask.channel_index',
  /** [Rp,M,M] float32: the GT mask of each positive RoI projected into it (values in [0, 1]). */
  targets: 'train.mask.targets',
} as const;

/**
 * Host targets of the mask loss (torchvision `project_masks_on_boxes`): for each positive sampled
 * RoI (image order, sampled order) its matched GT's resized mask RoIAligned into the RoI at
 * MRCNN.RESOLUTION (spatial scale 1, adaptive sampling, aligned false), and its logits channel,
 * fed as the graph inputs `inputs` names (a plugin mask head passes its own).
 */
export function projectMaskTargets(
  input: RoiTargetInput,
  config: RcnnConfig,
  inputs: { readonly channelIndex: string; readonly targets: string } = MASK_TRAINING_INPUTS,
): HostTargets {
  const m = config.MRCNN.RESOLUTION;
  const numClasses = config.MRCNN.CLS_SPECIFIC_MASK ? config.MODEL.NUM_CLASSES : 1;
  const parts: Float32Array[] = [];
  const index: number[] = [];
  const labels: number[] = [];
  input.samples.forEach((s, i) => {
    const gt = input.targets[i]!;
    const [h, w] = gt.size;
    if (s.positives.length > 0 && !gt.masks) throw new TargetError(`image ${i} has positive RoIs but no GT masks`, { source: `image ${i} masks` });
    for (const r of s.positives) {
      const matched = s.matchedGt[r]!;
      const target = new Float32Array(m * m);
      roiAlignBitmap(gt.masks!.subarray(matched * h * w, (matched + 1) * h * w), h, w, s.rows.subarray(4 * r, 4 * r + 4), m, target);
      parts.push(target);
      index.push(index.length * numClasses + (config.MRCNN.CLS_SPECIFIC_MASK ? s.labels[r]! : 0));
      labels.push(s.labels[r]!);
    }
  });
  const targets = new Float32Array(parts.length * m * m);
  parts.forEach((p, j) => targets.set(p, j * m * m));
  const targetTensor = hostTensor('float32', [parts.length, m, m], targets);
  return {
    feeds: { [inputs.channelIndex]: int64Tensor(index), [inputs.targets]: targetTensor },
    intermediates: { 'train.mask.targets': targetTensor, 'train.mask.labels': int64Tensor(labels) },
  };
}

/**
 * {@link projectMaskTargets} in the graph (TRAIN.PROPOSALS_IN_GRAPH): RoiAlign (avg, spatial scale
 * 1, adaptive sampling, aligned false — torchvision `roi_align` in `project_masks_on_boxes`) of the
 * `train.gt.masks` slot of each positive's matched GT into the positive's box, and its logits
 * channel; by the graph input names `inputs` (a plugin mask head passes its own).
 */
export function buildMaskTargets(
  ctx: TrainingBuildContext,
  sample: RoiGraphSample,
  inputs: { readonly channelIndex: string; readonly targets: string } = MASK_TRAINING_INPUTS,
): Readonly<Record<string, Blob>> {
  const { graph: g, config } = ctx;
  const m = config.MRCNN.RESOLUTION;
  const numClasses = config.MRCNN.CLS_SPECIFIC_MASK ? config.MODEL.NUM_CLASSES : 1;
  return g.withScope('mask_targets', () => {
    const p = sample.positives;
    const projected = ops.roiAlign(g, sample.gt.masks(), p.boxes, p.gtIndex, { outputSize: m, samplingRatio: 0, spatialScale: 1, aligned: false, name: 'project' });
    const targets = ops.reshape(g, projected, [-1, m, m], 'targets');
    const rows = ops.range(g, g.constInt64(0, []), ops.squeeze(g, ops.dim(g, p.boxes, 0, 'positives'), [0], 'positives_scalar'), g.constInt64(1, []), 'rows');
    const base = ops.mul(g, rows, g.constInt64(numClasses, []), 'row_base');
    const index = config.MRCNN.CLS_SPECIFIC_MASK ? ops.add(g, base, p.labels, 'channel_index') : base;
    return { [inputs.channelIndex]: index, [inputs.targets]: targets };
  });
}
