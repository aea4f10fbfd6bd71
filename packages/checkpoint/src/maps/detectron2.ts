/**
 * Detectron2 <-> torchvision names (Detectron2 `modeling/`: ResNet `stem`/`res{2..5}` with `.norm`
 * sub-modules and `shortcut`, FPN `fpn_lateral{s}`/`fpn_output{s}`, StandardRPNHead,
 * FastRCNNConvFCHead `fc{1,2}`, FastRCNNOutputLayers, MaskRCNNConvUpsampleHead,
 * KRCNNConvDeconvUpsampleHead, Res5ROIHeads' `res5`).
 *
 * Two conventions differ beyond names:
 * - Class order: Detectron2's `cls_score` has the background as its LAST row; torchvision's as
 *   its FIRST. Detectron2's class-specific `bbox_pred` and mask `predictor` have no background
 *   entry at all; torchvision's have one (never used at inference: its box is dropped after
 *   decoding and no detection has label 0), which reading fills with zeros.
 * - Anchor order: Detectron2 enumerates cell anchors size-major (`for size: for ratio`),
 *   torchvision ratio-major. With one size per level (FPN) the orders agree; with several (C4)
 *   the RPN's objectness rows and delta groups are permuted.
 */
import type { HostTensor } from '@rcnn/core';
import { CheckpointError } from '../errors.js';
import type { CheckpointReport } from '../report.js';
import { dropLeadingRows, filled, permuteRows, prependZeroRows } from '../tensors.js';
import { type MapContext, type NameRule, type TransformKind, ignore, rename } from './rules.js';

const P = '(weight|bias)';
const BN = '(weight|bias|running_mean|running_var)';
const BODY = '^backbone\\.(?:bottom_up\\.)?';

/** The anchor grid of a multi-anchor RPN level (C4): sizes x aspect ratios. */
export interface AnchorGrid {
  readonly sizes: number;
  readonly aspectRatios: number;
}

