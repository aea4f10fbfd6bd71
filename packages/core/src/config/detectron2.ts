/**
 * Detectron2 configs (`cfg.dump()` output and model-zoo YAMLs with `_BASE_`) read as rcnn-node
 * config layers, and the Detectron2 conventions as one layer.
 *
 * Every key of a Detectron2 config is either mapped to rcnn-node keys, accepted as irrelevant to
 * inference (solver, data loader, training-only losses and samplers, heads the meta-architecture
 * does not build) and listed in {@link Detectron2Config.ignored}, or refused with a
 * {@link ConfigError} naming it: a key that would change the results and that rcnn-node cannot
 * reproduce (deformable convs, cascade heads, other meta-architectures, normalised heads, …) never
 * passes silently. Keys missing from a file take Detectron2's defaults (`detectron2/config/defaults.py`).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import type { ConfigOverrides } from './config.js';

/** Detectron2's default `MODEL.PIXEL_MEAN` (BGR, 0..255; MSRA ResNet backbones). */
export const DETECTRON2_DEFAULT_PIXEL_MEANS: readonly number[] = [103.53, 116.28, 123.675];

/**
 * The conventions under which Detectron2 weights reproduce Detectron2's results (every key a core
 * key, each at Detectron2's default): BGR input in 0..255 minus the pixel means, std 1;
 * `ResizeShortestEdge` with PIL bilinear; stride in the 1x1 conv, FrozenBN eps 1e-5; ROIAlignV2
 * (aligned, adaptive sampling) in every head, RoI level eps 1e-8; unrounded anchors with fixed
 * strides; `nonempty` proposal filtering with MIN_SIZE 0; no small-box removal after the box head;
 * Detectron2's mask paste and keypoint score. `c4`: no padding to a multiple of 32.
 */
export function detectron2ConventionsLayer(options: { c4?: boolean; pixelMeans?: readonly number[]; pixelStds?: readonly number[] } = {}): ConfigOverrides {
  const aligned = { ROI_XFORM_ALIGNED: true, ROI_XFORM_SAMPLING_RATIO: 0 };
  return {
    MODEL: { LEGACY_PLUS_ONE: false },
    INPUT: {
      FORMAT: 'BGR',
      PIXEL_RANGE: 255,
      PIXEL_MEANS: options.pixelMeans ?? DETECTRON2_DEFAULT_PIXEL_MEANS,
      PIXEL_STDS: options.pixelStds ?? [1, 1, 1],
      RESIZE_RULE: 'detectron2',
      SIZE_DIVISIBILITY: options.c4 ? 0 : 32,
    },
    TEST: { RPN_MIN_SIZE: 0, RPN_MIN_SIZE_RULE: 'detectron2', BBOX_MIN_SIZE: 0 },
    RPN: { ANCHOR_GENERATOR: 'detectron2', ANCHOR_OFFSET: 0 },
    FPN: { ROI_LEVEL_EPS: 1e-8 },
    RESNETS: { STRIDE_1X1: true, NORM: 'FrozenBN', FROZEN_BN_EPS: 1e-5 },
    FAST_RCNN: aligned,
    MRCNN: { ...aligned, PASTE_METHOD: 'detectron2' },
    KRCNN: { ...aligned, KEYPOINT_SCORE: 'detectron2' },
  };
}

/** A Detectron2 config read as an rcnn-node layer. */
export interface Detectron2Config {
  /** The config layer (conventions + architecture + thresholds). */
  readonly layer: ConfigOverrides;
  /** Detectron2 keys accepted without effect at inference (dotted, sorted). */
  readonly ignored: readonly string[];
  /** Files read, the given one first, then its `_BASE_` chain. */
  readonly files: readonly string[];
}

type Yaml = Record<string, unknown>;

