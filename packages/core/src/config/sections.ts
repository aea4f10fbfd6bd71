/**
 * The core config sections, with Detectron's key structure and torchvision's defaults where the
 * two differ (each such key says so in its doc). `docs/config.md` is generated from this file's
 * doc strings by `describeConfig()`.
 */
import { defineSection, field } from './schema.js';

const CORE = '@rcnn/core';

/** log(1000 / 16): the largest dw/dh a box coder applies (torchvision and Detectron). */
export const DEFAULT_BBOX_XFORM_CLIP = Math.log(1000 / 16);

/** `MODEL.*`: what is built. */
export const MODEL_SECTION = defineSection('MODEL', 'Which model is built (Detectron MODEL.*).', CORE, {
  TYPE: field.oneOf(['generalized_rcnn'], 'generalized_rcnn', 'Meta-architecture; only Detectron\'s generalized_rcnn exists.'),
  CONV_BODY: field.string(
    'FPN.add_fpn_ResNet50_conv5_body',
    'Registry name of the conv body (slot conv-body). FPN (@rcnn/fpn): FPN.add_fpn_ResNet50_conv5_body (R-50-FPN), ' +
      'FPN.add_fpn_ResNet101_conv5_body (R-101-FPN), FPN.add_fpn_ResNet152_conv5_body (R-152-FPN), ' +
      'FPN.add_fpn_ResNeXt101_32x8d_conv5_body (X-101-32x8d-FPN), FPN.add_fpn_ResNeXt101_64x4d_conv5_body (X-101-64x4d-FPN), ' +
      'FPN.add_fpn_ResNet_custom_conv5_body (stages from RESNETS.STAGE_BLOCKS / STAGE_PLANES, e.g. non-standard widths of a Detectron2 checkpoint). ' +
      'Single level (@rcnn/backbone): ResNet.add_ResNet50_conv4_body (R-50-C4), ResNet.add_ResNet101_conv4_body (R-101-C4), ' +
      'ResNet.add_ResNet152_conv4_body (R-152-C4), ResNet.add_ResNeXt101_32x8d_conv4_body (X-101-32x8d-C4), ' +
      'ResNet.add_ResNeXt101_64x4d_conv4_body (X-101-64x4d-C4), ResNet.add_ResNet_custom_conv4_body; and the C5 bodies ' +
      'ResNet.add_ResNet50_conv5_body (R-50-C5), ResNet.add_ResNet101_conv5_body (R-101-C5), ResNet.add_ResNet152_conv5_body (R-152-C5), ' +
      'ResNet.add_ResNeXt101_32x8d_conv5_body (X-101-32x8d-C5), ResNet.add_ResNeXt101_64x4d_conv5_body (X-101-64x4d-C5), ' +
      'ResNet.add_ResNet_custom_conv5_body.',
  ),
  NUM_CLASSES: field.int(91, 'Number of classes including background (torchvision COCO: 91; Detectron COCO: 81).', { min: 2, max: 100000 }),
  FASTER_RCNN: field.bool(true, 'End-to-end Faster R-CNN: proposals come from the RPN in the same model (implies RPN.RPN_ON).'),
  RPN_ONLY: field.bool(false, 'Stop after the RPN and output proposals (implies RPN.RPN_ON; excludes MASK_ON/KEYPOINTS_ON).'),
  MASK_ON: field.bool(false, 'Add the mask head (Mask R-CNN).'),
  KEYPOINTS_ON: field.bool(false, 'Add the keypoint head (Keypoint R-CNN).'),
  CLS_AGNOSTIC_BBOX_REG: field.bool(false, 'One box regression for all classes instead of one per class.'),
  BBOX_REG_WEIGHTS: field.numbers([10, 10, 5, 5], 'Box coder weights (wx, wy, ww, wh) of the RoI box head.', { length: 4 }),
  BBOX_XFORM_CLIP: field.float(DEFAULT_BBOX_XFORM_CLIP, 'Upper clamp of dw/dh before exp() in every box decode (log(1000/16)).'),
  LEGACY_PLUS_ONE: field.bool(
    false,
    "Detectron's box convention: widths are x2 - x1 + 1 (anchors, decode, clip, areas; in train mode also the matching IoU, the box-regression targets and the flip x -> W - x - 1). torchvision/Detectron2: false.",
  ),
});