/** Rules reading Detectron2 names into torchvision names (first match wins). */
export const DETECTRON2_RULES: readonly NameRule[] = [
  rename('backbone.bottom_up.stem.conv1.weight', 'backbone.body.conv1.weight', new RegExp(`${BODY}stem\\.conv1\\.weight$`), () => 'backbone.body.conv1.weight', {
    note: 'C4 checkpoints have no `bottom_up.` (same for every backbone row)',
  }),
  rename('backbone.bottom_up.stem.conv1.norm.{p}', 'backbone.body.bn1.{p}', new RegExp(`${BODY}stem\\.conv1\\.norm\\.${BN}$`), (m) => `backbone.body.bn1.${m[1]}`, {
    note: 'FrozenBN; missing running_mean/var are filled with 0/1 as Detectron2 does',
  }),
  rename(
    'backbone.bottom_up.res{s}.{b}.conv{k}.weight',
    'backbone.body.layer{s-1}.{b}.conv{k}.weight',
    new RegExp(`${BODY}res([2-5])\\.(\\d+)\\.conv([123])\\.weight$`),
    (m) => `backbone.body.layer${Number(m[1]) - 1}.${m[2]}.conv${m[3]}.weight`,
  ),
  rename(
    'backbone.bottom_up.res{s}.{b}.conv{k}.norm.{p}',
    'backbone.body.layer{s-1}.{b}.bn{k}.{p}',
    new RegExp(`${BODY}res([2-5])\\.(\\d+)\\.conv([123])\\.norm\\.${BN}$`),
    (m) => `backbone.body.layer${Number(m[1]) - 1}.${m[2]}.bn${m[3]}.${m[4]}`,
  ),
  rename(
    'backbone.bottom_up.res{s}.{b}.shortcut.weight',
    'backbone.body.layer{s-1}.{b}.downsample.0.weight',
    new RegExp(`${BODY}res([2-5])\\.(\\d+)\\.shortcut\\.weight$`),
    (m) => `backbone.body.layer${Number(m[1]) - 1}.${m[2]}.downsample.0.weight`,
  ),
  rename(
    'backbone.bottom_up.res{s}.{b}.shortcut.norm.{p}',
    'backbone.body.layer{s-1}.{b}.downsample.1.{p}',
    new RegExp(`${BODY}res([2-5])\\.(\\d+)\\.shortcut\\.norm\\.${BN}$`),
    (m) => `backbone.body.layer${Number(m[1]) - 1}.${m[2]}.downsample.1.${m[3]}`,
  ),
  rename(
    'roi_heads.res5.{b}.conv{k}.weight',
    'roi_heads.box_head.res5.{b}.conv{k}.weight',
    /^roi_heads\.res5\.(\d+)\.conv([123])\.weight$/,
    (m) => `roi_heads.box_head.res5.${m[1]}.conv${m[2]}.weight`,
    { note: 'Res5ROIHeads (C4)' },
  ),
  rename(
    'roi_heads.res5.{b}.conv{k}.norm.{p}',
    'roi_heads.box_head.res5.{b}.bn{k}.{p}',
    new RegExp(`^roi_heads\\.res5\\.(\\d+)\\.conv([123])\\.norm\\.${BN}$`),
    (m) => `roi_heads.box_head.res5.${m[1]}.bn${m[2]}.${m[3]}`,
  ),
  rename('roi_heads.res5.{b}.shortcut.weight', 'roi_heads.box_head.res5.{b}.downsample.0.weight', /^roi_heads\.res5\.(\d+)\.shortcut\.weight$/, (m) => `roi_heads.box_head.res5.${m[1]}.downsample.0.weight`),
  rename(
    'roi_heads.res5.{b}.shortcut.norm.{p}',
    'roi_heads.box_head.res5.{b}.downsample.1.{p}',
    new RegExp(`^roi_heads\\.res5\\.(\\d+)\\.shortcut\\.norm\\.${BN}$`),
    (m) => `roi_heads.box_head.res5.${m[1]}.downsample.1.${m[2]}`,
  ),
  rename(
    'backbone.fpn_lateral{s}.{p}',
    'backbone.fpn.inner_blocks.{s-2}.0.{p}',
    new RegExp(`^backbone\\.fpn_lateral(\\d)\\.${P}$`),
    (m, ctx) => `backbone.fpn.inner_blocks.${Number(m[1]) - ctx.fpnMinStage}.0.${m[2]}`,
    { note: 'index counted from the lowest stage present (2 for P2-P5)' },
  ),
  rename(
    'backbone.fpn_output{s}.{p}',
    'backbone.fpn.layer_blocks.{s-2}.0.{p}',
    new RegExp(`^backbone\\.fpn_output(\\d)\\.${P}$`),
    (m, ctx) => `backbone.fpn.layer_blocks.${Number(m[1]) - ctx.fpnMinStage}.0.${m[2]}`,
  ),
  rename('backbone.top_block.p{6,7}.{p}', 'backbone.fpn.extra_blocks.p{6,7}.{p}', new RegExp(`^backbone\\.top_block\\.(p[67])\\.${P}$`), (m) => `backbone.fpn.extra_blocks.${m[1]}.${m[2]}`, {
    note: 'LastLevelP6P7 (RetinaNet-style FPN)',
  }),
  rename('proposal_generator.rpn_head.conv.{p}', 'rpn.head.conv.0.0.{p}', new RegExp(`^proposal_generator\\.rpn_head\\.conv\\.${P}$`), (m) => `rpn.head.conv.0.0.${m[1]}`),
  rename(
    'proposal_generator.rpn_head.conv.conv{k}.{p}',
    'rpn.head.conv.{k}.0.{p}',
    new RegExp(`^proposal_generator\\.rpn_head\\.conv\\.conv(\\d+)\\.${P}$`),
    (m) => `rpn.head.conv.${m[1]}.0.${m[2]}`,
    { note: 'several RPN convs (RPN.CONV_DIMS with more than one entry)' },
  ),
  rename(
    'proposal_generator.rpn_head.objectness_logits.{p}',
    'rpn.head.cls_logits.{p}',
    new RegExp(`^proposal_generator\\.rpn_head\\.objectness_logits\\.${P}$`),
    (m) => `rpn.head.cls_logits.${m[1]}`,
    { transform: 'd2-rpn-objectness', note: 'rows reordered size-major -> ratio-major when a level has several sizes (C4)' },
  ),
  rename(
    'proposal_generator.rpn_head.anchor_deltas.{p}',
    'rpn.head.bbox_pred.{p}',
    new RegExp(`^proposal_generator\\.rpn_head\\.anchor_deltas\\.${P}$`),
    (m) => `rpn.head.bbox_pred.${m[1]}`,
    { transform: 'd2-rpn-deltas', note: 'groups of 4 rows reordered like the objectness rows' },
  ),
  rename('roi_heads.box_head.fc1.{p}', 'roi_heads.box_head.fc6.{p}', new RegExp(`^roi_heads\\.box_head\\.fc1\\.${P}$`), (m) => `roi_heads.box_head.fc6.${m[1]}`),
  rename('roi_heads.box_head.fc2.{p}', 'roi_heads.box_head.fc7.{p}', new RegExp(`^roi_heads\\.box_head\\.fc2\\.${P}$`), (m) => `roi_heads.box_head.fc7.${m[1]}`),
  rename(
    'roi_heads.box_predictor.cls_score.{p}',
    'roi_heads.box_predictor.cls_score.{p}',
    new RegExp(`^roi_heads\\.box_predictor\\.cls_score\\.${P}$`),
    (m) => `roi_heads.box_predictor.cls_score.${m[1]}`,
    { transform: 'd2-class-scores', note: 'rows [c1..cK, bg] -> [bg, c1..cK]' },
  ),
  rename(
    'roi_heads.box_predictor.bbox_pred.{p}',
    'roi_heads.box_predictor.bbox_pred.{p}',
    new RegExp(`^roi_heads\\.box_predictor\\.bbox_pred\\.${P}$`),
    (m) => `roi_heads.box_predictor.bbox_pred.${m[1]}`,
    { transform: 'd2-box-deltas', note: '4K rows -> 4(K+1): 4 zero rows for the background first (class-agnostic 4 rows unchanged)' },
  ),
  rename(
    'roi_heads.mask_head.mask_fcn{k}.{p}',
    'roi_heads.mask_head.{k-1}.0.{p}',
    new RegExp(`^roi_heads\\.mask_head\\.mask_fcn(\\d+)\\.${P}$`),
    (m) => `roi_heads.mask_head.${Number(m[1]) - 1}.0.${m[2]}`,
  ),
  rename('roi_heads.mask_head.deconv.{p}', 'roi_heads.mask_predictor.conv5_mask.{p}', new RegExp(`^roi_heads\\.mask_head\\.deconv\\.${P}$`), (m) => `roi_heads.mask_predictor.conv5_mask.${m[1]}`),
  rename(
    'roi_heads.mask_head.predictor.{p}',
    'roi_heads.mask_predictor.mask_fcn_logits.{p}',
    new RegExp(`^roi_heads\\.mask_head\\.predictor\\.${P}$`),
    (m) => `roi_heads.mask_predictor.mask_fcn_logits.${m[1]}`,
    { transform: 'd2-mask-logits', note: 'K channels -> K+1: a zero background channel first (class-agnostic 1 channel unchanged)' },
  ),
  rename(
    'roi_heads.keypoint_head.conv_fcn{k}.{p}',
    'roi_heads.keypoint_head.{2(k-1)}.{p}',
    new RegExp(`^roi_heads\\.keypoint_head\\.conv_fcn(\\d+)\\.${P}$`),
    (m) => `roi_heads.keypoint_head.${2 * (Number(m[1]) - 1)}.${m[2]}`,
    { note: 'torchvision interleaves conv and ReLU in one Sequential' },
  ),
  rename(
    'roi_heads.keypoint_head.score_lowres.{p}',
    'roi_heads.keypoint_predictor.kps_score_lowres.{p}',
    new RegExp(`^roi_heads\\.keypoint_head\\.score_lowres\\.${P}$`),
    (m) => `roi_heads.keypoint_predictor.kps_score_lowres.${m[1]}`,
  ),
  ignore('pixel_mean, pixel_std', /^pixel_(mean|std)$/, 'input normalisation buffers: their values go to the suggested INPUT.PIXEL_MEANS / PIXEL_STDS'),
  ignore('*.num_batches_tracked', /(^|\.)num_batches_tracked$/, 'BatchNorm step counter'),
  ignore('proposal_generator.anchor_generator.cell_anchors.{i}', /^proposal_generator\.anchor_generator\.cell_anchors\.\d+$/, 'anchors are computed from config, not loaded'),
];