const isMapping = (v: unknown): v is Yaml => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Keys of `MODEL` that only Detectron2 configs have (rcnn-node's MODEL has none of them). */
const DETECTRON2_MODEL_KEYS = ['META_ARCHITECTURE', 'BACKBONE', 'ROI_HEADS', 'RESNETS', 'PROPOSAL_GENERATOR', 'ANCHOR_GENERATOR', 'PIXEL_MEAN', 'WEIGHTS', 'ROI_BOX_HEAD', 'KEYPOINT_ON'];

/** Whether a parsed YAML document is a Detectron2 config rather than an rcnn-node one. */
export function isDetectron2ConfigDocument(doc: unknown): boolean {
  if (!isMapping(doc)) return false;
  if ('_BASE_' in doc) return true;
  const model = doc.MODEL;
  return isMapping(model) && DETECTRON2_MODEL_KEYS.some((k) => k in model);
}

/** Deep merge as yacs `merge_from_other_cfg` does for a `_BASE_` (child wins, mappings merge). */
function mergeInto(base: Yaml, child: Yaml): Yaml {
  const out: Yaml = { ...base };
  for (const [k, v] of Object.entries(child)) out[k] = isMapping(v) && isMapping(out[k]) ? mergeInto(out[k] as Yaml, v) : v;
  return out;
}

function readYaml(path: string, from?: string): Yaml {
  const doc = readYamlDocument(path, from);
  if (doc === null || doc === undefined) return {};
  if (!isMapping(doc)) throw new ConfigError(`Detectron2 config ${path} must hold a mapping of keys`);
  return doc;
}

/** The parsed YAML document of `path`, whatever its shape (probing must not judge a non-Detectron2 file). */
function readYamlDocument(path: string, from?: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const via = from ? ` (the _BASE_ of ${from})` : '';
    throw new ConfigError(`cannot read Detectron2 config ${path}${via}: ${(cause as Error).message}`, {
      key: from ? '_BASE_' : undefined,
      hint: from ? 'model-zoo configs name their base relative to themselves: keep the configs/ tree (Base-RCNN-FPN.yaml, …) next to it' : 'check the path',
      cause,
    });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { logLevel: 'error' });
  } catch (cause) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(cause as Error).message}`, { cause });
  }
  return doc;
}

/** The document with its `_BASE_` chain merged in (bases first), and every file read. */
function resolveBases(doc: Yaml, path: string, seen: string[]): { doc: Yaml; files: string[] } {
  const base = doc._BASE_;
  const { _BASE_: _drop, ...own } = doc;
  if (base === undefined) return { doc: own, files: [path] };
  if (typeof base !== 'string') throw new ConfigError(`_BASE_ in ${path} must be a file name, got ${JSON.stringify(base)}`, { key: '_BASE_' });
  const basePath = resolve(dirname(path), base);
  if (seen.includes(basePath)) throw new ConfigError(`_BASE_ chain of ${path} loops back to ${basePath}`, { key: '_BASE_' });
  const parent = resolveBases(readYaml(basePath, path), basePath, [...seen, basePath]);
  return { doc: mergeInto(parent.doc, own), files: [path, ...parent.files] };
}

/** Detectron2 defaults (`defaults.py`) of every key the mapping reads. */
const DEFAULTS: Readonly<Record<string, unknown>> = {
  'MODEL.META_ARCHITECTURE': 'GeneralizedRCNN',
  'MODEL.LOAD_PROPOSALS': false,
  'MODEL.MASK_ON': false,
  'MODEL.KEYPOINT_ON': false,
  'MODEL.PIXEL_MEAN': [103.53, 116.28, 123.675],
  'MODEL.PIXEL_STD': [1.0, 1.0, 1.0],
  'MODEL.BACKBONE.NAME': 'build_resnet_backbone',
  'MODEL.FPN.IN_FEATURES': [],
  'MODEL.FPN.OUT_CHANNELS': 256,
  'MODEL.FPN.NORM': '',
  'MODEL.FPN.FUSE_TYPE': 'sum',
  'MODEL.PROPOSAL_GENERATOR.NAME': 'RPN',
  'MODEL.PROPOSAL_GENERATOR.MIN_SIZE': 0,
  'MODEL.ANCHOR_GENERATOR.NAME': 'DefaultAnchorGenerator',
  'MODEL.ANCHOR_GENERATOR.SIZES': [[32, 64, 128, 256, 512]],
  'MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS': [[0.5, 1.0, 2.0]],
  'MODEL.ANCHOR_GENERATOR.OFFSET': 0.0,
  'MODEL.RPN.HEAD_NAME': 'StandardRPNHead',
  'MODEL.RPN.IN_FEATURES': ['res4'],
  'MODEL.RPN.BBOX_REG_WEIGHTS': [1.0, 1.0, 1.0, 1.0],
  'MODEL.RPN.PRE_NMS_TOPK_TEST': 6000,
  'MODEL.RPN.POST_NMS_TOPK_TEST': 1000,
  'MODEL.RPN.NMS_THRESH': 0.7,
  'MODEL.RPN.CONV_DIMS': [-1],
  'MODEL.ROI_HEADS.NAME': 'Res5ROIHeads',
  'MODEL.ROI_HEADS.NUM_CLASSES': 80,
  'MODEL.ROI_HEADS.IN_FEATURES': ['res4'],
  'MODEL.ROI_HEADS.SCORE_THRESH_TEST': 0.05,
  'MODEL.ROI_HEADS.NMS_THRESH_TEST': 0.5,
  'MODEL.ROI_BOX_HEAD.NAME': '',
  'MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS': [10.0, 10.0, 5.0, 5.0],
  'MODEL.ROI_BOX_HEAD.NUM_FC': 0,
  'MODEL.ROI_BOX_HEAD.FC_DIM': 1024,
  'MODEL.ROI_BOX_HEAD.NUM_CONV': 0,
  'MODEL.ROI_BOX_HEAD.CONV_DIM': 256,
  'MODEL.ROI_BOX_HEAD.NORM': '',
  'MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG': false,
  'MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION': 14,
  'MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO': 0,
  'MODEL.ROI_BOX_HEAD.POOLER_TYPE': 'ROIAlignV2',
  'MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE': false,
  'MODEL.ROI_MASK_HEAD.NAME': 'MaskRCNNConvUpsampleHead',
  'MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION': 14,
  'MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO': 0,
  'MODEL.ROI_MASK_HEAD.POOLER_TYPE': 'ROIAlignV2',
  'MODEL.ROI_MASK_HEAD.NUM_CONV': 0,
  'MODEL.ROI_MASK_HEAD.CONV_DIM': 256,
  'MODEL.ROI_MASK_HEAD.NORM': '',
  'MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK': false,
  'MODEL.ROI_KEYPOINT_HEAD.NAME': 'KRCNNConvDeconvUpsampleHead',
  'MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION': 14,
  'MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO': 0,
  'MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE': 'ROIAlignV2',
  'MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS': [512, 512, 512, 512, 512, 512, 512, 512],
  'MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS': 17,
  'MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT': 1.0,
  'MODEL.RESNETS.DEPTH': 50,
  'MODEL.RESNETS.OUT_FEATURES': ['res4'],
  'MODEL.RESNETS.NUM_GROUPS': 1,
  'MODEL.RESNETS.NORM': 'FrozenBN',
  'MODEL.RESNETS.WIDTH_PER_GROUP': 64,
  'MODEL.RESNETS.STRIDE_IN_1X1': true,
  'MODEL.RESNETS.RES5_DILATION': 1,
  'MODEL.RESNETS.RES2_OUT_CHANNELS': 256,
  'MODEL.RESNETS.STEM_OUT_CHANNELS': 64,
  'MODEL.RESNETS.DEFORM_ON_PER_STAGE': [false, false, false, false],
  'INPUT.MIN_SIZE_TEST': 800,
  'INPUT.MAX_SIZE_TEST': 1333,
  'INPUT.FORMAT': 'BGR',
  'TEST.DETECTIONS_PER_IMAGE': 100,
  'TEST.AUG.ENABLED': false,
};

/**
 * Keys (regular expressions over dotted names) that do not change what a GeneralizedRCNN computes
 * at inference: training schedule, data, losses, samplers, logging, and the sections of heads the
 * model does not build. Checked after the mapped keys.
 */
const IGNORED: readonly RegExp[] = [
  /^(CUDNN_BENCHMARK|OUTPUT_DIR|SEED|VERSION|VIS_PERIOD|FLOAT32_PRECISION)$/,
  /^(SOLVER|DATALOADER|DATASETS|GLOBAL)\./,
  /^INPUT\.(CROP\..*|MIN_SIZE_TRAIN|MAX_SIZE_TRAIN|MIN_SIZE_TRAIN_SAMPLING|RANDOM_FLIP|MASK_FORMAT)$/,
  /^TEST\.(EVAL_PERIOD|EXPECTED_RESULTS|KEYPOINT_OKS_SIGMAS|PRECISE_BN\..*)$/,
  /^MODEL\.(DEVICE|WEIGHTS)$/,
  /^MODEL\.(RETINANET|SEM_SEG_HEAD|PANOPTIC_FPN|ROI_BOX_CASCADE_HEAD)\./,
  /^MODEL\.BACKBONE\.FREEZE_AT$/,
  /^MODEL\.ANCHOR_GENERATOR\.ANGLES$/,
  /^MODEL\.RPN\.(BATCH_SIZE_PER_IMAGE|POSITIVE_FRACTION|IOU_THRESHOLDS|IOU_LABELS|SMOOTH_L1_BETA|LOSS_WEIGHT|BBOX_REG_LOSS_TYPE|BBOX_REG_LOSS_WEIGHT|PRE_NMS_TOPK_TRAIN|POST_NMS_TOPK_TRAIN|BOUNDARY_THRESH)$/,
  /^MODEL\.ROI_HEADS\.(BATCH_SIZE_PER_IMAGE|POSITIVE_FRACTION|IOU_THRESHOLDS|IOU_LABELS|PROPOSAL_APPEND_GT)$/,
  /^MODEL\.ROI_BOX_HEAD\.(SMOOTH_L1_BETA|BBOX_REG_LOSS_TYPE|BBOX_REG_LOSS_WEIGHT|TRAIN_ON_PRED_BOXES|USE_FED_LOSS|FED_LOSS_FREQ_WEIGHT_POWER|FED_LOSS_NUM_CLASSES)$/,
  /^MODEL\.ROI_KEYPOINT_HEAD\.(MIN_KEYPOINTS_PER_IMAGE|NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS)$/,
  /^MODEL\.RESNETS\.(DEFORM_MODULATED|DEFORM_NUM_GROUPS)$/,
];

/** Blocks per stage of Detectron2's bottleneck ResNet depths. */
const DEPTH_BLOCKS: Readonly<Record<number, readonly number[]>> = { 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3] };

/** Flattens a nested mapping into dotted keys (lists and scalars are leaves). */
function flatten(doc: Yaml, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  for (const [k, v] of Object.entries(doc)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isMapping(v)) flatten(v, key, out);
    else out.set(key, v);
  }
  return out;
}

/** Reads flattened Detectron2 keys with defaults, remembering which keys the mapping consumed. */
class KeyReader {
  readonly used = new Set<string>();
  constructor(
    private readonly values: ReadonlyMap<string, unknown>,
    private readonly where: string,
  ) {}

  fail(key: string, message: string, hint?: string): never {
    throw new ConfigError(`Detectron2 config ${this.where}: ${key} ${message}`, { key, ...(hint ? { hint } : {}) });
  }

  raw(key: string): unknown {
    this.used.add(key);
    return this.values.has(key) ? this.values.get(key) : DEFAULTS[key];
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  string(key: string): string {
    const v = this.raw(key);
    if (typeof v !== 'string') this.fail(key, `must be a string, got ${JSON.stringify(v)}`);
    return v as string;
  }

  bool(key: string): boolean {
    const v = this.raw(key);
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }

  number(key: string): number {
    const v = this.raw(key);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, `must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  }

  numbers(key: string): number[] {
    const v = this.raw(key);
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) this.fail(key, `must be a list of numbers, got ${JSON.stringify(v)}`);
    return v as number[];
  }

  numberLists(key: string): number[][] {
    const v = this.raw(key);
    const ok = Array.isArray(v) && v.every((l) => Array.isArray(l) && l.every((x) => typeof x === 'number' && Number.isFinite(x)));
    if (!ok) this.fail(key, `must be a list of lists of numbers, got ${JSON.stringify(v)}`);
    return v as number[][];
  }

  strings(key: string): string[] {
    const v = this.raw(key);
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) this.fail(key, `must be a list of names, got ${JSON.stringify(v)}`);
    return v as string[];
  }

  /** Refuses any value but `expected` (a setting rcnn-node cannot reproduce otherwise). */
  expect(key: string, expected: unknown, what: string): void {
    const v = this.raw(key);
    if (JSON.stringify(v) !== JSON.stringify(expected)) {
      this.fail(key, `is ${JSON.stringify(v)}: ${what} is not supported (it changes the results; only ${JSON.stringify(expected)} is)`);
    }
  }
}

