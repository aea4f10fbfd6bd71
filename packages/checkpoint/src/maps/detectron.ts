/**
 * Detectron (Caffe2) blob names <-> torchvision names. Detectron's blobs are flat
 * (`res2_0_branch2a_w`), its ResNet norms are AffineChannel (`_bn_s` scale, `_bn_b` bias, no
 * statistics, no eps), and its class order already matches torchvision's (background first, with
 * background rows in `bbox_pred` and `mask_fcn_logits`), so no rows move.
 *
 * AffineChannel `y = x * s + b` becomes the torchvision norm's `weight = s`, `bias = b`. With the
 * `frozen-bn` form the reader adds `running_mean = 0`, `running_var = 1`, so a FrozenBatchNorm2d
 * with `RESNETS.FROZEN_BN_EPS: 0` computes exactly `x * s + b`; with the default `affine` form the
 * config must say `RESNETS.NORM: AffineChannel` (see `suggestedConfigLayer`).
 */
import type { HostTensor } from '@rcnn/core';
import type { CheckpointReport } from '../report.js';
import { filled } from '../tensors.js';
import { type MapContext, type NameRule, ignore, rename } from './rules.js';

const WB = '([wb])';
const param = (c: string): string => (c === 'w' ? 'weight' : 'bias');
const affine = (c: string): string => (c === 's' ? 'weight' : 'bias');
const branch = (c: string): number => ({ a: 1, b: 2, c: 3 })[c as 'a' | 'b' | 'c'];
/** Where res{s} lives: the backbone, or (C4 layout) res5 in the box head. */
const stagePrefix = (s: string, ctx: MapContext): string => (s === '5' && ctx.layout === 'c4' ? 'roi_heads.box_head.res5' : `backbone.body.layer${Number(s) - 1}`);

