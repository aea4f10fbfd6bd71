/**
 * Maps a parity case's `case.json` (the fixture format of shared/tools/parity) to a config layer,
 * so any case directory, including ones the project has never seen, can be built and run.
 * Anything the case describes that rcnn-node cannot build exactly is refused by name rather than
 * approximated.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import type { ConfigOverrides } from './config.js';

/** Names of the conv bodies a case maps to (the configurable ResNet bodies of @rcnn/backbone / @rcnn/fpn). */
const CASE_BODIES = {
  fpnBody: 'FPN.add_fpn_ResNet_custom_conv5_body',
  c4Body: 'ResNet.add_ResNet_custom_conv4_body',
} as const;

/** One section of a case.json that a registered implementation maps (`model.box.head` for box heads): its fields, `type` included. */
export type CaseSection = Readonly<Record<string, unknown>> & { readonly type: string };

/** What a mapper sees besides its section. */
export interface CaseContext {
  /** The whole `model` object of the case (backbone, fpn, rpn, …), read-only. */
  readonly model: Readonly<Record<string, unknown>>;
  /** The config layer mapped so far (core sections), read-only; the mapper's overrides are merged into it. */
  readonly layer: ConfigOverrides;
  /** The file (for messages). */
  readonly source: string;
  /** Fails with a ConfigError naming the file when `cond` is false ("rcnn-node cannot build this case exactly"). */
  need(cond: boolean, what: string): void;
}

/** A registered implementation's case mapping (from `caseMappers(container)`). */
export interface CaseMapper {
  /** Registry name of the implementation. */
  readonly name: string;
  readonly provider: string;
  /** Slot id (`roi-box-head`). */
  readonly slot: string;
  readonly caseTypes: readonly string[];
  fromCase(section: CaseSection, context: CaseContext): ConfigOverrides;
}

/** Options of the case mapping. */
export interface CaseMappingOptions {
  /** Mappers of the registered implementations (`caseMappers(container)`). */
  readonly mappers?: readonly CaseMapper[];
  /**
   * A box head type no mapper claims: `'error'` (default) fails naming the type and how to
   * register its package; `'omit'` leaves the box head keys at their defaults, for code that
   * builds no box head from the case (a backbone or RPN test).
   */
  readonly unmappedHeads?: 'error' | 'omit';
}

/** The subset of case.json this mapper reads. */
interface CaseModel {
  kind: string;
  num_classes: number;
  num_keypoints?: number | null;
  backbone: {
    type: string;
    stem_channels: number;
    planes: number[];
    blocks: number[];
    groups: number;
    width_per_group: number;
    norm: string;
    frozen_bn_eps: number;
    stride_in_3x3: boolean;
  };
  fpn: null | { out_channels: number; extra_block: string; norm: unknown; upsample: string; names?: string[] };
  rpn: {
    anchor_sizes: number[][];
    aspect_ratios: number[][];
    head_conv_depth: number;
    pre_nms_top_n_test: number;
    post_nms_top_n_test: number;
    nms_thresh: number;
    score_thresh: number;
    min_size: number;
    box_coder_weights: number[];
    bbox_xform_clip: number;
  };
  box: {
    roi_align: { featmap_names: string[]; output_size: number; sampling_ratio: number; aligned: boolean; canonical_scale: number; canonical_level: number };
    head: Record<string, unknown> & { type: string };
    score_thresh: number;
    nms_thresh: number;
    detections_per_img: number;
    box_coder_weights: number[];
    bbox_xform_clip: number;
  };
  mask?: null | {
    roi_align: { output_size: number; sampling_ratio: number; aligned: boolean };
    head_layers: number[];
    dilation: number;
    predictor_in_channels: number;
    predictor_dim_reduced: number;
    resolution: number;
    paste_padding: number;
    mask_threshold: number;
  };
  keypoint?: null | {
    roi_align: { output_size: number; sampling_ratio: number; aligned: boolean };
    head_layers: number[];
    deconv_kernel: number;
    deconv_stride: number;
    deconv_padding: number;
    up_scale: number;
    heatmap_size: number;
  };
  transform: { min_size: number; max_size: number; image_mean: number[]; image_std: number[]; size_divisible: number };
}

/** The subset of a training case's `train` section this mapper reads (shared/tools/parity README, "Training fixtures"). */
interface CaseTrain {
  trainable?: { rule?: string; trainable_backbone_layers?: number | null };
  transform?: { min_size_choices?: number[]; max_size?: number };
  rpn: {
    fg_iou_thresh: number;
    bg_iou_thresh: number;
    allow_low_quality_matches: boolean;
    batch_size_per_image: number;
    positive_fraction: number;
    pre_nms_top_n_train: number;
    post_nms_top_n_train: number;
    smooth_l1_beta: number;
  };
  roi: {
    fg_iou_thresh: number;
    bg_iou_thresh: number;
    allow_low_quality_matches: boolean;
    batch_size_per_image: number;
    positive_fraction: number;
    add_gt_proposals: boolean;
    smooth_l1_beta: number;
  };
  sampling?: { seed?: number };
}