/** Consecutive levels `<prefix>N` of a feature list (`p2`..`p6`, `res2`..`res5`), as [min, max]. */
function levelRange(r: KeyReader, key: string, prefix: string): [number, number] {
  const names = r.strings(key);
  const levels = names.map((n) => (n.startsWith(prefix) ? Number(n.slice(prefix.length)) : NaN));
  const ok = levels.length > 0 && levels.every((l, i) => Number.isInteger(l) && (i === 0 || l === levels[i - 1]! + 1));
  if (!ok) r.fail(key, `must be consecutive ${prefix}N feature names (e.g. ${prefix}2, ${prefix}3, …), got ${JSON.stringify(names)}`);
  return [levels[0]!, levels[levels.length - 1]!];
}

function poolerKeys(r: KeyReader, head: string): Record<string, unknown> {
  const type = r.string(`MODEL.${head}.POOLER_TYPE`);
  if (type !== 'ROIAlignV2' && type !== 'ROIAlign') r.fail(`MODEL.${head}.POOLER_TYPE`, `is "${type}": only ROIAlignV2 and ROIAlign are supported`);
  return {
    ROI_XFORM_RESOLUTION: r.number(`MODEL.${head}.POOLER_RESOLUTION`),
    ROI_XFORM_SAMPLING_RATIO: r.number(`MODEL.${head}.POOLER_SAMPLING_RATIO`),
    ROI_XFORM_ALIGNED: type === 'ROIAlignV2',
  };
}

