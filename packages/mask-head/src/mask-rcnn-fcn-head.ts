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
  type GraphBuilder,
  ConfigError,
  type Detections,
  type FeatureMaps,
  type RandomInit,
  type HostTargets,
  type LossTerm,
  type RcnnConfig,
  type RoiHeadTraining,
  type RoiMaskHead,
  type RoiTargetInput,
  type Rois,
  TargetError,
  type TrainingBuildContext,
  type TrainingRois,
  hostTensor,
  int64Tensor,
  losses,
  multiScaleRoiAlign,
  ops,
} from '@rcnn/core';
import { roiAlignBitmap } from './mask-targets.js';
import { PASTE_MASKS } from './paste-masks.js';

/** State-dict prefix of the conv stack (torchvision `roi_heads.mask_head`). */
export const MASK_HEAD_PREFIX = 'roi_heads.mask_head.';
/** State-dict prefix of the predictor (torchvision `roi_heads.mask_predictor`). */
export const MASK_PREDICTOR_PREFIX = 'roi_heads.mask_predictor.';

/** Checks the config keys the head depends on and returns the input channels. */
function validate(ctx: BuildContext, features: FeatureMaps): number {
  const c = ctx.config.MRCNN;
  if (features.length === 0) throw new ConfigError('the mask head got no feature maps', { key: 'FPN.ROI_MIN_LEVEL' });
  const channels = features[0].channels;
  const odd = features.find((f) => f.channels !== channels);
  if (odd) {
    throw new ConfigError(`the mask head pools from levels with different widths (${features.map((f) => `${f.name}: ${f.channels}`).join(', ')})`, {
      key: 'FPN.DIM',
    });
  }
  if (c.RESOLUTION !== c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO) {
    throw new ConfigError(
      `MRCNN.RESOLUTION is ${c.RESOLUTION} but the head makes ROI_XFORM_RESOLUTION x UPSAMPLE_RATIO = ${c.ROI_XFORM_RESOLUTION} x ${c.UPSAMPLE_RATIO} = ${c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO}`,
      { key: 'MRCNN.RESOLUTION', hint: `set MRCNN.RESOLUTION=${c.ROI_XFORM_RESOLUTION * c.UPSAMPLE_RATIO}` },
    );
  }
  return channels;
}

/**
 * Name of conv layer `i`: torchvision ≥ 0.13 `mask_head.<i>.0.*`; checkpoints saved before that
 * (including torchvision's own COCO weights) use `mask_head.mask_fcn<i+1>.*`, which torchvision
 * renames on load, so accept them too.
 */
function convKey(ctx: BuildContext, i: number, kind: 'weight' | 'bias'): string {
  const current = `${MASK_HEAD_PREFIX}${i}.0.${kind}`;
  const legacy = `${MASK_HEAD_PREFIX}mask_fcn${i + 1}.${kind}`;
  return !ctx.weights.isRandom && !ctx.weights.has(current) && ctx.weights.has(legacy) ? legacy : current;
}

/**
 * ConvTranspose with kernel = stride = r as a 1x1 conv to C_out·r² channels followed by
 * DepthToSpace: with no overlap between the r x r output blocks of neighbouring pixels, output
 * (co, h·r+i, w·r+j) = b[co] + Σ_ci x[ci,h,w]·W[ci,co,i,j], which is channel co·r²+i·r+j of the
 * 1x1 conv with W'[co·r²+i·r+j, ci] = W[ci,co,i,j]. onnxruntime runs that conv (and the ReLU after
 * it) in its blocked NCHWc kernels, faster than its ConvTranspose (docs/performance.md). Returns the
 * pre-shuffle [D, C_out·r², h, w]; {@link depthToSpace} gives [D, C_out, h·r, w·r].
 */
export function upsampleAsConv(g: GraphBuilder, x: Blob, w: Float32Array, b: Float32Array, cin: number, cout: number, r: number): Blob {
  const rr = r * r;
  const w2 = new Float32Array(cout * rr * cin);
  const b2 = new Float32Array(cout * rr);
  for (let ci = 0; ci < cin; ci++) {
    for (let co = 0; co < cout; co++) {
      for (let k = 0; k < rr; k++) w2[(co * rr + k) * cin + ci] = w[(ci * cout + co) * rr + k];
    }
  }
  for (let co = 0; co < cout; co++) b2.fill(b[co], co * rr, (co + 1) * rr);
  const wb = g.initializer('weight_1x1', { dtype: 'float32', dims: [cout * rr, cin, 1, 1], data: w2 });
  const bb = g.initializer('bias_1x1', { dtype: 'float32', dims: [cout * rr], data: b2 });
  return ops.conv(g, x, wb, bb, { kernel: 1, name: 'deconv_1x1' });
}