/** Rules reading Detectron blob names into torchvision names (first match wins). */
export const DETECTRON_RULES: readonly NameRule[] = [
  rename('conv1_w', 'backbone.body.conv1.weight', /^conv1_w$/, () => 'backbone.body.conv1.weight'),
  rename('res_conv1_bn_{s,b}', 'backbone.body.bn1.{weight,bias}', /^res_conv1_bn_([sb])$/, (m) => `backbone.body.bn1.${affine(m[1]!)}`, {
    note: 'AffineChannel scale/bias (see the AffineChannel note)',
  }),
  rename(
    'res{s}_{b}_branch2{a,b,c}_w',
    'backbone.body.layer{s-1}.{b}.conv{1,2,3}.weight',
    /^res([2-5])_(\d+)_branch2([abc])_w$/,
    (m, ctx) => `${stagePrefix(m[1]!, ctx)}.${m[2]}.conv${branch(m[3]!)}.weight`,
    { note: 'C4 layout: res5 -> roi_heads.box_head.res5.{b}.*' },
  ),
  rename(
    'res{s}_{b}_branch2{a,b,c}_bn_{s,b}',
    'backbone.body.layer{s-1}.{b}.bn{1,2,3}.{weight,bias}',
    /^res([2-5])_(\d+)_branch2([abc])_bn_([sb])$/,
    (m, ctx) => `${stagePrefix(m[1]!, ctx)}.${m[2]}.bn${branch(m[3]!)}.${affine(m[4]!)}`,
    { note: 'AffineChannel' },
  ),
  rename('res{s}_{b}_branch1_w', 'backbone.body.layer{s-1}.{b}.downsample.0.weight', /^res([2-5])_(\d+)_branch1_w$/, (m, ctx) => `${stagePrefix(m[1]!, ctx)}.${m[2]}.downsample.0.weight`),
  rename(
    'res{s}_{b}_branch1_bn_{s,b}',
    'backbone.body.layer{s-1}.{b}.downsample.1.{weight,bias}',
    /^res([2-5])_(\d+)_branch1_bn_([sb])$/,
    (m, ctx) => `${stagePrefix(m[1]!, ctx)}.${m[2]}.downsample.1.${affine(m[3]!)}`,
    { note: 'AffineChannel' },
  ),
  rename(
    'fpn_inner_res{s}_{b}_sum_lateral_{w,b}',
    'backbone.fpn.inner_blocks.{s-2}.0.{weight,bias}',
    new RegExp(`^fpn_inner_res(\\d)_(\\d+)_sum_lateral_${WB}$`),
    (m, ctx) => `backbone.fpn.inner_blocks.${Number(m[1]) - ctx.fpnMinStage}.0.${param(m[3]!)}`,
    { note: '{b} is the stage\'s last block (res4_5 for ResNet-50)' },
  ),
  rename(
    'fpn_inner_res{s}_{b}_sum_{w,b}',
    'backbone.fpn.inner_blocks.{s-2}.0.{weight,bias}',
    new RegExp(`^fpn_inner_res(\\d)_(\\d+)_sum_${WB}$`),
    (m, ctx) => `backbone.fpn.inner_blocks.${Number(m[1]) - ctx.fpnMinStage}.0.${param(m[3]!)}`,
    { note: 'the top (coarsest) lateral has no `_lateral` suffix' },
  ),
  rename(
    'fpn_res{s}_{b}_sum_{w,b}',
    'backbone.fpn.layer_blocks.{s-2}.0.{weight,bias}',
    new RegExp(`^fpn_res(\\d)_(\\d+)_sum_${WB}$`),
    (m, ctx) => `backbone.fpn.layer_blocks.${Number(m[1]) - ctx.fpnMinStage}.0.${param(m[3]!)}`,
  ),
  rename('fpn_{6,7}_{w,b}', 'backbone.fpn.extra_blocks.p{6,7}.{weight,bias}', new RegExp(`^fpn_([67])_${WB}$`), (m) => `backbone.fpn.extra_blocks.p${m[1]}.${param(m[2]!)}`, {
    note: 'FPN.EXTRA_CONV_LEVELS',
  }),
  rename('conv_rpn_fpn{l}_{w,b}', 'rpn.head.conv.0.0.{weight,bias}', new RegExp(`^conv_rpn_fpn\\d_${WB}$`), (m) => `rpn.head.conv.0.0.${param(m[1]!)}`, {
    note: 'shared by all levels; stored once at the lowest level (fpn2)',
  }),
  rename('rpn_cls_logits_fpn{l}_{w,b}', 'rpn.head.cls_logits.{weight,bias}', new RegExp(`^rpn_cls_logits_fpn\\d_${WB}$`), (m) => `rpn.head.cls_logits.${param(m[1]!)}`, {
    note: 'sigmoid objectness (A channels); anchors ratio-major as in torchvision',
  }),
  rename('rpn_bbox_pred_fpn{l}_{w,b}', 'rpn.head.bbox_pred.{weight,bias}', new RegExp(`^rpn_bbox_pred_fpn\\d_${WB}$`), (m) => `rpn.head.bbox_pred.${param(m[1]!)}`),
  rename('conv_rpn_{w,b}', 'rpn.head.conv.0.0.{weight,bias}', new RegExp(`^conv_rpn_${WB}$`), (m) => `rpn.head.conv.0.0.${param(m[1]!)}`, { note: 'single-level (C4) RPN' }),
  rename('rpn_cls_logits_{w,b}', 'rpn.head.cls_logits.{weight,bias}', new RegExp(`^rpn_cls_logits_${WB}$`), (m) => `rpn.head.cls_logits.${param(m[1]!)}`),
  rename('rpn_bbox_pred_{w,b}', 'rpn.head.bbox_pred.{weight,bias}', new RegExp(`^rpn_bbox_pred_${WB}$`), (m) => `rpn.head.bbox_pred.${param(m[1]!)}`),
  rename('fc6_{w,b}', 'roi_heads.box_head.fc6.{weight,bias}', new RegExp(`^fc6_${WB}$`), (m) => `roi_heads.box_head.fc6.${param(m[1]!)}`),
  rename('fc7_{w,b}', 'roi_heads.box_head.fc7.{weight,bias}', new RegExp(`^fc7_${WB}$`), (m) => `roi_heads.box_head.fc7.${param(m[1]!)}`),
  rename('cls_score_{w,b}', 'roi_heads.box_predictor.cls_score.{weight,bias}', new RegExp(`^cls_score_${WB}$`), (m) => `roi_heads.box_predictor.cls_score.${param(m[1]!)}`, {
    note: 'background first, as torchvision',
  }),
  rename('bbox_pred_{w,b}', 'roi_heads.box_predictor.bbox_pred.{weight,bias}', new RegExp(`^bbox_pred_${WB}$`), (m) => `roi_heads.box_predictor.bbox_pred.${param(m[1]!)}`, {
    note: '4(K+1) rows, background first, as torchvision',
  }),
  rename('_[mask]_fcn{k}_{w,b}', 'roi_heads.mask_head.{k-1}.0.{weight,bias}', new RegExp(`^_\\[mask\\]_fcn(\\d+)_${WB}$`), (m) => `roi_heads.mask_head.${Number(m[1]) - 1}.0.${param(m[2]!)}`),
  rename('conv5_mask_{w,b}', 'roi_heads.mask_predictor.conv5_mask.{weight,bias}', new RegExp(`^conv5_mask_${WB}$`), (m) => `roi_heads.mask_predictor.conv5_mask.${param(m[1]!)}`, {
    note: 'Caffe2 ConvTranspose weights are [in, out, kH, kW] like torch',
  }),
  rename('mask_fcn_logits_{w,b}', 'roi_heads.mask_predictor.mask_fcn_logits.{weight,bias}', new RegExp(`^mask_fcn_logits_${WB}$`), (m) => `roi_heads.mask_predictor.mask_fcn_logits.${param(m[1]!)}`, {
    note: 'K+1 channels, background first, as torchvision',
  }),
  rename('conv_fcn{k}_{w,b}', 'roi_heads.keypoint_head.{2(k-1)}.{weight,bias}', new RegExp(`^conv_fcn(\\d+)_${WB}$`), (m) => `roi_heads.keypoint_head.${2 * (Number(m[1]) - 1)}.${param(m[2]!)}`),
  rename('kps_score_lowres_{w,b}', 'roi_heads.keypoint_predictor.kps_score_lowres.{weight,bias}', new RegExp(`^kps_score_lowres_${WB}$`), (m) => `roi_heads.keypoint_predictor.kps_score_lowres.${param(m[1]!)}`),
  ignore('*_momentum', /_momentum$/, 'SGD momentum (training state)'),
];