/** `INPUT.*`: how an image becomes the network input (torchvision GeneralizedRCNNTransform by default). */
export const INPUT_SECTION = defineSection('INPUT', 'Image preprocessing (torchvision GeneralizedRCNNTransform or Detectron).', CORE, {
  TRANSFORM: field.string('GeneralizedRCNNTransform', 'Registry name of the host-side image transform (slot image-transform).'),
  FORMAT: field.oneOf(['RGB', 'BGR'], 'RGB', 'Channel order the network expects (torchvision RGB; Detectron BGR).'),
  PIXEL_RANGE: field.float(1, 'Pixel values are scaled to [0, PIXEL_RANGE] before normalising (torchvision 1; Detectron 255).', { min: 0 }),
  PIXEL_MEANS: field.numbers([0.485, 0.456, 0.406], 'Per-channel mean subtracted, in FORMAT order (Detectron: 102.9801, 115.9465, 122.7717 BGR).', {
    length: 3,
  }),
  PIXEL_STDS: field.numbers([0.229, 0.224, 0.225], 'Per-channel divisor after subtracting the mean (Detectron: 1, 1, 1).', { length: 3 }),
  RESIZE_RULE: field.oneOf(
    ['torchvision', 'detectron', 'detectron2'],
    'torchvision',
    'torchvision: scale = min(SCALE/short, MAX_SIZE/long) in float32, bilinear; detectron: SCALE/short unless round(scale*long) > MAX_SIZE; ' +
      'detectron2: ResizeShortestEdge (sides int(x + 0.5), unrounded long side against MAX_SIZE) resampled like PIL BILINEAR on the 8-bit image ' +
      '(antialiased when downscaling, rounded to 8 bits).',
  ),
  SIZE_DIVISIBILITY: field.int(32, 'Pad the batch (bottom/right, zeros) to a multiple of this (torchvision 32; Detectron C4 0).', { min: 0, max: 1024 }),
});

/** `TEST.*`: inference thresholds and sizes. */
export const TEST_SECTION = defineSection('TEST', 'Inference-time sizes and thresholds (Detectron TEST.*, torchvision defaults).', CORE, {
  // Bounded: the model input is 3 x MAX_SIZE^2 floats and its activations tens of times more; at
  // 30000 a tiny model took 8.5 GB and failed deep in onnxruntime (int32 element count overflow).
  SCALE: field.int(800, 'Target length of the shorter image side (torchvision min_size).', { min: 1, max: 10_000 }),
  MAX_SIZE: field.int(1333, 'Maximum length of the longer image side (torchvision max_size).', { min: 1, max: 10_000 }),
  RPN_PRE_NMS_TOP_N: field.int(1000, 'Proposals kept per FPN level (per image) before NMS, by objectness logit.', { min: 1, max: 100_000 }),
  RPN_POST_NMS_TOP_N: field.int(1000, 'Proposals kept per image after NMS (torchvision: per image; Detectron FPN: per batch).', { min: 1, max: 100_000 }),
  RPN_NMS_THRESH: field.float(0.7, 'IoU above which an RPN proposal is suppressed.', { min: 0, max: 1 }),
  RPN_MIN_SIZE: field.float(1e-3, 'Proposals with width or height below this (resized-image pixels) are removed (Detectron: 0).', { min: 0 }),
  RPN_MIN_SIZE_RULE: field.oneOf(
    ['torchvision', 'detectron2'],
    'torchvision',
    'How RPN_MIN_SIZE filters proposals after clipping: torchvision keeps width and height >= RPN_MIN_SIZE; detectron2 keeps width and height > RPN_MIN_SIZE ' +
      '(Boxes.nonempty: with 0, boxes clipped to zero width or height are dropped).',
  ),
  RPN_SCORE_THRESH: field.float(0, 'Proposals with sigmoid(objectness) below this are removed (kept when >=).', { min: 0, max: 1 }),
  SCORE_THRESH: field.float(0.05, 'Detections with class score <= this are dropped (strict >, torchvision box_score_thresh).', { min: 0, max: 1 }),
  NMS: field.float(0.5, 'Per-class NMS IoU threshold of the final detections.', { min: 0, max: 1 }),
  DETECTIONS_PER_IM: field.int(100, 'Detections kept per image, by score.', { min: 1, max: 10000 }),
  BBOX_MIN_SIZE: field.float(1e-2, 'Detections with width or height below this (resized-image pixels) are removed.', { min: 0 }),
  NMS_COORDINATE_TRICK_MAX_BOXES: field.int(
    1000,
    "torchvision's batched_nms offsets boxes by class when there are at most this many (CPU: 1000), else runs NMS per class; " +
      'the offset changes float32 rounding, so matching it matters at IoU ties. 0 = always per class.',
    { min: 0, max: 1_000_000 },
  ),
});