/**
 * {@link upsampleAsConv} with the ConvTranspose weight [C_in, C_out, r, r] and bias [C_out] as
 * blobs (trainable parameters, graph inputs): the 1x1 weight and the repeated bias are made in the
 * graph (Reshape / Transpose / Expand), so their gradients flow back to the ConvTranspose's own.
 */
export function upsampleAsConvFromBlobs(g: GraphBuilder, x: Blob, w: Blob, b: Blob, cin: number, cout: number, r: number): Blob {
  const rr = r * r;
  // W'[co·r²+k, ci] = W[ci, co, k]: W as [C_in, C_out·r²], transposed.
  const w2 = ops.transpose(g, ops.reshape(g, w, [cin, cout * rr], 'weight_2d'), [1, 0], 'weight_t');
  const wb = ops.reshape(g, w2, [cout * rr, cin, 1, 1], 'weight_1x1');
  const bb = ops.reshape(g, ops.expand(g, ops.reshape(g, b, [cout, 1], 'bias_col'), g.constInt64([cout, rr]), 'bias_rep'), [cout * rr], 'bias_1x1');
  return ops.conv(g, x, wb, bb, { kernel: 1, name: 'deconv_1x1' });
}

/** DepthToSpace (CRD): [D, C·r², h, w] → [D, C, h·r, w·r], channel c·r²+i·r+j to pixel (h·r+i, w·r+j). */
export function depthToSpace(g: GraphBuilder, x: Blob, r: number, name = 'depth_to_space'): Blob {
  return g.op('DepthToSpace', [x], { blocksize: r, mode: 'CRD' }, name);
}

/**
 * Logits of one class per detection, [D, 1, h·r, w·r]: row `rows[d]` of the 1x1 conv weight
 * `weight` [C, cin, 1, 1] (and bias [C]) applied to detection d's pre-shuffle features `up`
 * [D, cin·r², h, w]. The r² phases of a channel are contiguous, so `up` reshapes to
 * [D, cin, r²·h·w] without a copy, one batched MatMul gives [D, 1, r²·h·w], and DepthToSpace puts
 * the phases in place.
 */
function selectedLogits(g: GraphBuilder, up: Blob, weight: Blob, bias: Blob, rows: Blob, cin: number, r: number): Blob {
  const w = ops.gather(g, ops.reshape(g, weight, [0, -1], 'w2d'), rows, 0, 'w_rows'); // [D, cin]
  const b = ops.reshape(g, ops.gather(g, bias, rows, 0, 'b_rows'), [-1, 1, 1], 'b3'); // [D, 1, 1]
  const hw = ops.shape(g, up, 2, 4, 'hw');
  const [h, wd] = ops.split(g, hw, [1, 1], 0, 'h_w');
  // Explicit sizes: with D = 0 a -1 in the target shape is ambiguous.
  const size = ops.mul(g, ops.mul(g, h, wd, 'hw_size'), g.constInt64([r * r]), 'phase_size');
  const d = ops.shape(g, up, 0, 1, 'd');
  const features = ops.reshape(g, up, ops.concat(g, [d, g.constInt64([cin]), size], 0, 'phases_shape'), 'phases'); // [D, cin, r²·h·w]
  const dotted = ops.add(g, g.op('MatMul', [ops.unsqueeze(g, w, [1], 'w3'), features], {}, 'dot'), b, 'logit'); // [D, 1, r²·h·w]
  const perPhase = ops.reshape(g, dotted, ops.concat(g, [d, g.constInt64([r * r]), hw], 0, 'phase_shape'), 'per_phase'); // [D, r², h, w]
  return depthToSpace(g, perPhase, r, 'selected');
}

/** The mask head (see module doc). */
export class MaskRcnnFcnHead implements RoiMaskHead {
  readonly weightPrefixes = [MASK_HEAD_PREFIX, MASK_PREDICTOR_PREFIX] as const;
  readonly hostPostprocessor = PASTE_MASKS;

