/**
 * Named model configurations: torchvision's detection models (`maskrcnn_resnet50_fpn`, …) and the
 * Detectron baselines of the same architectures (`e2e_mask_rcnn_R-50-FPN_1x`, …), as config layers
 * over the core defaults, plus the names of their classes and keypoints.
 */
import { existsSync, statSync } from 'node:fs';
import { fileKind } from './image-read.js';
import { extname } from 'node:path';
import {
  type CaseMapper,
  type ConfigOverrides,
  ConfigError,
  type ConfigSection,
  type RcnnConfig,
  detectron2ConfigFile,
  detectron2ConventionsLayer,
  loadConfig,
  summariseIgnoredKeys,
} from '@rcnn/core';
import {
  COCO_KEYPOINT_NAMES,
  COCO_KEYPOINT_SKELETON,
  DETECTRON_COCO_CATEGORIES,
  DETECTRON_COCO_CATEGORY_IDS,
  type ModelLabels,
  TORCHVISION_COCO_CATEGORIES,
  defaultLabels,
} from './categories.js';

/** A named configuration. */
export interface Preset {
  readonly name: string;
  /** Other accepted names (Detectron's 2x / s1x schedules share the inference config of 1x). */
  readonly aliases: readonly string[];
  readonly family: 'torchvision' | 'detectron' | 'detectron2';
  /** One line on what it builds. */
  readonly description: string;
  /** Config layer applied over the core defaults. */
  readonly layer: ConfigOverrides;
  readonly labels: ModelLabels;
}

const TORCHVISION_COCO: ModelLabels = { categories: TORCHVISION_COCO_CATEGORIES, categoryIds: TORCHVISION_COCO_CATEGORIES.map((_, i) => i) };
const DETECTRON_COCO: ModelLabels = { categories: DETECTRON_COCO_CATEGORIES, categoryIds: DETECTRON_COCO_CATEGORY_IDS };
const PERSON_KEYPOINTS = { keypointNames: COCO_KEYPOINT_NAMES, skeleton: COCO_KEYPOINT_SKELETON } as const;
const TORCHVISION_PERSON: ModelLabels = { categories: ['__background__', 'person'], categoryIds: [0, 1], ...PERSON_KEYPOINTS };
const DETECTRON_PERSON: ModelLabels = { categories: ['__background__', 'person'], categoryIds: [0, 1], ...PERSON_KEYPOINTS };

// torchvision's published COCO weights were trained with FrozenBatchNorm2d eps = 0: its builders
// call overwrite_eps(model, 0.0) when they load them, and so do these presets.
const TORCHVISION_BASE = { RESNETS: { FROZEN_BN_EPS: 0 } } as const;

/**
 * Detectron's conventions where they differ from torchvision (all other keys keep the core defaults,
 * which are torchvision's): BGR input in 0..255 minus the pixel means, no std; Detectron's resize
 * rule; boxes with +1 widths; stride in the 1x1 conv; AffineChannel; RPN_MIN_SIZE 0; NMS per class
 * (no coordinate-offset trick); 81 contiguous COCO classes.
 */
function detectronBase(fpn: boolean): Record<string, Record<string, unknown>> {
  return {
    MODEL: { NUM_CLASSES: 81, LEGACY_PLUS_ONE: true },
    INPUT: {
      FORMAT: 'BGR',
      PIXEL_RANGE: 255,
      PIXEL_MEANS: [102.9801, 115.9465, 122.7717],
      PIXEL_STDS: [1, 1, 1],
      RESIZE_RULE: 'detectron',
      // FPN pads to FPN.COARSEST_STRIDE (32); the C4 model pads only to the batch's largest image.
      SIZE_DIVISIBILITY: fpn ? 32 : 0,
    },
    RESNETS: { STRIDE_1X1: true, NORM: 'AffineChannel' },
    TEST: { SCALE: 800, MAX_SIZE: 1333, NMS: 0.5, RPN_MIN_SIZE: 0, NMS_COORDINATE_TRICK_MAX_BOXES: 0 },
  };
}

function merge(...layers: readonly ConfigOverrides[]): ConfigOverrides {
  const out: Record<string, Record<string, unknown>> = {};
  for (const layer of layers) for (const [section, keys] of Object.entries(layer)) out[section] = { ...(out[section] ?? {}), ...keys };
  return out;
}