/** `RPN.*`: region proposal network. */
export const RPN_SECTION = defineSection('RPN', 'Region proposal network (Detectron RPN.*).', CORE, {
  RPN_ON: field.bool(false, 'Build the RPN. Implied by MODEL.FASTER_RCNN and MODEL.RPN_ONLY, as in Detectron.'),
  HEAD: field.string('rpn_heads.add_generic_rpn_outputs', 'Registry name of the RPN head (slot rpn-head).'),
  SIZES: field.numbers([32, 64, 128, 256, 512], 'Anchor sizes of the single-level (C4) RPN, ratio-major order as torchvision AnchorGenerator.'),
  ASPECT_RATIOS: field.numbers([0.5, 1, 2], 'Anchor aspect ratios (h/w) of the single-level RPN.'),
  BBOX_REG_WEIGHTS: field.numbers([1, 1, 1, 1], 'Box coder weights of the RPN.', { length: 4 }),
  ANCHOR_GENERATOR: field.oneOf(
    ['torchvision', 'detectron2'],
    'torchvision',
    'torchvision: base anchors rounded, stride = padded size // feature size; detectron2: DefaultAnchorGenerator, base anchors not rounded, ' +
      'fixed stride 2^level (also on P6 when the padded size is not a multiple of 64). MODEL.LEGACY_PLUS_ONE selects Detectron\'s generate_anchors instead.',
  ),
  ANCHOR_OFFSET: field.float(0, 'Anchor centres are shifted by this fraction of the stride (Detectron2 ANCHOR_GENERATOR.OFFSET).', { min: 0, max: 1 }),
  HEAD_CONV_DEPTH: field.int(1, 'Number of 3x3 conv + ReLU layers before the RPN outputs (torchvision conv_depth).', { min: 1, max: 16 }),
});

/** `FPN.*`: feature pyramid. */
export const FPN_SECTION = defineSection('FPN', 'Feature pyramid network (Detectron FPN.*).', CORE, {
  FPN_ON: field.bool(true, 'The conv body is an FPN (set by the choice of MODEL.CONV_BODY; checked against it).'),
  IMPL: field.string('FPN.add_fpn', 'Registry name of the FPN implementation (slot fpn).'),
  DIM: field.int(256, 'Channels of every FPN level.', { min: 1, max: 8192 }),
  RPN_MIN_LEVEL: field.int(2, 'Finest pyramid level the RPN uses (P2).', { min: 1, max: 8 }),
  RPN_MAX_LEVEL: field.int(6, 'Coarsest pyramid level the RPN uses (P6).', { min: 1, max: 8 }),
  ROI_MIN_LEVEL: field.int(2, 'Finest level the RoI heads pool from (P2).', { min: 1, max: 8 }),
  ROI_MAX_LEVEL: field.int(5, 'Coarsest level the RoI heads pool from (P5).', { min: 1, max: 8 }),
  RPN_ANCHOR_START_SIZE: field.float(32, 'Anchor size at RPN_MIN_LEVEL; doubles every level (unless RPN_ANCHOR_SIZES is set).', { min: 1 }),
  RPN_ANCHOR_SIZES: field.numberLists([], 'Explicit anchor sizes per RPN level (torchvision anchor_sizes, e.g. [[32], [64], …]); [] = from RPN_ANCHOR_START_SIZE.'),
  RPN_ASPECT_RATIOS: field.numbers([0.5, 1, 2], 'Anchor aspect ratios (h/w) at every FPN level.'),
  ROI_CANONICAL_SCALE: field.float(224, 'RoI level mapping: a box of this sqrt(area) maps to ROI_CANONICAL_LEVEL.', { min: 1 }),
  ROI_CANONICAL_LEVEL: field.int(4, 'RoI level mapping: the level of a canonical-size box.', { min: 1, max: 8 }),
  ROI_LEVEL_EPS: field.float(1e-6, 'Added to the log2 in the RoI level mapping (torchvision LevelMapper eps).', { min: 0 }),
  EXTRA_CONV_LEVELS: field.bool(
    false,
    "P6 from a 3x3/2 conv on C5 (Detectron's extra conv levels) instead of max_pool2d(P5, 1, 2) (torchvision LastLevelMaxPool).",
  ),
});

