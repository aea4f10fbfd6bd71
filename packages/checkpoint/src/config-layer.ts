/**
 * Config layers that match where weights come from. Weights trained under one convention only
 * reproduce their results under that convention's input normalisation, box arithmetic and
 * backbone details, so a converted checkpoint comes with the core config keys that say so.
 * Architecture (class count, heads, widths) is read from the tensors by {@link inferredConfigLayer}.
 */
import { type ConfigOverrides, DETECTRON2_DEFAULT_PIXEL_MEANS, type HostTensor, detectron2ConventionsLayer } from '@rcnn/core';
import type { CheckpointFormat, ConfigHints } from './report.js';

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
/** Detectron's `PIXEL_MEANS` (BGR, 0..255). */
export const DETECTRON_PIXEL_MEANS = [102.9801, 115.9465, 122.7717];
/** Detectron2's default `MODEL.PIXEL_MEAN` (BGR, 0..255; MSRA ResNet backbones). */
export const DETECTRON2_PIXEL_MEANS: readonly number[] = DETECTRON2_DEFAULT_PIXEL_MEANS;

/**
 * The config layer (`{SECTION: {KEY: value}}`, for `loadConfig({layers})`) matching a weights
 * convention's semantics. Every key it sets is a core key; values are the conventions' defaults
 * (torchvision 0.14 detection models, Detectron2's model zoo `Base-RCNN-*` configs, Detectron's
 * `core/config.py`), refined by `hints` read from the checkpoint.
 *
 * - torchvision: RGB in [0, 1] with ImageNet mean/std, torchvision resize, stride in the 3x3,
 *   FrozenBN eps 1e-5 (0 for the legacy COCO_V1 checkpoints, `hints.legacyTorchvisionCoco`).
 * - detectron2: core's `detectron2ConventionsLayer`: BGR 0..255 minus its pixel mean, std 1 (or the
 *   checkpoint's `pixel_mean`/`pixel_std`), ResizeShortestEdge with PIL bilinear, stride in the 1x1,
 *   FrozenBN eps 1e-5, ROIAlignV2 in every head, RoI level eps 1e-8, unrounded anchors with fixed
 *   strides, `nonempty` proposals, Detectron2's mask paste and keypoint score, no +1; C4: 6000
 *   proposals per level before NMS.
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
      const layer = detectron2ConventionsLayer({
        c4: hints.layout === 'c4',
        ...(hints.pixelMean ? { pixelMeans: hints.pixelMean } : {}),
        ...(hints.pixelStd ? { pixelStds: hints.pixelStd } : {}),
      });
      return hints.layout === 'c4' ? { ...layer, TEST: { ...layer.TEST, RPN_PRE_NMS_TOP_N: 6000 } } : layer;
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
    if (box) model.CLS_AGNOSTIC_BBOX_REG = box[0] !== 4 * cls[0]!;
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
  Object.assign(layer, mergeLayers(layer, convBodyLayer(tensors, fpn !== undefined)));
  const anchors = dims('rpn.head.cls_logits.weight');
  const rpnConvs = count(/^rpn\.head\.conv\.\d+\.0\.weight$/);
  if (anchors && rpnConvs > 0) layer.RPN = { HEAD_CONV_DEPTH: rpnConvs };
  return layer;
}

function mergeLayers(a: Record<string, Record<string, unknown>>, b: Record<string, Record<string, unknown>>): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = { ...a };
  for (const [section, keys] of Object.entries(b)) out[section] = { ...(out[section] ?? {}), ...keys };
  return out;
}

/** Blocks per stage of the standard ResNet depths (torchvision layer1..layer4). */
const STANDARD_DEPTHS: Readonly<Record<string, number>> = { '3,4,6,3': 50, '3,4,23,3': 101, '3,8,36,3': 152 };

/**
 * The conv body the backbone tensors describe: a standard ResNet-50/101/152 (or ResNeXt-101
 * 32x8d / 64x4d) by name when its stage depths and widths are standard, else the configurable
 * body with `RESNETS.STAGE_BLOCKS` / `STAGE_PLANES` / `NUM_GROUPS` / `WIDTH_PER_GROUP` read from the
 * tensors. C4 layouts (no FPN, res5 in the box head) get the C4 body and the res5 box head.
 */
export function convBodyLayer(tensors: ReadonlyMap<string, HostTensor>, fpn: boolean): Record<string, Record<string, unknown>> {
  const dims = (k: string): readonly number[] | undefined => tensors.get(k)?.dims;
  const stages: { blocks: number; planes: number; width: number; groups: number }[] = [];
  const res5InHead = !fpn && dims('roi_heads.box_head.res5.0.conv1.weight') !== undefined;
  for (let s = 1; s <= 4; s++) {
    const prefix = s === 4 && res5InHead ? 'roi_heads.box_head.res5' : `backbone.body.layer${s}`;
    let blocks = 0;
    while (dims(`${prefix}.${blocks}.conv1.weight`)) blocks++;
    if (blocks === 0) break;
    const width = dims(`${prefix}.0.conv1.weight`)?.[0];
    const conv2In = dims(`${prefix}.0.conv2.weight`)?.[1];
    const conv3Out = dims(`${prefix}.0.conv3.weight`)?.[0];
    // Not a bottleneck body this can read (missing convs, or tensors of a lower rank): infer nothing.
    if (width === undefined || conv2In === undefined || conv3Out === undefined) return {};
    stages.push({ blocks, planes: conv3Out / 4, width, groups: width / conv2In });
  }
  if (stages.length < 3) return {};
  const c4 = !fpn;
  const groups = stages[0]!.groups;
  const widthPerGroup = (64 * stages[0]!.width) / (stages[0]!.planes * groups);
  const consistent = stages.every(
    (st, i) => st.groups === groups && st.planes === stages[0]!.planes * 2 ** i && st.width === Math.floor((st.planes * widthPerGroup) / 64) * groups,
  );
  if (!consistent || !Number.isInteger(widthPerGroup)) return {};
  const depth = stages.length === 4 ? STANDARD_DEPTHS[stages.map((st) => st.blocks).join(',')] : undefined;
  const standardPlanes = stages[0]!.planes === 64;
  let body: string;
  const resnets: Record<string, unknown> = {};
  if (depth && standardPlanes && groups === 1 && widthPerGroup === 64) body = `ResNet${depth}`;
  else if (depth === 101 && standardPlanes && ((groups === 32 && widthPerGroup === 8) || (groups === 64 && widthPerGroup === 4))) body = `ResNeXt101_${groups}x${widthPerGroup}d`;
  else {
    body = 'ResNet_custom';
    Object.assign(resnets, {
      STAGE_BLOCKS: stages.map((st) => st.blocks),
      STAGE_PLANES: stages.map((st) => st.planes),
      NUM_GROUPS: groups,
      WIDTH_PER_GROUP: widthPerGroup,
    });
  }
  const layer: Record<string, Record<string, unknown>> = {
    MODEL: { CONV_BODY: c4 ? `ResNet.add_${body}_conv4_body` : `FPN.add_fpn_${body}_conv5_body` },
    FPN: { FPN_ON: !c4 },
  };
  if (Object.keys(resnets).length > 0) layer.RESNETS = resnets;
  if (res5InHead) layer.FAST_RCNN = { ROI_BOX_HEAD: 'ResNet.add_ResNet_roi_conv5_head', ROI_XFORM_RESOLUTION: 14 };
  return layer;
}