  /** RoIAlign and the conv stack on `rois` (inference and training graphs build the same nodes). */
  private convStack(ctx: BuildContext, features: FeatureMaps, rois: Rois): { x: Blob; channels: number; weight: (key: string, dims: number[], init: RandomInit) => Blob; bias: (key: string, n: number) => Blob } {
    const g = ctx.graph;
    const c = ctx.config.MRCNN;
    let channels = validate(ctx, features);

    // Initializers are named after the last part of their state-dict key, inside the layer's scope.
    const weight = (key: string, dims: number[], init: RandomInit): Blob =>
      g.initializer(key.slice(key.lastIndexOf('.') + 1), { dtype: 'float32', dims, data: ctx.weights.take(key, dims, init) });
    const bias = (key: string, n: number): Blob => weight(key, [n], { kind: 'constant', value: 0 });

    let x = multiScaleRoiAlign(g, features, rois, {
      outputSize: c.ROI_XFORM_RESOLUTION,
      samplingRatio: c.ROI_XFORM_SAMPLING_RATIO,
      aligned: c.ROI_XFORM_ALIGNED,
      canonicalScale: ctx.config.FPN.ROI_CANONICAL_SCALE,
      canonicalLevel: ctx.config.FPN.ROI_CANONICAL_LEVEL,
      eps: ctx.config.FPN.ROI_LEVEL_EPS,
    });

    for (let i = 0; i < c.NUM_STACKED_CONVS; i++) {
      x = g.withScope(`fcn${i + 1}`, () => {
        const w = weight(convKey(ctx, i, 'weight'), [c.CONV_HEAD_DIM, channels, 3, 3], { kind: 'he' });
        const b = bias(convKey(ctx, i, 'bias'), c.CONV_HEAD_DIM);
        return ops.relu(g, ops.conv(g, x, w, b, { kernel: 3, pad: c.DILATION, dilation: c.DILATION }));
      });
      channels = c.CONV_HEAD_DIM;
    }
    return { x, channels, weight, bias };
  }