/** `RESNETS.*`: ResNet / ResNeXt conv bodies. */
export const RESNETS_SECTION = defineSection('RESNETS', 'ResNet / ResNeXt bottleneck bodies (Detectron RESNETS.*).', CORE, {
  NUM_GROUPS: field.int(1, 'Groups of the 3x3 conv (ResNeXt cardinality).', { min: 1, max: 1024 }),
  WIDTH_PER_GROUP: field.int(64, 'Channels per group of the first stage\'s 3x3 conv (ResNeXt).', { min: 1, max: 8192 }),
  STRIDE_1X1: field.bool(false, 'Stride in the 1x1 conv of a bottleneck (Detectron: true) instead of the 3x3 (torchvision: false).'),
  NORM: field.oneOf(['FrozenBN', 'AffineChannel'], 'FrozenBN', 'Frozen normalisation: torchvision FrozenBatchNorm2d or Detectron AffineChannel.'),
  FROZEN_BN_EPS: field.float(1e-5, 'FrozenBatchNorm2d eps (legacy torchvision COCO checkpoints: 0).', { min: 0 }),
  STEM_OUT_CHANNELS: field.int(64, 'Output channels of the 7x7 stem.', { min: 1, max: 8192 }),
  RES5_DILATION: field.int(1, 'Dilation of res5 (stride 1 when > 1).', { min: 1, max: 64 }),
  STAGE_BLOCKS: field.numbers([], 'Blocks per stage for the configurable bodies (ResNet.add_ResNet_custom_conv4_body, ResNet.add_ResNet_custom_conv5_body, FPN.add_fpn_ResNet_custom_conv5_body): 3 entries = C4, 4 = C5.', {
    integer: true,
  }),
  STAGE_PLANES: field.numbers([64, 128, 256, 512], 'Bottleneck planes per stage for the configurable body (outputs are 4x).', { integer: true }),
});

/** `FAST_RCNN.*`: RoI box head. */
export const FAST_RCNN_SECTION = defineSection('FAST_RCNN', 'RoI box head and its outputs (Detectron FAST_RCNN.*).', CORE, {
  ROI_BOX_HEAD: field.string('fast_rcnn_heads.add_roi_2mlp_head', 'Registry name of the box head (slot roi-box-head).'),
  OUTPUTS: field.string('fast_rcnn_heads.add_fast_rcnn_outputs', 'Registry name of the box predictor + post-processing (slot roi-box-outputs).'),
  MLP_HEAD_DIM: field.int(1024, 'Hidden width of the 2-MLP head (torchvision representation_size).', { min: 1, max: 65_536 }),
  ROI_XFORM_METHOD: field.oneOf(['RoIAlign'], 'RoIAlign', 'RoI feature transform.'),
  ROI_XFORM_RESOLUTION: field.int(7, 'RoIAlign output size of the box head.', { min: 1, max: 256 }),
  ROI_XFORM_SAMPLING_RATIO: field.int(2, 'RoIAlign sampling ratio (0 = adaptive).', { min: 0, max: 64 }),
  ROI_XFORM_ALIGNED: field.bool(false, 'RoIAlign aligned=True (half-pixel); torchvision and Detectron: false.'),
});

