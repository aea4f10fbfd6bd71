/**
 * Config layers that match where weights come from. Weights trained under one convention only
 * reproduce their results under that convention's input normalisation, box arithmetic and
 * backbone details, so a converted checkpoint comes with the core config keys that say so.
 * Architecture (class count, heads, widths) is read from the tensors by {@link inferredConfigLayer}.
 */
import type { ConfigOverrides, HostTensor } from '@rcnn/core';
import type { CheckpointFormat, ConfigHints } from './report.js';

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
/** Detectron's `PIXEL_MEANS` (BGR, 0..255). */
export const DETECTRON_PIXEL_MEANS = [102.9801, 115.9465, 122.7717];
/** Detectron2's default `MODEL.PIXEL_MEAN` (BGR, 0..255; MSRA ResNet backbones). */
export const DETECTRON2_PIXEL_MEANS = [103.53, 116.28, 123.675];

/**
 * The config layer (`{SECTION: {KEY: value}}`, for `loadConfig({layers})`) matching a weights
 * convention's semantics. Every key it sets is a core key; values are the conventions' defaults
 * (torchvision 0.14 detection models, Detectron2's model zoo `Base-RCNN-*` configs, Detectron's
 * `core/config.py`), refined by `hints` read from the checkpoint.
 *
 * - torchvision: RGB in [0, 1] with ImageNet mean/std, torchvision resize, stride in the 3x3,
 *   FrozenBN eps 1e-5 (0 for the legacy COCO_V1 checkpoints, `hints.legacyTorchvisionCoco`).
 * - detectron2: BGR 0..255 minus its pixel mean, std 1 (or the checkpoint's `pixel_mean`/`pixel_std`),
 *   stride in the 1x1, FrozenBN eps 1e-5, ROIAlignV2 (`aligned` true, sampling ratio 0) in every
 *   head, RoI level eps 1e-8, no RPN min size, no +1. Resize: the `detectron` rule is the closest
 *   core rule (Detectron2 compares the unrounded long side and resizes with PIL).
 * - detectron: BGR 0..255 minus its pixel means, std 1, Detectron resize, `+1` box widths
 *   (`MODEL.LEGACY_PLUS_ONE`), stride in the 1x1, AffineChannel (or FrozenBN with eps 0 for the
 *   `frozen-bn` form), no RPN min size.
 * C4 layouts (`hints.layout` c4) of Detectron and Detectron2 do not pad to a multiple of 32.
 */
export function suggestedConfigLayer(format: CheckpointFormat, hints: ConfigHints = {}): ConfigOverrides {
  switch (format) {
    case 'torchvision':
      return {
        MODEL: { LEGACY_PLUS_ONE: false },
        INPUT: { FORMAT: 'RGB', PIXEL_RANGE: 1, PIXEL_MEANS: IMAGENET_MEAN, PIXEL_STDS: IMAGENET_STD, RESIZE_RULE: 'torchvision' },
        RESNETS: { STRIDE_1X1: false, NORM: 'FrozenBN', FROZEN_BN_EPS: hints.legacyTorchvisionCoco ? 0 : 1e-5 },
      };
    case 'detectron2': {
      const aligned = { ROI_XFORM_ALIGNED: true, ROI_XFORM_SAMPLING_RATIO: 0 };
      return {
        MODEL: { LEGACY_PLUS_ONE: false },
        INPUT: {
          FORMAT: 'BGR',
          PIXEL_RANGE: 255,
          PIXEL_MEANS: hints.pixelMean ?? DETECTRON2_PIXEL_MEANS,
          PIXEL_STDS: hints.pixelStd ?? [1, 1, 1],
          RESIZE_RULE: 'detectron',
          ...(hints.layout === 'c4' ? { SIZE_DIVISIBILITY: 0 } : {}),
        },
        TEST: { RPN_MIN_SIZE: 0 },
        FPN: { ROI_LEVEL_EPS: 1e-8 },
        RESNETS: { STRIDE_1X1: true, NORM: 'FrozenBN', FROZEN_BN_EPS: 1e-5 },
        FAST_RCNN: aligned,
        MRCNN: aligned,
        KRCNN: aligned,
      };
    }
    case 'detectron':
      return {
        MODEL: { LEGACY_PLUS_ONE: true },
        INPUT: {
          FORMAT: 'BGR',
          PIXEL_RANGE: 255,
          PIXEL_MEANS: DETECTRON_PIXEL_MEANS,
          PIXEL_STDS: [1, 1, 1],
          RESIZE_RULE: 'detectron',
          ...(hints.layout === 'c4' ? { SIZE_DIVISIBILITY: 0 } : {}),
        },
        TEST: { RPN_MIN_SIZE: 0 },
        RESNETS:
          hints.affineChannel === 'frozen-bn' ? { STRIDE_1X1: true, NORM: 'FrozenBN', FROZEN_BN_EPS: 0 } : { STRIDE_1X1: true, NORM: 'AffineChannel', FROZEN_BN_EPS: 0 },
      };
  }
}

