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
  type Blob,
  type BuildContext,
  type GraphBuilder,
  ConfigError,
  type Detections,
  type FeatureMaps,
  type RoiMaskHead,
  conv2d,
  conv2dParameters,
  convTransposeParameters,
  ops,
  parameter,
  readParameter,
  roiPooler,
  sequentialKey,
} from '@rcnn/core';
import { PASTE_MASKS } from './paste-masks.js';

/** State-dict prefix of the conv stack (torchvision `roi_heads.mask_head`). */
export const MASK_HEAD_PREFIX = 'roi_heads.mask_head.';
/** State-dict prefix of the predictor (torchvision `roi_heads.mask_predictor`). */
export const MASK_PREDICTOR_PREFIX = 'roi_heads.mask_predictor.';

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

  build(ctx: BuildContext, features: FeatureMaps, detections: Detections): { readonly maskProbs: Blob } {
    const g = ctx.graph;
    const c = ctx.config.MRCNN;
    const numClasses = c.CLS_SPECIFIC_MASK ? ctx.config.MODEL.NUM_CLASSES : 1;
    validate(ctx);
    const pooled = roiPooler(ctx, features, { boxes: detections.boxes, batchIndex: detections.batchIndex }, c, { what: 'mask head' });
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

    const { up, logits } = g.withScope('predictor', () => {
      const r = c.UPSAMPLE_RATIO;
      const up = g.withScope('conv5_mask', () => {
        // PyTorch ConvTranspose2d weight layout [C_in, C_out, k, k] is also ONNX's.
        const spec = { key: `${MASK_PREDICTOR_PREFIX}conv5_mask`, inChannels: channels, outChannels: c.DIM_REDUCED, kernel: r, stride: r };
        const [w, b] = convTransposeParameters(spec).map((p) => readParameter(ctx, p));
        return ops.relu(g, upsampleAsConv(g, x, w!, b!, channels, c.DIM_REDUCED, r));
      });
      const logitsSpec = { key: `${MASK_PREDICTOR_PREFIX}mask_fcn_logits`, inChannels: c.DIM_REDUCED, outChannels: numClasses, kernel: 1, weightInit: { kind: 'normal', std: 0.001 } as const };
      const [w, b] = conv2dParameters(logitsSpec).map((p) => parameter(ctx, p));
      // Every class's logits [D,C,M,M], for the roi.mask_logits tap only: onnxruntime drops these
      // nodes from builds that do not output the tap.
      const logits = g.withScope('mask_fcn_logits', () => ops.conv(g, depthToSpace(g, up, r, 'up'), w!, b!, { kernel: 1 }));
      return { up: { blob: up, ratio: r, weight: w!, bias: b! }, logits };
    });
    ctx.tap('roi.mask_logits', logits, 'float32', 'whole');

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
}