/** Maps a training case's `train` section to TRAIN.* keys. */
function mapTrain(t: CaseTrain, source: string): Record<string, unknown> {
  need(t.roi.allow_low_quality_matches === false, 'RoI low-quality matches are not supported (torchvision never uses them)', source);
  return {
    ...(t.trainable?.rule === 'frozen_conv_body' ? { FREEZE_CONV_BODY: true } : {}),
    ...(t.trainable?.rule === 'trainable_backbone_layers' && typeof t.trainable.trainable_backbone_layers === 'number'
      ? { TRAINABLE_BACKBONE_LAYERS: t.trainable.trainable_backbone_layers }
      : {}),
    ...(t.transform?.min_size_choices ? { SCALES: t.transform.min_size_choices } : {}),
    ...(t.transform?.max_size ? { MAX_SIZE: t.transform.max_size } : {}),
    ...(t.sampling?.seed !== undefined ? { SEED: t.sampling.seed } : {}),
    RPN_POSITIVE_OVERLAP: t.rpn.fg_iou_thresh,
    RPN_NEGATIVE_OVERLAP: t.rpn.bg_iou_thresh,
    RPN_ALLOW_LOW_QUALITY_MATCHES: t.rpn.allow_low_quality_matches,
    RPN_BATCH_SIZE_PER_IM: t.rpn.batch_size_per_image,
    RPN_FG_FRACTION: t.rpn.positive_fraction,
    RPN_PRE_NMS_TOP_N: t.rpn.pre_nms_top_n_train,
    RPN_POST_NMS_TOP_N: t.rpn.post_nms_top_n_train,
    RPN_SMOOTH_L1_BETA: t.rpn.smooth_l1_beta,
    FG_THRESH: t.roi.fg_iou_thresh,
    BG_THRESH_HI: t.roi.bg_iou_thresh,
    BATCH_SIZE_PER_IM: t.roi.batch_size_per_image,
    FG_FRACTION: t.roi.positive_fraction,
    ADD_GT_PROPOSALS: t.roi.add_gt_proposals,
    BBOX_SMOOTH_L1_BETA: t.roi.smooth_l1_beta,
  };
}

function need(cond: boolean, what: string, source: string): asserts cond {
  if (!cond) throw new ConfigError(`${source}: ${what}; rcnn-node cannot build this case exactly`, { key: 'case.json' });
}

function uniform(list: readonly number[], what: string, source: string): number {
  const [first] = list;
  need(first !== undefined && list.every((v) => v === first), `${what} must all be equal (got ${JSON.stringify(list)})`, source);
  return first;
}

/** Reads `case.json` and returns the config layer it describes. */
export function readCaseConfig(path: string, options: CaseMappingOptions = {}): ConfigOverrides {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new ConfigError(`cannot read case file ${path}: ${(cause as Error).message}`, { cause });
  }
  return caseConfigLayer(parsed, path, options);
}

/** True when a parsed JSON document looks like a parity case (has `format_version` and `model.kind`). */
export function isCaseDocument(doc: unknown): boolean {
  const d = doc as { format_version?: unknown; model?: { kind?: unknown } } | null;
  return typeof d === 'object' && d !== null && d.format_version !== undefined && typeof d.model?.kind === 'string';
}

/** Maps a parsed case.json to a config layer (see module doc). */
export function caseConfigLayer(doc: unknown, source = 'case.json', options: CaseMappingOptions = {}): ConfigOverrides {
  if (!isCaseDocument(doc)) throw new ConfigError(`${source} is not a parity case (no format_version / model.kind)`);
  try {
    const layer = mapCase((doc as { model: CaseModel }).model, source, options);
    const train = (doc as { train?: CaseTrain | null }).train;
    return train ? { ...layer, TRAIN: { ...layer.TRAIN, ...mapTrain(train, source) } } : layer;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    // The mapper trusts the case format; a damaged or hand-written case.json (a field missing or of
    // another type) must still fail as a config error naming the file, not as a TypeError.
    throw new ConfigError(`${source}: malformed parity case: ${(e as Error).message}`, {
      key: 'case.json',
      hint: 'regenerate the case, or compare it with a case in fixtures/parity (format in fixtures/parity/README.md)',
      cause: e,
    });
  }
}