/** Rules writing torchvision names as Detectron2 names (for export and round-trip tests). */
export function detectron2ExportRules(ctx: MapContext & { rpnConvs: number }): NameRule[] {
  const bb = ctx.layout === 'c4' ? 'backbone.' : 'backbone.bottom_up.';
  const rpnConv = (k: string, p: string): string => (ctx.rpnConvs <= 1 ? `proposal_generator.rpn_head.conv.${p}` : `proposal_generator.rpn_head.conv.conv${k}.${p}`);
  const block = (prefix: string) => [
    rename('', '', new RegExp(`^${prefix.replace(/\./g, '\\.')}(\\d+)\\.(\\d+)\\.conv([123])\\.weight$`), (m) => `${target(prefix, m[1]!)}.${m[2]}.conv${m[3]}.weight`),
    rename('', '', new RegExp(`^${prefix.replace(/\./g, '\\.')}(\\d+)\\.(\\d+)\\.bn([123])\\.${BN}$`), (m) => `${target(prefix, m[1]!)}.${m[2]}.conv${m[3]}.norm.${m[4]}`),
    rename('', '', new RegExp(`^${prefix.replace(/\./g, '\\.')}(\\d+)\\.(\\d+)\\.downsample\\.0\\.weight$`), (m) => `${target(prefix, m[1]!)}.${m[2]}.shortcut.weight`),
    rename('', '', new RegExp(`^${prefix.replace(/\./g, '\\.')}(\\d+)\\.(\\d+)\\.downsample\\.1\\.${BN}$`), (m) => `${target(prefix, m[1]!)}.${m[2]}.shortcut.norm.${m[3]}`),
  ];
  // backbone.body.layer{L} -> {bb}res{L+1}; roi_heads.box_head.res5 -> roi_heads.res5.
  const target = (prefix: string, n: string): string => (prefix === 'backbone.body.layer' ? `${bb}res${Number(n) + 1}` : `roi_heads.res${n}`);
  return [
    rename('', '', /^backbone\.body\.conv1\.weight$/, () => `${bb}stem.conv1.weight`),
    rename('', '', new RegExp(`^backbone\\.body\\.bn1\\.${BN}$`), (m) => `${bb}stem.conv1.norm.${m[1]}`),
    ...block('backbone.body.layer'),
    ...block('roi_heads.box_head.res'),
    rename('', '', new RegExp(`^backbone\\.fpn\\.inner_blocks\\.(\\d+)\\.0\\.${P}$`), (m) => `backbone.fpn_lateral${Number(m[1]) + ctx.fpnMinStage}.${m[2]}`),
    rename('', '', new RegExp(`^backbone\\.fpn\\.layer_blocks\\.(\\d+)\\.0\\.${P}$`), (m) => `backbone.fpn_output${Number(m[1]) + ctx.fpnMinStage}.${m[2]}`),
    rename('', '', new RegExp(`^backbone\\.fpn\\.extra_blocks\\.(p[67])\\.${P}$`), (m) => `backbone.top_block.${m[1]}.${m[2]}`),
    rename('', '', new RegExp(`^rpn\\.head\\.conv\\.(\\d+)\\.0\\.${P}$`), (m) => rpnConv(m[1]!, m[2]!)),
    rename('', '', new RegExp(`^rpn\\.head\\.cls_logits\\.${P}$`), (m) => `proposal_generator.rpn_head.objectness_logits.${m[1]}`, { transform: 'tv-to-d2-rpn-objectness' }),
    rename('', '', new RegExp(`^rpn\\.head\\.bbox_pred\\.${P}$`), (m) => `proposal_generator.rpn_head.anchor_deltas.${m[1]}`, { transform: 'tv-to-d2-rpn-deltas' }),
    rename('', '', new RegExp(`^roi_heads\\.box_head\\.fc6\\.${P}$`), (m) => `roi_heads.box_head.fc1.${m[1]}`),
    rename('', '', new RegExp(`^roi_heads\\.box_head\\.fc7\\.${P}$`), (m) => `roi_heads.box_head.fc2.${m[1]}`),
    rename('', '', new RegExp(`^roi_heads\\.box_predictor\\.cls_score\\.${P}$`), (m) => m.input, { transform: 'tv-to-d2-class-scores' }),
    rename('', '', new RegExp(`^roi_heads\\.box_predictor\\.bbox_pred\\.${P}$`), (m) => m.input, { transform: 'tv-to-d2-box-deltas' }),
    rename('', '', new RegExp(`^roi_heads\\.mask_head\\.(\\d+)\\.0\\.${P}$`), (m) => `roi_heads.mask_head.mask_fcn${Number(m[1]) + 1}.${m[2]}`),
    rename('', '', new RegExp(`^roi_heads\\.mask_predictor\\.conv5_mask\\.${P}$`), (m) => `roi_heads.mask_head.deconv.${m[1]}`),
    rename('', '', new RegExp(`^roi_heads\\.mask_predictor\\.mask_fcn_logits\\.${P}$`), (m) => `roi_heads.mask_head.predictor.${m[1]}`, { transform: 'tv-to-d2-mask-logits' }),
    rename('', '', new RegExp(`^roi_heads\\.keypoint_head\\.(\\d+)\\.${P}$`), (m) => `roi_heads.keypoint_head.conv_fcn${Number(m[1]) / 2 + 1}.${m[2]}`),
    rename('', '', new RegExp(`^roi_heads\\.keypoint_predictor\\.kps_score_lowres\\.${P}$`), (m) => `roi_heads.keypoint_head.score_lowres.${m[1]}`),
  ];
}