/** The conv body name and RESNETS keys for Detectron2's ResNet settings. */
function backbone(r: KeyReader, fpn: boolean): { body: string; resnets: Record<string, unknown> } {
  const depth = r.number('MODEL.RESNETS.DEPTH');
  const blocks = DEPTH_BLOCKS[depth];
  if (!blocks) r.fail('MODEL.RESNETS.DEPTH', `is ${depth}: only the bottleneck depths 50, 101 and 152 are supported`);
  const deform = r.raw('MODEL.RESNETS.DEFORM_ON_PER_STAGE');
  if (Array.isArray(deform) && deform.some((d) => d === true)) {
    r.fail('MODEL.RESNETS.DEFORM_ON_PER_STAGE', `is ${JSON.stringify(deform)}: deformable convolutions are not supported`);
  }
  const norm = r.string('MODEL.RESNETS.NORM');
  // BN in eval mode and SyncBN compute what FrozenBN computes at inference.
  if (!['FrozenBN', 'BN', 'SyncBN'].includes(norm)) r.fail('MODEL.RESNETS.NORM', `is "${norm}": only FrozenBN (or BN / SyncBN, equal at inference) is supported`);
  const groups = r.number('MODEL.RESNETS.NUM_GROUPS');
  const widthPerGroup = r.number('MODEL.RESNETS.WIDTH_PER_GROUP');
  const res2Out = r.number('MODEL.RESNETS.RES2_OUT_CHANNELS');
  const stem = r.number('MODEL.RESNETS.STEM_OUT_CHANNELS');
  const dilation = r.number('MODEL.RESNETS.RES5_DILATION');
  const strideInOneByOne = r.bool('MODEL.RESNETS.STRIDE_IN_1X1');
  const [, top] = levelRange(r, 'MODEL.RESNETS.OUT_FEATURES', 'res');
  if (fpn && top !== 5) r.fail('MODEL.RESNETS.OUT_FEATURES', 'must end with res5 for an FPN backbone');
  const conv = fpn ? 'conv5' : 'conv4';
  const resnets: Record<string, unknown> = { STEM_OUT_CHANNELS: stem, RES5_DILATION: dilation, STRIDE_1X1: strideInOneByOne };
  const standardWidths = res2Out === 256 && stem === 64;
  let body: string | undefined;
  if (standardWidths && groups === 1 && widthPerGroup === 64) body = `ResNet${depth}`;
  else if (standardWidths && depth === 101 && ((groups === 32 && widthPerGroup === 8) || (groups === 64 && widthPerGroup === 4))) {
    body = `ResNeXt101_${groups}x${widthPerGroup}d`;
  }
  if (body) return { body: fpn ? `FPN.add_fpn_${body}_conv5_body` : `ResNet.add_${body}_${conv}_body`, resnets };
  // Non-standard widths: the configurable body. Detectron2's res2 has NUM_GROUPS * WIDTH_PER_GROUP
  // bottleneck channels and RES2_OUT_CHANNELS outputs; rcnn-node's planes are outputs / 4 and its
  // bottleneck width floor(planes * WIDTH_PER_GROUP / 64) * NUM_GROUPS.
  const planes = res2Out / 4;
  const rcnnWidthPerGroup = (64 * widthPerGroup) / planes;
  if (!Number.isInteger(planes) || !Number.isInteger(rcnnWidthPerGroup)) {
    r.fail('MODEL.RESNETS.RES2_OUT_CHANNELS', `(${res2Out}) with WIDTH_PER_GROUP ${widthPerGroup} has no equivalent bottleneck layout (outputs must be 4 x planes)`);
  }
  return {
    body: fpn ? 'FPN.add_fpn_ResNet_custom_conv5_body' : 'ResNet.add_ResNet_custom_conv4_body',
    resnets: {
      ...resnets,
      NUM_GROUPS: groups,
      WIDTH_PER_GROUP: rcnnWidthPerGroup,
      STAGE_BLOCKS: blocks,
      STAGE_PLANES: [planes, 2 * planes, 4 * planes, 8 * planes],
    },
  };
}