function detectronFpn(kind: 'faster' | 'mask' | 'keypoint', depth: 50 | 101): Preset {
  const name = `e2e_${kind}_rcnn_R-${depth}-FPN_1x`;
  const layer = merge(detectronBase(true), {
    MODEL: {
      CONV_BODY: `FPN.add_fpn_ResNet${depth}_conv5_body`,
      ...(kind === 'mask' ? { MASK_ON: true } : {}),
      ...(kind === 'keypoint' ? { KEYPOINTS_ON: true, NUM_CLASSES: 2 } : {}),
    },
    FPN: { FPN_ON: true },
    FAST_RCNN: { ROI_BOX_HEAD: 'fast_rcnn_heads.add_roi_2mlp_head', ROI_XFORM_RESOLUTION: 7, ROI_XFORM_SAMPLING_RATIO: 2 },
    TEST: { RPN_PRE_NMS_TOP_N: 1000, RPN_POST_NMS_TOP_N: 1000 },
    ...(kind === 'mask'
      ? { MRCNN: { ROI_MASK_HEAD: 'mask_rcnn_heads.mask_rcnn_fcn_head_v1up4convs', RESOLUTION: 28, ROI_XFORM_RESOLUTION: 14, ROI_XFORM_SAMPLING_RATIO: 2, DILATION: 1 } }
      : {}),
    ...(kind === 'keypoint'
      ? { KRCNN: { ROI_KEYPOINTS_HEAD: 'keypoint_rcnn_heads.add_roi_pose_head_v1convX', NUM_STACKED_CONVS: 8, NUM_KEYPOINTS: 17, CONV_HEAD_DIM: 512, UP_SCALE: 2, HEATMAP_SIZE: 56, ROI_XFORM_RESOLUTION: 14, ROI_XFORM_SAMPLING_RATIO: 2 } }
      : {}),
  });
  const schedules = kind === 'keypoint' ? ['_s1x'] : ['_2x'];
  return {
    name,
    aliases: schedules.map((s) => name.replace(/_1x$/, s)),
    family: 'detectron',
    description: `Detectron ${kind === 'faster' ? 'Faster' : kind === 'mask' ? 'Mask' : 'Keypoint'} R-CNN, ResNet-${depth}-FPN (Detectron semantics)`,
    layer,
    labels: kind === 'keypoint' ? DETECTRON_PERSON : DETECTRON_COCO,
  };
}

const C4_LAYER = merge(detectronBase(false), {
  MODEL: { CONV_BODY: 'ResNet.add_ResNet50_conv4_body' },
  FPN: { FPN_ON: false },
  RPN: { SIZES: [32, 64, 128, 256, 512] },
  // Detectron's defaults: 14x14 RoIAlign with adaptive sampling, then res5 (stride 2) as the box head.
  FAST_RCNN: { ROI_BOX_HEAD: 'ResNet.add_ResNet_roi_conv5_head', ROI_XFORM_RESOLUTION: 14, ROI_XFORM_SAMPLING_RATIO: 0 },
  TEST: { RPN_PRE_NMS_TOP_N: 6000, RPN_POST_NMS_TOP_N: 1000 },
});

/**
 * A Detectron2 model-zoo configuration (`COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml` & co.):
 * Detectron2's conventions (core's `detectron2ConventionsLayer`) and its `Base-RCNN-FPN` /
 * `Base-RCNN-C4` defaults, 80 COCO classes + background (Detectron2's contiguous class order).
 */