/** Merges `overrides` into `layer` section by section. */
function mergeInto(layer: Record<string, Record<string, unknown>>, overrides: ConfigOverrides): void {
  for (const [section, values] of Object.entries(overrides)) {
    if (typeof values !== 'object' || values === null || Array.isArray(values)) throw new ConfigError(`case mapping returned a non-mapping for section ${section}`, { key: section });
    layer[section] = { ...(layer[section] ?? {}), ...(values as Record<string, unknown>) };
  }
}

/**
 * The box head section: the registered mapper that claims its type, else core's own mapping of
 * torchvision's `TwoMLPHead` (core's FAST_RCNN.MLP_HEAD_DIM with the default FAST_RCNN.ROI_BOX_HEAD),
 * else an error naming the type and how to register the package that maps it.
 */
/** The sections a mapped case always sets (so they need no lookup check), plus the optional ones. */
type CaseLayer = Record<string, Record<string, unknown>> & Record<'MODEL' | 'INPUT' | 'TEST' | 'RPN' | 'RESNETS' | 'FAST_RCNN' | 'FPN', Record<string, unknown>>;

function mapBoxHead(m: CaseModel, layer: CaseLayer, source: string, options: CaseMappingOptions): void {
  const head = m.box.head as CaseSection;
  const mapper = (options.mappers ?? []).find((x) => x.slot === 'roi-box-head' && x.caseTypes.includes(head.type));
  if (mapper) {
    const context: CaseContext = { model: m as unknown as Record<string, unknown>, layer, source, need: (cond, what) => need(cond, what, source) };
    mergeInto(layer, mapper.fromCase(head, context));
    return;
  }
  if (head.type === 'TwoMLPHead') {
    layer.FAST_RCNN.MLP_HEAD_DIM = (head as unknown as { representation_size: number }).representation_size;
    return;
  }
  if (options.unmappedHeads === 'omit') return;
  const known = ['TwoMLPHead (core)', ...(options.mappers ?? []).filter((x) => x.slot === 'roi-box-head').flatMap((x) => x.caseTypes.map((t) => `${t} (${x.provider})`))];
  throw new ConfigError(`${source}: box head type "${head.type}" is not mapped by any registered implementation (known: ${known.join(', ')})`, {
    key: 'case.json',
    hint: `register the package whose box head declares caseTypes ["${head.type}"]: register(container) and pass caseMappers(container), or rcnn / npm run parity --plugin <package> (or RCNN_PLUGINS)`,
  });
}