/** Maps flattened Detectron2 keys to an rcnn-node layer (see module doc). */
function mapKeys(r: KeyReader): ConfigOverrides {
  const meta = r.string('MODEL.META_ARCHITECTURE');
  if (meta !== 'GeneralizedRCNN' && meta !== 'ProposalNetwork') {
    r.fail('MODEL.META_ARCHITECTURE', `is "${meta}": only GeneralizedRCNN (and ProposalNetwork) are supported`);
  }
  if (r.bool('MODEL.LOAD_PROPOSALS')) r.fail('MODEL.LOAD_PROPOSALS', 'is true: precomputed proposals are not supported');
  r.expect('MODEL.PROPOSAL_GENERATOR.NAME', 'RPN', 'a proposal generator other than RPN');
  r.expect('MODEL.RPN.HEAD_NAME', 'StandardRPNHead', 'an RPN head other than StandardRPNHead');
  r.expect('MODEL.ANCHOR_GENERATOR.NAME', 'DefaultAnchorGenerator', 'an anchor generator other than DefaultAnchorGenerator');
  if (r.bool('TEST.AUG.ENABLED')) r.fail('TEST.AUG.ENABLED', 'is true: test-time augmentation is not supported');
  for (const k of ['TEST.AUG.MIN_SIZES', 'TEST.AUG.MAX_SIZE', 'TEST.AUG.FLIP']) r.used.add(k);

  const backboneName = r.string('MODEL.BACKBONE.NAME');
  if (backboneName !== 'build_resnet_fpn_backbone' && backboneName !== 'build_resnet_backbone') {
    r.fail('MODEL.BACKBONE.NAME', `is "${backboneName}": only build_resnet_fpn_backbone and build_resnet_backbone are supported`);
  }
  const fpn = backboneName === 'build_resnet_fpn_backbone';
  const { body, resnets } = backbone(r, fpn);

  const pixelMeans = r.numbers('MODEL.PIXEL_MEAN');
  const pixelStds = r.numbers('MODEL.PIXEL_STD');
  if (pixelMeans.length !== 3 || pixelStds.length !== 3) r.fail('MODEL.PIXEL_MEAN', 'and MODEL.PIXEL_STD must have 3 entries each');
  const format = r.string('INPUT.FORMAT');
  if (format !== 'BGR' && format !== 'RGB') r.fail('INPUT.FORMAT', `is "${format}": only BGR and RGB are supported`);
  const minSize = r.raw('INPUT.MIN_SIZE_TEST');
  if (typeof minSize !== 'number' || !(minSize > 0)) r.fail('INPUT.MIN_SIZE_TEST', `is ${JSON.stringify(minSize)}: a positive size is required (0 = no resize is not supported)`);
  const conventions = detectron2ConventionsLayer({ c4: !fpn, pixelMeans, pixelStds });

  const numClasses = r.number('MODEL.ROI_HEADS.NUM_CLASSES');
  const maskOn = r.bool('MODEL.MASK_ON');
  const keypointOn = r.bool('MODEL.KEYPOINT_ON');
  const rpnOnly = meta === 'ProposalNetwork';

  // Anchors: one list of sizes per level (a single list applies to every level), one ratio list.
  const sizes = r.numberLists('MODEL.ANCHOR_GENERATOR.SIZES');
  const ratios = r.numberLists('MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS');
  if (ratios.some((l) => JSON.stringify(l) !== JSON.stringify(ratios[0]))) {
    r.fail('MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS', 'differs between levels: one list of ratios for every level is supported');
  }
  const convDims = r.numbers('MODEL.RPN.CONV_DIMS');
  const rpnChannels = fpn ? r.number('MODEL.FPN.OUT_CHANNELS') : undefined;
  if (convDims.some((d) => d !== -1 && d !== rpnChannels)) r.fail('MODEL.RPN.CONV_DIMS', 'must keep the input width (-1): RPN convs that change width are not supported');

  const model: Record<string, unknown> = {
    CONV_BODY: body,
    NUM_CLASSES: numClasses + 1,
    MASK_ON: maskOn,
    KEYPOINTS_ON: keypointOn,
    RPN_ONLY: rpnOnly,
    FASTER_RCNN: !rpnOnly,
    BBOX_REG_WEIGHTS: r.numbers('MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS'),
    CLS_AGNOSTIC_BBOX_REG: r.bool('MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG'),
  };
  const test: Record<string, unknown> = {
    SCALE: minSize,
    MAX_SIZE: r.number('INPUT.MAX_SIZE_TEST'),
    RPN_PRE_NMS_TOP_N: r.number('MODEL.RPN.PRE_NMS_TOPK_TEST'),
    RPN_POST_NMS_TOP_N: r.number('MODEL.RPN.POST_NMS_TOPK_TEST'),
    RPN_NMS_THRESH: r.number('MODEL.RPN.NMS_THRESH'),
    RPN_MIN_SIZE: r.number('MODEL.PROPOSAL_GENERATOR.MIN_SIZE'),
    SCORE_THRESH: r.number('MODEL.ROI_HEADS.SCORE_THRESH_TEST'),
    NMS: r.number('MODEL.ROI_HEADS.NMS_THRESH_TEST'),
    DETECTIONS_PER_IM: r.number('TEST.DETECTIONS_PER_IMAGE'),
  };
  const rpn: Record<string, unknown> = {
    BBOX_REG_WEIGHTS: r.numbers('MODEL.RPN.BBOX_REG_WEIGHTS'),
    HEAD_CONV_DEPTH: convDims.length,
    ANCHOR_OFFSET: r.number('MODEL.ANCHOR_GENERATOR.OFFSET'),
  };
  const layer: Record<string, Record<string, unknown>> = { MODEL: model, INPUT: { FORMAT: format }, TEST: test, RPN: rpn, RESNETS: resnets };

  const roiHeads = r.string('MODEL.ROI_HEADS.NAME');
  if (fpn) {
    const [inLo, inHi] = levelRange(r, 'MODEL.FPN.IN_FEATURES', 'res');
    if (inLo !== 2 || inHi !== 5) r.fail('MODEL.FPN.IN_FEATURES', 'must be res2, res3, res4, res5');
    r.expect('MODEL.FPN.NORM', '', 'a normalised FPN');
    r.expect('MODEL.FPN.FUSE_TYPE', 'sum', 'an FPN fuse type other than sum');
    const [rpnLo, rpnHi] = levelRange(r, 'MODEL.RPN.IN_FEATURES', 'p');
    if (rpnHi > 6) r.fail('MODEL.RPN.IN_FEATURES', 'reaches past p6: the FPN has P2-P6 (LastLevelMaxPool)');
    const levels = rpnHi - rpnLo + 1;
    if (sizes.length !== 1 && sizes.length !== levels) r.fail('MODEL.ANCHOR_GENERATOR.SIZES', `has ${sizes.length} lists for ${levels} RPN levels`);
    const [roiLo, roiHi] = levelRange(r, 'MODEL.ROI_HEADS.IN_FEATURES', 'p');
    if (roiHeads !== 'StandardROIHeads') r.fail('MODEL.ROI_HEADS.NAME', `is "${roiHeads}": with an FPN only StandardROIHeads is supported (no cascade)`);
    layer.FPN = {
      FPN_ON: true,
      DIM: rpnChannels,
      RPN_MIN_LEVEL: rpnLo,
      RPN_MAX_LEVEL: rpnHi,
      ROI_MIN_LEVEL: roiLo,
      ROI_MAX_LEVEL: roiHi,
      RPN_ANCHOR_SIZES: sizes.length === 1 ? Array.from({ length: levels }, () => sizes[0]) : sizes,
      RPN_ASPECT_RATIOS: ratios[0],
      EXTRA_CONV_LEVELS: false,
    };
    r.expect('MODEL.ROI_BOX_HEAD.NAME', 'FastRCNNConvFCHead', 'a box head other than FastRCNNConvFCHead');
    r.expect('MODEL.ROI_BOX_HEAD.NUM_CONV', 0, 'a box head with convs');
    r.expect('MODEL.ROI_BOX_HEAD.NUM_FC', 2, 'a box head without exactly two FC layers');
    r.raw('MODEL.ROI_BOX_HEAD.CONV_DIM');
    r.expect('MODEL.ROI_BOX_HEAD.NORM', '', 'a normalised box head');
    layer.FAST_RCNN = {
      ...conventions.FAST_RCNN,
      ROI_BOX_HEAD: 'fast_rcnn_heads.add_roi_2mlp_head',
      MLP_HEAD_DIM: r.number('MODEL.ROI_BOX_HEAD.FC_DIM'),
      ...poolerKeys(r, 'ROI_BOX_HEAD'),
    };
  } else {
    const [, rpnLevel] = levelRange(r, 'MODEL.RPN.IN_FEATURES', 'res');
    if (rpnLevel !== 4) r.fail('MODEL.RPN.IN_FEATURES', 'must be [res4] for a C4 backbone');
    if (sizes.length !== 1) r.fail('MODEL.ANCHOR_GENERATOR.SIZES', 'must be one list for the single C4 level');
    if (roiHeads !== 'Res5ROIHeads') r.fail('MODEL.ROI_HEADS.NAME', `is "${roiHeads}": with a C4 backbone only Res5ROIHeads is supported`);
    const [, roiLevel] = levelRange(r, 'MODEL.ROI_HEADS.IN_FEATURES', 'res');
    if (roiLevel !== 4) r.fail('MODEL.ROI_HEADS.IN_FEATURES', 'must be [res4] for Res5ROIHeads');
    if (maskOn) r.fail('MODEL.MASK_ON', 'is true with Res5ROIHeads: C4 mask heads are not supported');
    if (keypointOn) r.fail('MODEL.KEYPOINT_ON', 'is true with Res5ROIHeads: C4 keypoint heads are not supported');
    layer.FPN = { FPN_ON: false };
    rpn.SIZES = sizes[0];
    rpn.ASPECT_RATIOS = ratios[0];
    layer.FAST_RCNN = { ...conventions.FAST_RCNN, ROI_BOX_HEAD: 'ResNet.add_ResNet_roi_conv5_head', ...poolerKeys(r, 'ROI_BOX_HEAD') };
  }
  r.expect('MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE', false, 'sigmoid classification');

  if (maskOn) {
    r.expect('MODEL.ROI_MASK_HEAD.NAME', 'MaskRCNNConvUpsampleHead', 'a mask head other than MaskRCNNConvUpsampleHead');
    r.expect('MODEL.ROI_MASK_HEAD.NORM', '', 'a normalised mask head');
    const pooler = poolerKeys(r, 'ROI_MASK_HEAD');
    const dim = r.number('MODEL.ROI_MASK_HEAD.CONV_DIM');
    layer.MRCNN = {
      ...conventions.MRCNN,
      ROI_MASK_HEAD: 'mask_rcnn_heads.mask_rcnn_fcn_head_v1up4convs',
      NUM_STACKED_CONVS: r.number('MODEL.ROI_MASK_HEAD.NUM_CONV'),
      CONV_HEAD_DIM: dim,
      DIM_REDUCED: dim,
      DILATION: 1,
      UPSAMPLE_RATIO: 2,
      RESOLUTION: 2 * (pooler.ROI_XFORM_RESOLUTION as number),
      CLS_SPECIFIC_MASK: !r.bool('MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK'),
      ...pooler,
    };
  }
  if (keypointOn) {
    r.expect('MODEL.ROI_KEYPOINT_HEAD.NAME', 'KRCNNConvDeconvUpsampleHead', 'a keypoint head other than KRCNNConvDeconvUpsampleHead');
    const dims = r.numbers('MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS');
    if (dims.length === 0 || dims.some((d) => d !== dims[0])) r.fail('MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS', 'must be one width repeated (e.g. 8 x 512)');
    const pooler = poolerKeys(r, 'ROI_KEYPOINT_HEAD');
    layer.KRCNN = {
      ...conventions.KRCNN,
      ROI_KEYPOINTS_HEAD: 'keypoint_rcnn_heads.add_roi_pose_head_v1convX',
      NUM_KEYPOINTS: r.number('MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS'),
      NUM_STACKED_CONVS: dims.length,
      CONV_HEAD_DIM: dims[0],
      CONV_HEAD_KERNEL: 3,
      DECONV_KERNEL: 4,
      UP_SCALE: 2,
      HEATMAP_SIZE: 4 * (pooler.ROI_XFORM_RESOLUTION as number),
      // Training only (the keypoint loss's weight in the total).
      LOSS_WEIGHT: r.number('MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT'),
      ...pooler,
    };
  }
  // Sections of heads that are off are read by nothing: their keys change nothing.
  const merged: Record<string, Record<string, unknown>> = {};
  for (const l of [conventions, layer] as ConfigOverrides[]) {
    for (const [section, keys] of Object.entries(l)) merged[section] = { ...(merged[section] ?? {}), ...keys };
  }
  return merged;
}