/**
 * Architecture keys read from torchvision-named tensors: class count, which heads exist, their
 * widths and depths. Only keys the tensors determine are set.
 */
export function inferredConfigLayer(tensors: ReadonlyMap<string, HostTensor>): ConfigOverrides {
  const dims = (k: string): readonly number[] | undefined => tensors.get(k)?.dims;
  const count = (re: RegExp): number => [...tensors.keys()].filter((k) => re.test(k)).length;
  const model: Record<string, unknown> = {};
  const cls = dims('roi_heads.box_predictor.cls_score.weight');
  const box = dims('roi_heads.box_predictor.bbox_pred.weight');
  if (cls) {
    model.NUM_CLASSES = cls[0];
    if (box) model.CLS_AGNOSTIC_BBOX_REG = box[0] !== 4 * cls[0];
  }
  const maskLogits = dims('roi_heads.mask_predictor.mask_fcn_logits.weight');
  const kps = dims('roi_heads.keypoint_predictor.kps_score_lowres.weight');
  model.MASK_ON = maskLogits !== undefined;
  model.KEYPOINTS_ON = kps !== undefined;
  const layer: Record<string, Record<string, unknown>> = { MODEL: model };
  const fpn = dims('backbone.fpn.inner_blocks.0.0.weight');
  if (fpn) layer.FPN = { DIM: fpn[0] };
  const fc6 = dims('roi_heads.box_head.fc6.weight');
  if (fc6) layer.FAST_RCNN = { MLP_HEAD_DIM: fc6[0] };
  if (maskLogits) {
    const conv = dims('roi_heads.mask_head.0.0.weight');
    const deconv = dims('roi_heads.mask_predictor.conv5_mask.weight');
    layer.MRCNN = {
      NUM_STACKED_CONVS: count(/^roi_heads\.mask_head\.\d+\.0\.weight$/),
      ...(conv ? { CONV_HEAD_DIM: conv[0] } : {}),
      ...(deconv ? { DIM_REDUCED: deconv[1] } : {}),
      CLS_SPECIFIC_MASK: maskLogits[0] !== 1,
    };
  }
  if (kps) {
    const conv = dims('roi_heads.keypoint_head.0.weight');
    layer.KRCNN = {
      NUM_KEYPOINTS: kps[1],
      NUM_STACKED_CONVS: count(/^roi_heads\.keypoint_head\.\d+\.weight$/),
      ...(conv ? { CONV_HEAD_DIM: conv[0] } : {}),
      DECONV_KERNEL: kps[2],
    };
  }
  const stem = dims('backbone.body.conv1.weight');
  if (stem) layer.RESNETS = { STEM_OUT_CHANNELS: stem[0] };
  const anchors = dims('rpn.head.cls_logits.weight');
  const rpnConvs = count(/^rpn\.head\.conv\.\d+\.0\.weight$/);
  if (anchors && rpnConvs > 0) layer.RPN = { HEAD_CONV_DEPTH: rpnConvs };
  return layer;
}