/** `MRCNN.*`: mask head. */
export const MRCNN_SECTION = defineSection('MRCNN', 'Mask head (Detectron MRCNN.*).', CORE, {
  ROI_MASK_HEAD: field.string('mask_rcnn_heads.mask_rcnn_fcn_head_v1up4convs', 'Registry name of the mask head (slot roi-mask-head).'),
  NUM_STACKED_CONVS: field.int(4, 'Number of 3x3 conv + ReLU layers (torchvision mask_layers length).', { min: 0, max: 64 }),
  CONV_HEAD_DIM: field.int(256, 'Channels of each conv layer.', { min: 1, max: 8192 }),
  DIM_REDUCED: field.int(256, 'Channels of the upsampling deconv (torchvision dim_reduced).', { min: 1, max: 8192 }),
  DILATION: field.int(1, 'Dilation of the head convs (torchvision 1; Detectron 2).', { min: 1, max: 64 }),
  UPSAMPLE_RATIO: field.int(2, 'Stride of the 2x2 upsampling deconv.', { min: 1, max: 16 }),
  RESOLUTION: field.int(28, 'Output mask resolution (ROI_XFORM_RESOLUTION * UPSAMPLE_RATIO).', { min: 1, max: 1024 }),
  ROI_XFORM_RESOLUTION: field.int(14, 'RoIAlign output size of the mask head.', { min: 1, max: 256 }),
  ROI_XFORM_SAMPLING_RATIO: field.int(2, 'RoIAlign sampling ratio of the mask head.', { min: 0, max: 64 }),
  ROI_XFORM_ALIGNED: field.bool(false, 'RoIAlign aligned=True for the mask head.'),
  CLS_SPECIFIC_MASK: field.bool(true, 'One mask per class (the predicted class is selected) instead of one class-agnostic mask.'),
  THRESH_BINARIZE: field.float(0.5, 'Pasted probability above which a pixel is in the binary mask.', { min: 0, max: 1 }),
  PASTE_PADDING: field.int(1, 'Padding (pixels of the MxM mask) added before pasting (torchvision paste_masks_in_image).', { min: 0, max: 1024 }),
  PASTE_METHOD: field.oneOf(
    ['torchvision', 'detectron2'],
    'torchvision',
    'torchvision: padded mask resized to the rounded box and pasted, foreground > THRESH_BINARIZE; detectron2: paste_masks_in_image with grid_sample ' +
      'over the exact box, no padding, foreground >= THRESH_BINARIZE.',
  ),
});

/** `KRCNN.*`: keypoint head. */
export const KRCNN_SECTION = defineSection('KRCNN', 'Keypoint head (Detectron KRCNN.*).', CORE, {
  ROI_KEYPOINTS_HEAD: field.string('keypoint_rcnn_heads.add_roi_pose_head_v1convX', 'Registry name of the keypoint head (slot roi-keypoint-head).'),
  NUM_KEYPOINTS: field.int(17, 'Keypoints per instance (COCO person: 17).', { min: 1, max: 1024 }),
  FLIP_MAP: field.numbers(
    [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15],
    'Keypoint index each keypoint becomes when an image is flipped horizontally (TRAIN.USE_FLIPPED; COCO person: left/right swapped).',
    { integer: true },
  ),
  NUM_STACKED_CONVS: field.int(8, 'Number of conv + ReLU layers.', { min: 0, max: 64 }),
  CONV_HEAD_DIM: field.int(512, 'Channels of each conv layer.', { min: 1, max: 8192 }),
  CONV_HEAD_KERNEL: field.int(3, 'Kernel size of the head convs.', { min: 1, max: 15 }),
  DECONV_KERNEL: field.int(4, 'Kernel of the stride-2 transposed conv of the predictor.', { min: 2, max: 16 }),
  UP_SCALE: field.int(2, 'Bilinear upsampling factor after the deconv.', { min: 1, max: 16 }),
  HEATMAP_SIZE: field.int(56, 'Heatmap resolution (ROI_XFORM_RESOLUTION * 2 * UP_SCALE).', { min: 1, max: 1024 }),
  ROI_XFORM_RESOLUTION: field.int(14, 'RoIAlign output size of the keypoint head.', { min: 1, max: 256 }),
  ROI_XFORM_SAMPLING_RATIO: field.int(2, 'RoIAlign sampling ratio of the keypoint head.', { min: 0, max: 64 }),
  ROI_XFORM_ALIGNED: field.bool(false, 'RoIAlign aligned=True for the keypoint head.'),
  LOSS_WEIGHT: field.float(1, 'Weight of the keypoint loss in the training total (Detectron KRCNN.LOSS_WEIGHT; loss.keypoint is reported weighted, as Detectron does).', { min: 0 }),
  KEYPOINT_SCORE: field.oneOf(
    ['torchvision', 'detectron2'],
    'torchvision',
    "Third keypoint column: torchvision 1 (visibility); detectron2 its score (softmax of the resized heatmap at the argmax, normalised over the HEATMAP_SIZE map; can exceed 1).",
  ),
  HEATMAP_MIN_BOX_SIZE: field.float(
    1,
    'Keypoint decoding clamps box width/height (resized-image pixels) to at least this before resizing the heatmap (torchvision heatmaps_to_keypoints: 1).',
    { min: 1e-3 },
  ),
});