const rows = (t: HostTensor | undefined): number | undefined => t?.dims[0];

/** Anchor order permutation between the two conventions; undefined when they agree. */
function anchorOrder(anchors: number, grid: AnchorGrid | undefined, toTorchvision: boolean, report: CheckpointReport): number[] | undefined {
  let g = grid;
  if (!g) {
    if (anchors <= 3) return undefined; // one size per level: size-major == ratio-major
    if (anchors % 3 !== 0) {
      report.notes.push(`RPN has ${anchors} anchors per location and no anchor grid was given: anchor order left as is (pass rpnAnchorGrid)`);
      return undefined;
    }
    g = { sizes: anchors / 3, aspectRatios: 3 };
    report.notes.push(`RPN has ${anchors} anchors per location: assumed Detectron2's default grid of ${g.sizes} sizes x 3 aspect ratios (override with rpnAnchorGrid)`);
  }
  if (g.sizes * g.aspectRatios !== anchors) {
    throw new CheckpointError('name-map', `${report.source}: rpnAnchorGrid ${g.sizes} x ${g.aspectRatios} does not match the RPN's ${anchors} anchors per location`, {
      file: report.source,
    });
  }
  if (g.sizes === 1 || g.aspectRatios === 1) return undefined;
  const order: number[] = [];
  // torchvision index t = r * S + s; Detectron2 index d = s * R + r.
  for (let out = 0; out < anchors; out++) {
    if (toTorchvision) {
      const r = Math.floor(out / g.sizes);
      const s = out % g.sizes;
      order.push(s * g.aspectRatios + r);
    } else {
      const s = Math.floor(out / g.aspectRatios);
      const r = out % g.aspectRatios;
      order.push(r * g.sizes + s);
    }
  }
  return order;
}