/**
 * Reads a Detectron2 config file (its `_BASE_` chain first) into an rcnn-node layer. Fails with a
 * {@link ConfigError} naming the Detectron2 key for anything that changes results and is not
 * supported, and for keys it does not know.
 */
export function readDetectron2Config(path: string): Detectron2Config {
  return detectron2ConfigFromDocument(readYaml(path), path);
}

/** {@link readDetectron2Config} for a document already parsed from `path` (bases resolved relative to it). */
export function detectron2ConfigFromDocument(doc: unknown, path: string): Detectron2Config {
  if (!isMapping(doc)) throw new ConfigError(`Detectron2 config ${path} must hold a mapping of keys`);
  const { doc: merged, files } = resolveBases(doc, path, [resolve(path)]);
  const values = flatten(merged);
  const reader = new KeyReader(values, path);
  const layer = mapKeys(reader);
  const maskOn = layer.MODEL?.MASK_ON === true;
  const keypointOn = layer.MODEL?.KEYPOINTS_ON === true;
  const ignored: string[] = [];
  for (const key of [...values.keys()].sort()) {
    if (reader.used.has(key)) continue;
    // The sections of heads that are switched off are read by nothing.
    const offHead = (!maskOn && key.startsWith('MODEL.ROI_MASK_HEAD.')) || (!keypointOn && key.startsWith('MODEL.ROI_KEYPOINT_HEAD.'));
    const c4 = layer.FPN?.FPN_ON === false;
    const fpnOff = c4 && (key.startsWith('MODEL.FPN.') || /^MODEL\.ROI_BOX_HEAD\.(NAME|NUM_FC|FC_DIM|NUM_CONV|CONV_DIM|NORM)$/.test(key));
    if (offHead || fpnOff || IGNORED.some((re) => re.test(key))) {
      ignored.push(key);
      continue;
    }
    throw new ConfigError(`Detectron2 config ${path}: unknown key ${key}; it may change the results, so it is refused`, {
      key,
      hint: 'remove it if it does not matter at inference, or report it if rcnn-node should support it',
    });
  }
  return { layer, ignored, files };
}

/**
 * Short summary of ignored keys: top-level keys as they are, the rest counted per section
 * (`SOLVER (32 keys)`, `MODEL.RPN (11 keys)`).
 */
export function summariseIgnoredKeys(keys: readonly string[]): string {
  const groups = new Map<string, number>();
  for (const k of keys) {
    const parts = k.split('.');
    const [top, sub] = parts;
    const group = top === undefined || sub === undefined ? k : top === 'MODEL' && parts.length >= 3 ? `MODEL.${sub}` : top;
    groups.set(group, (groups.get(group) ?? 0) + 1);
  }
  return [...groups].map(([g, n]) => (keys.includes(g) ? g : `${g} (${n} key${n === 1 ? '' : 's'})`)).join(', ');
}

/**
 * The Detectron2 config in `path`, or undefined when the file is not one (an rcnn-node YAML/JSON
 * config, a parity case.json). Reads the file once.
 */
export function detectron2ConfigFile(path: string): Detectron2Config | undefined {
  if (!/\.ya?ml$/i.test(path)) return undefined;
  const doc = readYamlDocument(path);
  return isDetectron2ConfigDocument(doc) ? detectron2ConfigFromDocument(doc, path) : undefined;
}
