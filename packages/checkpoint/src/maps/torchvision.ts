/**
 * torchvision naming: the target of every map. Reading torchvision weights only replays the key
 * upgrades torchvision 0.14's `_load_from_state_dict` hooks apply to checkpoints saved by older
 * versions (module `_version` < 2: FeaturePyramidNetwork, RPNHead and MaskRCNNHeads gained a
 * `Conv2dNormActivation` level in torchvision 0.13), and drops `num_batches_tracked`, which
 * FrozenBatchNorm2d deletes on load.
 */
import { type NameRule, ignore, rename } from './rules.js';

const P = '(weight|bias)';

/** Known torchvision detection prefixes: keys outside them are reported as unmapped. */
const TORCHVISION_KEY = /^(backbone\.(body|fpn)\.|rpn\.head\.|roi_heads\.(box_head|box_predictor|mask_head|mask_predictor|keypoint_head|keypoint_predictor)\.)/;

/** Rules applied to torchvision-named checkpoints (legacy upgrades first, then the identity). */
export const TORCHVISION_RULES: readonly NameRule[] = [
  rename(
    'backbone.fpn.inner_blocks.{i}.{p}',
    'backbone.fpn.inner_blocks.{i}.0.{p}',
    new RegExp(`^backbone\\.fpn\\.inner_blocks\\.(\\d+)\\.${P}$`),
    (m) => `backbone.fpn.inner_blocks.${m[1]}.0.${m[2]}`,
    { note: 'FeaturePyramidNetwork version < 2 (torchvision <= 0.12)' },
  ),
  rename(
    'backbone.fpn.layer_blocks.{i}.{p}',
    'backbone.fpn.layer_blocks.{i}.0.{p}',
    new RegExp(`^backbone\\.fpn\\.layer_blocks\\.(\\d+)\\.${P}$`),
    (m) => `backbone.fpn.layer_blocks.${m[1]}.0.${m[2]}`,
    { note: 'FeaturePyramidNetwork version < 2' },
  ),
  rename('rpn.head.conv.{p}', 'rpn.head.conv.0.0.{p}', new RegExp(`^rpn\\.head\\.conv\\.${P}$`), (m) => `rpn.head.conv.0.0.${m[1]}`, {
    note: 'RPNHead version < 2',
  }),
  rename(
    'roi_heads.mask_head.mask_fcn{k}.{p}',
    'roi_heads.mask_head.{k-1}.0.{p}',
    new RegExp(`^roi_heads\\.mask_head\\.mask_fcn(\\d+)\\.${P}$`),
    (m) => `roi_heads.mask_head.${Number(m[1]) - 1}.0.${m[2]}`,
    { note: 'MaskRCNNHeads version < 2 (k = 1, 2, …)' },
  ),
  ignore('*.num_batches_tracked', /(^|\.)num_batches_tracked$/, 'BatchNorm step counter; FrozenBatchNorm2d deletes it on load'),
  rename('(current torchvision names)', '(unchanged)', TORCHVISION_KEY, (m) => m.input, {
    note: 'backbone.body.*, backbone.fpn.*, rpn.head.*, roi_heads.{box,mask,keypoint}_{head,predictor}.*',
  }),
];

/**
 * torchvision COCO_V1 checkpoints whose FrozenBatchNorm2d must run with eps = 0 (torchvision calls
 * `overwrite_eps(model, 0.0)` after loading them): recognised by their published file names.
 */
export const LEGACY_EPS_CHECKPOINTS: readonly string[] = [
  'fasterrcnn_resnet50_fpn_coco-258fb6c6.pth',
  'maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth',
  'keypointrcnn_resnet50_fpn_coco-fc266e95.pth',
];