/**
 * `TRAIN.*`: the training pass (Detectron TRAIN.* names; defaults are torchvision 0.14.1's, where
 * Detectron / Detectron2 differ the doc says so).
 */
export const TRAIN_SECTION = defineSection('TRAIN', 'Training: the train-mode transform, target matching, sampling and losses (Detectron TRAIN.* names, torchvision defaults).', CORE, {
  FREEZE_CONV_BODY: field.bool(
    false,
    'Detectron: stop gradients at the conv body\'s outputs, so the ResNet AND the FPN (every backbone.* parameter) stay frozen; no backward is built for them.',
  ),
  TRAINABLE_BACKBONE_LAYERS: field.int(
    3,
    'torchvision trainable_backbone_layers (Detectron2 FREEZE_AT = 5 - this): ResNet parameters train only in the last N of conv1, layer1..layer4 (3: conv1 and layer1 frozen). Frozen norms never train. Ignored when FREEZE_CONV_BODY.',
    { min: 0, max: 5 },
  ),
  SCALES: field.numbers([], 'Choices of the shorter side of the training resize (torchvision min_size tuple, one drawn per batch); empty = [TEST.SCALE].', { integer: true }),
  MAX_SIZE: field.int(0, 'Longest side of the training resize (torchvision max_size); 0 = TEST.MAX_SIZE.', { min: 0, max: 10_000 }),
  USE_FLIPPED: field.bool(false, 'Flip each training image (and its boxes, masks, keypoints with KRCNN.FLIP_MAP) horizontally with probability 0.5 (Detectron TRAIN.USE_FLIPPED; torchvision leaves flipping to the dataset).'),
  SEED: field.int(0, 'Seed of the host PRNG that draws the training resize choice, flips and the balanced samples (reproducible steps).', { min: 0, max: 2 ** 31 - 1 }),
  RPN_POSITIVE_OVERLAP: field.float(0.7, 'Anchor IoU >= this with a GT box is positive (torchvision rpn_fg_iou_thresh).', { min: 0, max: 1 }),
  RPN_NEGATIVE_OVERLAP: field.float(0.3, 'Anchor max IoU < this is negative; between the two is ignored (torchvision rpn_bg_iou_thresh).', { min: 0, max: 1 }),
  RPN_ALLOW_LOW_QUALITY_MATCHES: field.bool(true, "Each GT box's highest-IoU anchors (ties included) are positives too (torchvision Matcher allow_low_quality_matches)."),
  RPN_BATCH_SIZE_PER_IM: field.int(256, 'Anchors sampled per image for the RPN losses (torchvision rpn_batch_size_per_image).', { min: 1, max: 1_000_000 }),
  RPN_FG_FRACTION: field.float(0.5, 'Largest fraction of positives among the sampled anchors (torchvision rpn_positive_fraction).', { min: 0, max: 1 }),
  RPN_PRE_NMS_TOP_N: field.int(2000, 'Training proposals kept per FPN level (per image) before NMS (torchvision rpn_pre_nms_top_n_train; Detectron: 2000 per level as well).', { min: 1, max: 1_000_000 }),
  RPN_POST_NMS_TOP_N: field.int(2000, 'Training proposals kept per image after NMS (torchvision rpn_post_nms_top_n_train; Detectron FPN: per batch).', { min: 1, max: 1_000_000 }),
  RPN_SPARSE_HEAD: field.bool(
    true,
    'Evaluate the RPN head\'s training forward and backward at the sampled anchors\' positions only (the losses read nothing else): the same losses and gradients as the dense head up to float summation order, without the dense 3x3 conv and its weight gradient over every level. Needs RPN.HEAD_CONV_DEPTH 1 (deeper heads train densely); false: dense, as torchvision.',
  ),
  PROPOSALS_IN_GRAPH: field.bool(
    true,
    "One session run per training step: the training graph makes the RPN's proposals itself and matches, samples and encodes every head's targets in the graph (sampler keys drawn on the host from TRAIN.SEED), so the body's forward runs once per step. Needs every training part to build its targets in the graph (`buildTargets`); false: the proposal pass and the host targets (two sessions, the chain `rcnn train-step` and the fixtures use).",
  ),
  RPN_SMOOTH_L1_BETA: field.float(1 / 9, 'Smooth-L1 beta of the RPN box loss (torchvision 1/9; Detectron2 0 = L1).', { min: 0 }),
  FG_THRESH: field.float(0.5, 'RoI IoU >= this with a GT box is foreground (torchvision box_fg_iou_thresh).', { min: 0, max: 1 }),
  BG_THRESH_HI: field.float(0.5, 'RoI max IoU < this is background; between BG_THRESH_HI and FG_THRESH is ignored (torchvision box_bg_iou_thresh; Detectron BG_THRESH_LO 0 has no torchvision counterpart).', {
    min: 0,
    max: 1,
  }),
  BATCH_SIZE_PER_IM: field.int(512, 'RoIs sampled per image for the box losses (torchvision box_batch_size_per_image; Detectron 512, Detectron2 512).', { min: 1, max: 100_000 }),
  FG_FRACTION: field.float(0.25, 'Largest fraction of foreground among the sampled RoIs (torchvision box_positive_fraction).', { min: 0, max: 1 }),
  ADD_GT_PROPOSALS: field.bool(true, 'Append the GT boxes to each image\'s proposals before RoI matching (torchvision always does; Detectron2 PROPOSAL_APPEND_GT).'),
  BBOX_SMOOTH_L1_BETA: field.float(1 / 9, 'Smooth-L1 beta of the RoI box loss (torchvision 1/9; Detectron 1, Detectron2 0 = L1).', { min: 0 }),
});