function detectron2Preset(kind: 'faster' | 'mask' | 'keypoint', depth: 50 | 101, layout: 'FPN' | 'C4'): Preset {
  const folder = kind === 'faster' ? 'COCO-Detection' : kind === 'mask' ? 'COCO-InstanceSegmentation' : 'COCO-Keypoints';
  const name = `${kind}_rcnn_R_${depth}_${layout}_3x`;
  const fpn = layout === 'FPN';
  const layer = merge(detectron2ConventionsLayer({ c4: !fpn }), {
    MODEL: {
      CONV_BODY: fpn ? `FPN.add_fpn_ResNet${depth}_conv5_body` : `ResNet.add_ResNet${depth}_conv4_body`,
      NUM_CLASSES: kind === 'keypoint' ? 2 : 81,
      ...(kind === 'mask' ? { MASK_ON: true } : {}),
      ...(kind === 'keypoint' ? { KEYPOINTS_ON: true } : {}),
    },
    FPN: fpn ? { FPN_ON: true, RPN_ANCHOR_SIZES: [[32], [64], [128], [256], [512]] } : { FPN_ON: false },
    ...(fpn ? {} : { RPN: { SIZES: [32, 64, 128, 256, 512] } }),
    FAST_RCNN: fpn
      ? { ROI_BOX_HEAD: 'fast_rcnn_heads.add_roi_2mlp_head', MLP_HEAD_DIM: 1024, ROI_XFORM_RESOLUTION: 7 }
      : { ROI_BOX_HEAD: 'ResNet.add_ResNet_roi_conv5_head', ROI_XFORM_RESOLUTION: 14 },
    TEST: { SCALE: 800, MAX_SIZE: 1333, RPN_PRE_NMS_TOP_N: fpn ? 1000 : 6000, RPN_POST_NMS_TOP_N: 1000 },
    ...(kind === 'mask' ? { MRCNN: { NUM_STACKED_CONVS: 4, CONV_HEAD_DIM: 256, DIM_REDUCED: 256, RESOLUTION: 28, ROI_XFORM_RESOLUTION: 14 } } : {}),
    ...(kind === 'keypoint' ? { KRCNN: { NUM_KEYPOINTS: 17, NUM_STACKED_CONVS: 8, CONV_HEAD_DIM: 512, HEATMAP_SIZE: 56, ROI_XFORM_RESOLUTION: 14 } } : {}),
  });
  return {
    name,
    aliases: [`${folder}/${name}`, name.replace(/_3x$/, '_1x')],
    family: 'detectron2',
    description: `Detectron2 model zoo ${kind === 'faster' ? 'Faster' : kind === 'mask' ? 'Mask' : 'Keypoint'} R-CNN, ResNet-${depth}-${layout} (Detectron2 semantics)`,
    layer,
    labels: kind === 'keypoint' ? DETECTRON_PERSON : DETECTRON_COCO,
  };
}

/** Every preset. */
export const PRESETS: readonly Preset[] = [
  {
    name: 'maskrcnn_resnet50_fpn',
    aliases: [],
    family: 'torchvision',
    description: "torchvision's Mask R-CNN, ResNet-50-FPN, COCO (91 classes)",
    layer: merge(TORCHVISION_BASE, { MODEL: { CONV_BODY: 'FPN.add_fpn_ResNet50_conv5_body', NUM_CLASSES: 91, MASK_ON: true } }),
    labels: TORCHVISION_COCO,
  },
  {
    name: 'fasterrcnn_resnet50_fpn',
    aliases: [],
    family: 'torchvision',
    description: "torchvision's Faster R-CNN, ResNet-50-FPN, COCO (91 classes)",
    layer: merge(TORCHVISION_BASE, { MODEL: { CONV_BODY: 'FPN.add_fpn_ResNet50_conv5_body', NUM_CLASSES: 91 } }),
    labels: TORCHVISION_COCO,
  },
  {
    name: 'keypointrcnn_resnet50_fpn',
    aliases: [],
    family: 'torchvision',
    description: "torchvision's Keypoint R-CNN, ResNet-50-FPN, COCO person keypoints (2 classes, 17 keypoints)",
    layer: merge(TORCHVISION_BASE, { MODEL: { CONV_BODY: 'FPN.add_fpn_ResNet50_conv5_body', NUM_CLASSES: 2, KEYPOINTS_ON: true }, KRCNN: { NUM_KEYPOINTS: 17 } }),
    labels: TORCHVISION_PERSON,
  },
  detectronFpn('faster', 50),
  detectronFpn('mask', 50),
  detectronFpn('keypoint', 50),
  detectronFpn('faster', 101),
  detectronFpn('mask', 101),
  detectronFpn('keypoint', 101),
  {
    name: 'e2e_faster_rcnn_R-50-C4_1x',
    aliases: ['e2e_faster_rcnn_R-50-C4_2x'],
    family: 'detectron',
    description: 'Detectron Faster R-CNN, ResNet-50-C4 (res5 box head; Detectron semantics)',
    layer: C4_LAYER,
    labels: DETECTRON_COCO,
  },
  detectron2Preset('faster', 50, 'FPN'),
  detectron2Preset('faster', 101, 'FPN'),
  detectron2Preset('mask', 50, 'FPN'),
  detectron2Preset('mask', 101, 'FPN'),
  detectron2Preset('keypoint', 50, 'FPN'),
  detectron2Preset('keypoint', 101, 'FPN'),
  detectron2Preset('faster', 50, 'C4'),
  detectron2Preset('faster', 101, 'C4'),
  {
    name: 'rpn_R-50-FPN_1x',
    aliases: [],
    family: 'detectron',
    description: 'Detectron RPN only, ResNet-50-FPN: proposals, no detections (Detectron semantics)',
    layer: merge(detectronBase(true), { MODEL: { CONV_BODY: 'FPN.add_fpn_ResNet50_conv5_body', RPN_ONLY: true, FASTER_RCNN: false }, TEST: { RPN_POST_NMS_TOP_N: 2000 } }),
    labels: DETECTRON_COCO,
  },
];