function mapCase(m: CaseModel, source: string, options: CaseMappingOptions): ConfigOverrides {
  need(['fasterrcnn', 'maskrcnn', 'keypointrcnn'].includes(m.kind), `model.kind "${m.kind}" is unknown`, source);
  const b = m.backbone;
  need(b.type === 'resnet_bottleneck', `backbone type "${b.type}" is not resnet_bottleneck`, source);
  need(b.norm === 'FrozenBatchNorm2d', `backbone norm "${b.norm}" is not FrozenBatchNorm2d`, source);
  const r = m.rpn;
  need(r.bbox_xform_clip === m.box.bbox_xform_clip, 'rpn and box bbox_xform_clip differ', source);
  need(r.aspect_ratios.every((a) => JSON.stringify(a) === JSON.stringify(r.aspect_ratios[0])), 'aspect ratios differ per level', source);
  const planes = [...b.planes];
  const blocks = [...b.blocks];
  const layer: CaseLayer = {
    MODEL: {
      NUM_CLASSES: m.num_classes,
      MASK_ON: m.kind === 'maskrcnn',
      KEYPOINTS_ON: m.kind === 'keypointrcnn',
      BBOX_REG_WEIGHTS: m.box.box_coder_weights,
      BBOX_XFORM_CLIP: m.box.bbox_xform_clip,
    },
    INPUT: {
      PIXEL_MEANS: m.transform.image_mean,
      PIXEL_STDS: m.transform.image_std,
      SIZE_DIVISIBILITY: m.transform.size_divisible,
    },
    TEST: {
      SCALE: m.transform.min_size,
      MAX_SIZE: m.transform.max_size,
      RPN_PRE_NMS_TOP_N: r.pre_nms_top_n_test,
      RPN_POST_NMS_TOP_N: r.post_nms_top_n_test,
      RPN_NMS_THRESH: r.nms_thresh,
      RPN_SCORE_THRESH: r.score_thresh,
      RPN_MIN_SIZE: r.min_size,
      SCORE_THRESH: m.box.score_thresh,
      NMS: m.box.nms_thresh,
      DETECTIONS_PER_IM: m.box.detections_per_img,
    },
    RPN: { BBOX_REG_WEIGHTS: r.box_coder_weights, HEAD_CONV_DEPTH: r.head_conv_depth },
    RESNETS: {
      NUM_GROUPS: b.groups,
      WIDTH_PER_GROUP: b.width_per_group,
      STRIDE_1X1: !b.stride_in_3x3,
      FROZEN_BN_EPS: b.frozen_bn_eps,
      STEM_OUT_CHANNELS: b.stem_channels,
    },
    FAST_RCNN: {
      ROI_XFORM_RESOLUTION: m.box.roi_align.output_size,
      ROI_XFORM_SAMPLING_RATIO: m.box.roi_align.sampling_ratio,
      ROI_XFORM_ALIGNED: m.box.roi_align.aligned,
    },
    FPN: {},
  };

  if (m.fpn) {
    need(m.fpn.extra_block === 'LastLevelMaxPool', `FPN extra block "${m.fpn.extra_block}" is not LastLevelMaxPool`, source);
    need(m.fpn.norm === null || m.fpn.norm === undefined, 'FPN with normalisation is not supported', source);
    need(m.fpn.upsample === 'nearest', `FPN upsampling "${m.fpn.upsample}" is not nearest`, source);
    need(planes.length === 4, 'an FPN case needs 4 backbone stages', source);
    need(r.anchor_sizes.length === 5, 'an FPN case needs anchors for 5 levels (P2..P6)', source);
    const roiLevels = m.box.roi_align.featmap_names.map((n) => Number(n) + 2);
    need(roiLevels.every((l, i) => Number.isInteger(l) && (i === 0 || l === roiLevels[i - 1]! + 1)), 'RoI featmap names must be consecutive FPN levels', source);
    layer.MODEL.CONV_BODY = CASE_BODIES.fpnBody;
    Object.assign(layer.FPN, {
      FPN_ON: true,
      DIM: m.fpn.out_channels,
      EXTRA_CONV_LEVELS: false,
      RPN_MIN_LEVEL: 2,
      RPN_MAX_LEVEL: 6,
      ROI_MIN_LEVEL: roiLevels[0],
      ROI_MAX_LEVEL: roiLevels[roiLevels.length - 1],
      RPN_ANCHOR_SIZES: r.anchor_sizes,
      RPN_ASPECT_RATIOS: r.aspect_ratios[0],
      ROI_CANONICAL_SCALE: m.box.roi_align.canonical_scale,
      ROI_CANONICAL_LEVEL: m.box.roi_align.canonical_level,
    });
  } else {
    need(r.anchor_sizes.length === 1, 'a case without FPN needs one anchor level', source);
    layer.MODEL.CONV_BODY = CASE_BODIES.c4Body;
    layer.FPN.FPN_ON = false;
    layer.RPN.SIZES = r.anchor_sizes[0];
    layer.RPN.ASPECT_RATIOS = r.aspect_ratios[0];
  }

  layer.RESNETS.STAGE_PLANES = planes;
  layer.RESNETS.STAGE_BLOCKS = blocks;
  mapBoxHead(m, layer, source, options);

  if (m.mask) {
    const k = m.mask;
    need(k.predictor_in_channels === k.head_layers[k.head_layers.length - 1], 'mask predictor input differs from the last head layer', source);
    layer.MRCNN = {
      ROI_XFORM_RESOLUTION: k.roi_align.output_size,
      ROI_XFORM_SAMPLING_RATIO: k.roi_align.sampling_ratio,
      ROI_XFORM_ALIGNED: k.roi_align.aligned,
      NUM_STACKED_CONVS: k.head_layers.length,
      CONV_HEAD_DIM: uniform(k.head_layers, 'mask head layer widths', source),
      DIM_REDUCED: k.predictor_dim_reduced,
      DILATION: k.dilation,
      RESOLUTION: k.resolution,
      PASTE_PADDING: k.paste_padding,
      THRESH_BINARIZE: k.mask_threshold,
    };
  }
  if (m.keypoint) {
    const k = m.keypoint;
    need(k.deconv_stride === 2 && k.deconv_padding === k.deconv_kernel / 2 - 1, 'keypoint deconv must be stride 2 with padding kernel/2 - 1', source);
    layer.KRCNN = {
      NUM_KEYPOINTS: m.num_keypoints ?? 17,
      ROI_XFORM_RESOLUTION: k.roi_align.output_size,
      ROI_XFORM_SAMPLING_RATIO: k.roi_align.sampling_ratio,
      ROI_XFORM_ALIGNED: k.roi_align.aligned,
      NUM_STACKED_CONVS: k.head_layers.length,
      CONV_HEAD_DIM: uniform(k.head_layers, 'keypoint head layer widths', source),
      DECONV_KERNEL: k.deconv_kernel,
      UP_SCALE: k.up_scale,
      HEATMAP_SIZE: k.heatmap_size,
    };
  }
  return layer;
}