/**
 * `SOLVER.*`: the training solver (`rcnn train`). Keys and defaults are Detectron's (`core/config.py`,
 * `utils/lr_policy.py`); where Detectron spelled a rule differently the doc says how the key maps:
 * `BIAS_LR_FACTOR` 2 = Detectron's `BIAS_DOUBLE_LR: True`, `WEIGHT_DECAY_BIAS` 0 = its
 * `BIAS_WEIGHT_DECAY: False`; `IMS_PER_BATCH` and `CHECKPOINT_PERIOD` are Detectron2's names
 * (Detectron: `TRAIN.IMS_PER_BATCH` per GPU, `TRAIN.SNAPSHOT_ITERS`).
 */
export const SOLVER_SECTION = defineSection('SOLVER', 'Training solver: SGD with momentum, learning-rate schedule, checkpoints (Detectron SOLVER.*).', CORE, {
  BASE_LR: field.float(0.001, 'Learning rate before warm-up and steps (Detectron default 0.001).', { min: 0 }),
  MOMENTUM: field.float(0.9, 'SGD momentum (PyTorch form: buf = MOMENTUM * buf + (grad + wd * p); p -= lr * buf).', { min: 0, max: 1 }),
  WEIGHT_DECAY: field.float(0.0005, 'L2 weight decay added to the gradient of every trainable weight (Detectron 0.0005).', { min: 0 }),
  BIAS_LR_FACTOR: field.float(2, 'Learning-rate factor of biases (parameters named *.bias); 2 = Detectron BIAS_DOUBLE_LR: True, Detectron2: 1.', { min: 0 }),
  WEIGHT_DECAY_BIAS: field.float(0, 'Weight decay of biases; 0 = Detectron BIAS_WEIGHT_DECAY: False (Detectron2: WEIGHT_DECAY).', { min: 0 }),
  MAX_ITER: field.int(40000, 'Iterations (SGD updates) of the run.', { min: 1, max: 100_000_000 }),
  STEPS: field.numbers([], 'Iterations at which the learning rate is multiplied by GAMMA (Detectron steps_with_decay; a leading 0 as Detectron writes it is ignored).', {
    integer: true,
  }),
  GAMMA: field.float(0.1, 'Factor applied to the learning rate at each of STEPS.', { min: 0 }),
  WARM_UP_ITERS: field.int(500, 'Iterations of learning-rate warm-up at the start (0 = none).', { min: 0, max: 100_000_000 }),
  WARM_UP_FACTOR: field.float(1 / 3, 'Learning-rate factor at iteration 0 of the warm-up.', { min: 0 }),
  WARM_UP_METHOD: field.oneOf(['linear', 'constant'], 'linear', 'Warm-up: linear (factor rises from WARM_UP_FACTOR to 1 over WARM_UP_ITERS) or constant (WARM_UP_FACTOR throughout).'),
  IMS_PER_BATCH: field.int(2, 'Images per iteration over all replicas (split evenly between them; must be a multiple of the replica count).', { min: 1, max: 1024 }),
  CHECKPOINT_PERIOD: field.int(20000, 'Write a checkpoint every this many iterations (and always at the end); Detectron TRAIN.SNAPSHOT_ITERS.', { min: 1, max: 100_000_000 }),
  CLIP_GRADIENTS: field.oneOf(
    ['none', 'value', 'norm', 'full_model'],
    'none',
    'Gradient clipping before the update (Detectron2 CLIP_TYPE): value (each element to [-CLIP_VALUE, CLIP_VALUE]), norm (each parameter\'s gradient norm to CLIP_VALUE), full_model (the norm of all gradients together).',
  ),
  CLIP_VALUE: field.float(1, 'Threshold of CLIP_GRADIENTS (Detectron2 default 1.0).', { min: 0 }),
  CLIP_NORM_TYPE: field.float(2, 'p of the p-norm for norm / full_model clipping (Infinity is not accepted; use a large p).', { min: 1 }),
  CLIP_NORM_EPS: field.float(1e-6, 'Added to the norm before dividing (torch.nn.utils.clip_grad_norm_).', { min: 0 }),
});