/**
 * Applies the value rewrites the Detectron2 rules asked for (both directions), after renaming.
 * `tensors` is keyed by the new names.
 */
export function applyDetectron2Transforms(
  tensors: Map<string, HostTensor>,
  transforms: ReadonlyMap<string, TransformKind>,
  grid: AnchorGrid | undefined,
  report: CheckpointReport,
): void {
  const toTv = [...transforms.values()].some((t) => t.startsWith('d2-'));
  // Same name in both conventions; K+1 rows in both.
  const classes = rows(tensors.get('roi_heads.box_predictor.cls_score.weight'));
  const objectness = toTv ? 'rpn.head.cls_logits.weight' : 'proposal_generator.rpn_head.objectness_logits.weight';
  const anchors = rows(tensors.get(objectness));
  let order: number[] | undefined;
  let orderDone = false;
  const getOrder = (): number[] | undefined => {
    if (!orderDone && anchors !== undefined) order = anchorOrder(anchors, grid, toTv, report);
    orderDone = true;
    return order;
  };
  for (const [name, kind] of transforms) {
    const t = tensors.get(name)!;
    const r = t.dims[0]!;
    switch (kind) {
      case 'd2-class-scores':
      case 'tv-to-d2-class-scores': {
        const perm = Array.from({ length: r }, (_, i) => (kind === 'd2-class-scores' ? (i === 0 ? r - 1 : i - 1) : i === r - 1 ? 0 : i + 1));
        tensors.set(name, permuteRows(t, perm));
        report.transformed.push({ key: name, note: kind === 'd2-class-scores' ? 'background row moved from last to first' : 'background row moved from first to last' });
        break;
      }
      case 'd2-box-deltas':
        if (classes !== undefined && r === 4 * (classes - 1) && classes > 1) {
          tensors.set(name, prependZeroRows(t, 4));
          report.synthesized.push({ key: name, note: 'background box-regression rows 0-3 set to 0 (Detectron2 has none; torchvision never uses them)' });
        } else if (r === 4) report.notes.push(`${name}: class-agnostic box regression (4 rows) kept as is`);
        else report.notes.push(`${name}: ${r} rows do not match ${classes ?? '?'} classes; left unchanged`);
        break;
      case 'tv-to-d2-box-deltas':
        if (classes !== undefined && r === 4 * classes && classes > 1) {
          tensors.set(name, dropLeadingRows(t, 4));
          report.transformed.push({ key: name, note: 'background box-regression rows 0-3 dropped (Detectron2 has none)' });
        }
        break;
      case 'd2-mask-logits':
        if (classes !== undefined && r === classes - 1 && classes > 1) {
          tensors.set(name, prependZeroRows(t, 1));
          report.synthesized.push({ key: name, note: 'background mask channel 0 set to 0 (Detectron2 has none; torchvision never uses it)' });
        } else if (r === 1) report.notes.push(`${name}: class-agnostic mask (1 channel) kept as is`);
        else report.notes.push(`${name}: ${r} channels do not match ${classes ?? '?'} classes; left unchanged`);
        break;
      case 'tv-to-d2-mask-logits':
        if (classes !== undefined && r === classes && classes > 1) {
          tensors.set(name, dropLeadingRows(t, 1));
          report.transformed.push({ key: name, note: 'background mask channel dropped (Detectron2 has none)' });
        }
        break;
      case 'd2-rpn-objectness':
      case 'tv-to-d2-rpn-objectness':
      case 'd2-rpn-deltas':
      case 'tv-to-d2-rpn-deltas': {
        const perm = getOrder();
        if (!perm) break;
        const group = kind.endsWith('deltas') ? 4 : 1;
        if (perm.length * group !== r) {
          throw new CheckpointError('name-map', `${report.source}: ${name} has ${r} rows, expected ${perm.length * group} for ${perm.length} anchors`, {
            file: report.source,
            key: name,
          });
        }
        tensors.set(name, permuteRows(t, perm, group));
        report.transformed.push({ key: name, note: `anchors reordered ${toTv ? 'size-major -> ratio-major' : 'ratio-major -> size-major'}` });
        break;
      }
    }
  }
}

/** Detectron2's FrozenBN load rule: norms without running statistics get mean 0 and var 1. */
export function fillMissingRunningStats(tensors: Map<string, HostTensor>, report: CheckpointReport): void {
  for (const [name, t] of [...tensors]) {
    const m = /^((?:backbone\.body|roi_heads\.box_head\.res5)\..*(?:bn\d|downsample\.1))\.weight$/.exec(name);
    if (!m) continue;
    for (const [stat, value] of [
      ['running_mean', 0],
      ['running_var', 1],
    ] as const) {
      const key = `${m[1]}.${stat}`;
      if (!tensors.has(key)) {
        tensors.set(key, filled(t.dims, value));
        report.synthesized.push({ key, note: `${value} (Detectron2 FrozenBatchNorm2d fills missing statistics this way)` });
      }
    }
  }
}