/** Adds running_mean = 0 / running_var = 1 next to every AffineChannel-derived norm (the `frozen-bn` form). */
export function addFrozenBnStatistics(tensors: Map<string, HostTensor>, affineKeys: readonly string[], report: CheckpointReport): void {
  for (const name of affineKeys) {
    const m = /^(.*)\.weight$/.exec(name);
    if (!m) continue;
    const t = tensors.get(name)!;
    for (const [stat, value] of [
      ['running_mean', 0],
      ['running_var', 1],
    ] as const) {
      tensors.set(`${m[1]}.${stat}`, filled(t.dims, value));
      report.synthesized.push({ key: `${m[1]}.${stat}`, note: `${value}: AffineChannel as FrozenBatchNorm2d (exact with RESNETS.FROZEN_BN_EPS 0)` });
    }
  }
}

/** Structure facts the Detectron export needs: blocks per stage (FPN blob names embed the last one). */
export interface DetectronExportContext extends MapContext {
  /** Stage s -> number of blocks of res{s}. */
  readonly stageBlocks: ReadonlyMap<number, number>;
  /** The coarsest FPN stage (its lateral has no `_lateral` suffix). */
  readonly fpnTopStage: number;
}

/** Rules writing torchvision names as Detectron blobs (norms are folded separately, see {@link foldFrozenBn}). */
export function detectronExportRules(ctx: DetectronExportContext): NameRule[] {
  const c2 = (p: string): string => (p === 'weight' ? 'w' : 'b');
  const last = (s: number): number => (ctx.stageBlocks.get(s) ?? 1) - 1;
  const rpn = ctx.layout === 'c4' ? '' : `_fpn${ctx.fpnMinStage}`;
  const letter = (k: string): string => 'abc'[Number(k) - 1]!;
  const stageRules = (prefix: RegExp, stage: (m: RegExpExecArray) => number): NameRule[] => [
    rename('', '', new RegExp(`${prefix.source}\\.(\\d+)\\.conv([123])\\.weight$`), (m) => `res${stage(m)}_${m[m.length - 2]}_branch2${letter(m[m.length - 1]!)}_w`),
    rename('', '', new RegExp(`${prefix.source}\\.(\\d+)\\.downsample\\.0\\.weight$`), (m) => `res${stage(m)}_${m[m.length - 1]}_branch1_w`),
  ];
  return [
    rename('', '', /^backbone\.body\.conv1\.weight$/, () => 'conv1_w'),
    ...stageRules(/^backbone\.body\.layer(\d)/, (m) => Number(m[1]) + 1),
    ...stageRules(/^roi_heads\.box_head\.res(5)/, () => 5),
    rename('', '', /^backbone\.fpn\.inner_blocks\.(\d+)\.0\.(weight|bias)$/, (m) => {
      const s = Number(m[1]) + ctx.fpnMinStage;
      return `fpn_inner_res${s}_${last(s)}_sum${s === ctx.fpnTopStage ? '' : '_lateral'}_${c2(m[2]!)}`;
    }),
    rename('', '', /^backbone\.fpn\.layer_blocks\.(\d+)\.0\.(weight|bias)$/, (m) => {
      const s = Number(m[1]) + ctx.fpnMinStage;
      return `fpn_res${s}_${last(s)}_sum_${c2(m[2]!)}`;
    }),
    rename('', '', /^backbone\.fpn\.extra_blocks\.p([67])\.(weight|bias)$/, (m) => `fpn_${m[1]}_${c2(m[2]!)}`),
    rename('', '', /^rpn\.head\.conv\.0\.0\.(weight|bias)$/, (m) => `conv_rpn${rpn}_${c2(m[1]!)}`),
    rename('', '', /^rpn\.head\.cls_logits\.(weight|bias)$/, (m) => `rpn_cls_logits${rpn}_${c2(m[1]!)}`),
    rename('', '', /^rpn\.head\.bbox_pred\.(weight|bias)$/, (m) => `rpn_bbox_pred${rpn}_${c2(m[1]!)}`),
    rename('', '', /^roi_heads\.box_head\.(fc[67])\.(weight|bias)$/, (m) => `${m[1]}_${c2(m[2]!)}`),
    rename('', '', /^roi_heads\.box_predictor\.(cls_score|bbox_pred)\.(weight|bias)$/, (m) => `${m[1]}_${c2(m[2]!)}`),
    rename('', '', /^roi_heads\.mask_head\.(\d+)\.0\.(weight|bias)$/, (m) => `_[mask]_fcn${Number(m[1]) + 1}_${c2(m[2]!)}`),
    rename('', '', /^roi_heads\.mask_predictor\.(conv5_mask|mask_fcn_logits)\.(weight|bias)$/, (m) => `${m[1]}_${c2(m[2]!)}`),
    rename('', '', /^roi_heads\.keypoint_head\.(\d+)\.(weight|bias)$/, (m) => `conv_fcn${Number(m[1]) / 2 + 1}_${c2(m[2]!)}`),
    rename('', '', /^roi_heads\.keypoint_predictor\.kps_score_lowres\.(weight|bias)$/, (m) => `kps_score_lowres_${c2(m[1]!)}`),
  ];
}