/** `LIMITS.*`: bounds that protect a service from hostile input. */
export const LIMITS_SECTION = defineSection('LIMITS', 'Input bounds of the runtime (protect a service from hostile input).', CORE, {
  MAX_IMAGE_PIXELS: field.int(64_000_000, 'Decoded images with more pixels are refused (width * height).', { min: 1, max: 1_000_000_000 }),
  MAX_IMAGE_SIDE: field.int(20_000, 'Decoded images with a longer side are refused.', { min: 1, max: 1_000_000 }),
  MAX_BATCH: field.int(32, 'Most images one forward pass takes.', { min: 1, max: 1024 }),
  MAX_IMAGE_BYTES: field.int(
    268_435_456,
    'Encoded image files (and streams) larger than this many bytes are refused before they are read whole (256 MiB).',
    { min: 1, max: 2_147_483_647 },
  ),
  READ_TIMEOUT_MS: field.int(30_000, 'A pipe or other special file given as an image (allowSpecialFiles, --allow-special-files) must deliver all its bytes within this time.', {
    min: 1,
    max: 3_600_000,
  }),
  MAX_MODEL_MEMORY_MB: field.int(
    16_384,
    'A config whose estimated memory (RoIs x channels x resolution², RoIAlign sampling grids, mask paste buffers; estimateModelMemory) exceeds this is refused before the build.',
    { min: 1, max: 1_048_576 },
  ),
});

/** Every core section, in documentation order. */
export const CORE_SECTIONS = [
  MODEL_SECTION,
  INPUT_SECTION,
  TEST_SECTION,
  RPN_SECTION,
  FPN_SECTION,
  RESNETS_SECTION,
  FAST_RCNN_SECTION,
  MRCNN_SECTION,
  KRCNN_SECTION,
  TRAIN_SECTION,
  SOLVER_SECTION,
  LIMITS_SECTION,
] as const;