/** Names of every preset (without aliases), for listings. */
export const PRESET_NAMES: readonly string[] = PRESETS.map((p) => p.name);

/** The preset called `name` (or one of its aliases; a trailing `.yaml` is ignored), if any. */
export function findPreset(name: string): Preset | undefined {
  const bare = name.replace(/\.ya?ml$/i, '');
  return PRESETS.find((p) => p.name === bare || p.aliases.includes(bare));
}

/** A loaded configuration and what it came from. */
export interface ResolvedConfig {
  readonly config: RcnnConfig;
  /** The preset, when the source named one. */
  readonly preset: Preset | undefined;
  /** The preset name, the file path, or `<object>`/`<defaults>`. */
  readonly source: string;
  readonly labels: ModelLabels;
  /** Remarks on how the source was read (e.g. the Detectron2 keys ignored as irrelevant at inference). */
  readonly notes: readonly string[];
}

/** Options of {@link resolveConfig}. */
export interface ResolveConfigOptions {
  /** Plugin config sections (`configSections(container)`). */
  readonly sections?: readonly ConfigSection[];
  /** `SECTION.KEY=VALUE` overrides applied last. */
  readonly set?: readonly string[];
  /** Parity-case mappers of the registered implementations (`caseMappers(container)`), for case.json sources. */
  readonly caseMappers?: readonly CaseMapper[];
  /** Layers applied under the source (e.g. the conventions and architecture the weights bring): the source and `set` win. */
  readonly base?: readonly ConfigOverrides[];
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The preset nearest to a misspelt name, if it is near enough to be the one meant. */
function closest(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined;
}

/**
 * Loads a configuration from a preset name, a YAML/JSON config file (or a parity `case.json`), or a
 * config layer object; `set` overrides go last. An unknown name fails with the list of presets.
 */
export function resolveConfig(source: string | ConfigOverrides | undefined, options: ResolveConfigOptions = {}): ResolvedConfig {
  const under = options.base ?? [];
  const base = { sections: options.sections ?? [], set: options.set ?? [], caseMapping: { mappers: options.caseMappers ?? [] } };
  const withBase = (layer?: ConfigOverrides | string) => ({ ...base, layers: [...under, ...(layer === undefined ? [] : [layer])] });
  const finish = (config: RcnnConfig, preset: Preset | undefined, from: string, notes: readonly string[] = []): ResolvedConfig => ({
    config,
    preset,
    source: from,
    notes,
    labels: preset && preset.labels.categories.length === config.MODEL.NUM_CLASSES ? preset.labels : defaultLabels(config.MODEL.NUM_CLASSES, config.MODEL.KEYPOINTS_ON ? config.KRCNN.NUM_KEYPOINTS : undefined),
  });
  if (source === undefined) return finish(loadConfig(withBase()), undefined, under.length > 0 ? '<weights>' : '<defaults>');
  if (typeof source !== 'string') return finish(loadConfig(withBase(source)), undefined, '<object>');
  if (existsSync(source)) {
    const s = statSync(source);
    if (s.isFile()) {
      const d2 = detectron2ConfigFile(source);
      if (d2) {
        const note = `${source} is a Detectron2 config: read with Detectron2's conventions; ${d2.ignored.length} key(s) without effect at inference ignored (${summariseIgnoredKeys(d2.ignored)})`;
        return finish(loadConfig(withBase(d2.layer)), undefined, source, [note]);
      }
      return finish(loadConfig(withBase(source)), undefined, source);
    }
    // A FIFO or /dev/zero exists but is no config file: reading it would block or never end.
    if (!s.isDirectory() || /[\\/]/.test(source)) {
      throw new ConfigError(`config file ${source} is ${fileKind(s)}, not a regular file`, { hint: 'give the path of a YAML/JSON config file, or a preset name' });
    }
  }
  const preset = findPreset(source);
  if (preset) return finish(loadConfig(withBase(preset.layer)), preset, preset.name);
  const looksLikeFile = /[\\/]/.test(source) || ['.yaml', '.yml', '.json'].includes(extname(source).toLowerCase());
  if (looksLikeFile) throw new ConfigError(`config file ${source} not found`, { hint: 'check the path, or pass a preset name (rcnn predict --help lists them)' });
  const guess = closest(source, PRESET_NAMES);
  throw new ConfigError(`unknown preset "${source}"; presets: ${PRESET_NAMES.join(', ')}`, {
    hint: guess ? `did you mean ${guess}?` : 'or pass a YAML/JSON config file or a parity case.json',
  });
}