/** The Detectron blob prefix (`res2_0_branch2a`, `res_conv1`) of a torchvision norm prefix, if it is one. */
export function detectronNormPrefix(tvPrefix: string, layout: 'fpn' | 'c4'): string | undefined {
  if (tvPrefix === 'backbone.body.bn1') return 'res_conv1';
  let m = /^backbone\.body\.layer(\d)\.(\d+)\.bn([123])$/.exec(tvPrefix);
  if (m) return `res${Number(m[1]) + 1}_${m[2]}_branch2${'abc'[Number(m[3]) - 1]}`;
  m = /^backbone\.body\.layer(\d)\.(\d+)\.downsample\.1$/.exec(tvPrefix);
  if (m) return `res${Number(m[1]) + 1}_${m[2]}_branch1`;
  if (layout === 'c4') {
    m = /^roi_heads\.box_head\.res5\.(\d+)\.bn([123])$/.exec(tvPrefix);
    if (m) return `res5_${m[1]}_branch2${'abc'[Number(m[2]) - 1]}`;
    m = /^roi_heads\.box_head\.res5\.(\d+)\.downsample\.1$/.exec(tvPrefix);
    if (m) return `res5_${m[1]}_branch1`;
  }
  return undefined;
}

/**
 * Folds a FrozenBatchNorm2d into AffineChannel: `s = w / sqrt(var + eps)`, `b' = b - mean * s`,
 * computed in float64 and rounded once to float32. Returns [scale, bias].
 */
export function foldFrozenBn(weight: HostTensor, bias: HostTensor, mean: HostTensor, variance: HostTensor, eps: number): [HostTensor, HostTensor] {
  const w = asF32(weight);
  const b = asF32(bias);
  const m = asF32(mean);
  const v = asF32(variance);
  const s = new Float32Array(w.length);
  const o = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const scale = w[i]! / Math.sqrt(v[i]! + eps);
    s[i] = scale;
    o[i] = b[i]! - m[i]! * scale;
  }
  return [
    { dtype: 'float32', dims: [...weight.dims], data: s },
    { dtype: 'float32', dims: [...bias.dims], data: o },
  ];
}

function asF32(t: HostTensor): Float32Array {
  if (t.dtype === 'float32') return t.data as Float32Array;
  if (t.dtype === 'float64') return Float32Array.from(t.data as Float64Array);
  throw new RangeError(`norm parameter of dtype ${t.dtype}: fold needs float32/float64`);
}