  build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly maskProbs: Blob } {
    const g = ctx.graph;
    const c = ctx.config.MRCNN;
    const numClasses = c.CLS_SPECIFIC_MASK ? ctx.config.MODEL.NUM_CLASSES : 1;
    const { x, channels, weight, bias } = this.convStack(ctx, features, { boxes: detections.boxes, batchIndex: detections.batchIndex });

    const { up, logits } = g.withScope('predictor', () => {
      const r = c.UPSAMPLE_RATIO;
      const up = g.withScope('conv5_mask', () => {
        // PyTorch ConvTranspose2d weight layout [C_in, C_out, k, k] is also ONNX's.
        const wKey = `${MASK_PREDICTOR_PREFIX}conv5_mask.weight`;
        const bKey = `${MASK_PREDICTOR_PREFIX}conv5_mask.bias`;
        if (ctx.weights.isTrainable(wKey) || ctx.weights.isTrainable(bKey)) {
          // Training: keep the ConvTranspose parameters as they are (they become graph inputs).
          const wb = weight(wKey, [channels, c.DIM_REDUCED, r, r], { kind: 'he' });
          return ops.relu(g, upsampleAsConvFromBlobs(g, x, wb, bias(bKey, c.DIM_REDUCED), channels, c.DIM_REDUCED, r));
        }
        const w = ctx.weights.take(wKey, [channels, c.DIM_REDUCED, r, r], { kind: 'he' });
        const b = ctx.weights.take(bKey, [c.DIM_REDUCED], { kind: 'constant', value: 0 });
        return ops.relu(g, upsampleAsConv(g, x, w, b, channels, c.DIM_REDUCED, r));
      });
      const w = weight(`${MASK_PREDICTOR_PREFIX}mask_fcn_logits.weight`, [numClasses, c.DIM_REDUCED, 1, 1], { kind: 'normal', std: 0.001 });
      const b = bias(`${MASK_PREDICTOR_PREFIX}mask_fcn_logits.bias`, numClasses);
      // Every class's logits [D,C,M,M], for the roi.mask_logits tap only: onnxruntime drops these
      // nodes from builds that do not output the tap.
      const logits = g.withScope('mask_fcn_logits', () => ops.conv(g, depthToSpace(g, up, r, 'up'), w, b, { kernel: 1 }));
      return { up: { blob: up, ratio: r, weight: w, bias: b }, logits };
    });
    ctx.tap('roi.mask_logits', logits, 'float32', 'whole', [DIMS.detections, numClasses, DIMS.maskSize, DIMS.maskSize]);

    const maskProbs = g.withScope('mask_probs', () => {
      // torchvision computes every class's logits and keeps mask_prob[arange(D), labels]; the
      // logits of the other classes are never used, so only the label's channel is computed: its
      // 1x1 conv row dotted with the upsampled features of that detection (D x 1 x C_in MatMuls
      // instead of a D x C x C_in conv, 1/NUM_CLASSES of the work and no [D,C,M,M] tensor).
      // MRCNN.CLS_SPECIFIC_MASK false has one class-agnostic channel: row 0 for every detection.
      const rows = c.CLS_SPECIFIC_MASK ? detections.labels : ops.constantOfShape(g, ops.shape(g, detections.labels, undefined, undefined, 'd'), 0, 'int64', 'row0');
      const selected = selectedLogits(g, up.blob, up.weight, up.bias, rows, c.DIM_REDUCED, up.ratio);
      return ops.sigmoid(g, selected);
    });
    return { maskProbs };
  }

  /** Training part: mask targets on the host, the mask loss in the graph. */
  get training(): RoiHeadTraining {
    return {
      targets: (input, config) => projectMaskTargets(input, config),
      buildLosses: (ctx, features, positives) => this.buildLosses(ctx, features, positives),
    };
  }

  /**
   * The mask loss (torchvision `maskrcnn_loss`): every class's logits of the positive RoIs, the
   * channel of each RoI's GT class (channel 0 with MRCNN.CLS_SPECIFIC_MASK false), BCE-with-logits
   * against the projected GT mask, mean over RoIs x M x M (0 when the batch has no positive).
   * The transposed conv is a ConvTranspose on the state-dict weight here (the inference graph's
   * host-rearranged 1x1 conv would hide the parameter from the gradients).
   */
  private buildLosses(ctx: TrainingBuildContext, features: FeatureMaps, positives: TrainingRois): LossTerm[] {
    const g = ctx.graph;
    const c = ctx.config.MRCNN;
    const numClasses = c.CLS_SPECIFIC_MASK ? ctx.config.MODEL.NUM_CLASSES : 1;
    const { x, channels, weight, bias } = this.convStack(ctx, features, positives);
    const logits = g.withScope('predictor', () => {
      const r = c.UPSAMPLE_RATIO;
      const up = g.withScope('conv5_mask', () => {
        const w = weight(`${MASK_PREDICTOR_PREFIX}conv5_mask.weight`, [channels, c.DIM_REDUCED, r, r], { kind: 'he' });
        const b = bias(`${MASK_PREDICTOR_PREFIX}conv5_mask.bias`, c.DIM_REDUCED);
        return ops.relu(g, ops.convTranspose(g, x, w, b, { kernel: r, stride: r }));
      });
      const w = weight(`${MASK_PREDICTOR_PREFIX}mask_fcn_logits.weight`, [numClasses, c.DIM_REDUCED, 1, 1], { kind: 'normal', std: 0.001 });
      const b = bias(`${MASK_PREDICTOR_PREFIX}mask_fcn_logits.bias`, numClasses);
      return g.withScope('mask_fcn_logits', () => ops.conv(g, up, w, b, { kernel: 1 }));
    });
    return g.withScope('losses', () => {
      const m = c.RESOLUTION;
      const index = ctx.input(MASK_TRAINING_INPUTS.channelIndex, 'int64', ['Rp']);
      const targets = ctx.input(MASK_TRAINING_INPUTS.targets, 'float32', ['Rp', m, m]);
      const selected = ops.gather(g, ops.reshape(g, logits, [-1, m, m], 'per_channel'), index, 0, 'selected');
      const loss = losses.safeMean(g, losses.bceWithLogitsSum(g, selected, targets), losses.elementCount(g, targets, 'elements'), 'mask');
      return [{ name: 'mask', blob: loss }];
    });
  }
}

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
    const gt = input.targets[i];
    const [h, w] = gt.size;
    if (s.positives.length > 0 && !gt.masks) throw new TargetError(`image ${i} has positive RoIs but no GT masks`, { source: `image ${i} masks` });
    for (const r of s.positives) {
      const matched = s.matchedGt[r];
      const target = new Float32Array(m * m);
      roiAlignBitmap(gt.masks!.subarray(matched * h * w, (matched + 1) * h * w), h, w, s.rows.subarray(4 * r, 4 * r + 4), m, target);
      parts.push(target);
      index.push(index.length * numClasses + (config.MRCNN.CLS_SPECIFIC_MASK ? s.labels[r] : 0));
      labels.push(s.labels[r]);
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
