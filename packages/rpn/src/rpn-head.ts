/**
 * `rpn_heads.add_generic_rpn_outputs`: the RPN of a Faster/Mask/Keypoint R-CNN at test time, on one
 * feature map (C4) or on every FPN level with one shared head (torchvision `RPNHead` +
 * `AnchorGenerator` + `RegionProposalNetwork.filter_proposals`; Detectron's
 * `add_single_scale_rpn_outputs` / `FPN.add_fpn_rpn_outputs`).
 */
import {
  type BalancedSample,
  BELOW_LOW_THRESHOLD,
  type Blob,
  type BuildContext,
  type Conv2dSpec,
  DIMS,
  type FeatureMaps,
  type HostTargets,
  type HostTensor,
  type Implementation,
  type LossTerm,
  type Proposals,
  type RcnnConfig,
  type RpnHead,
  type RpnGraphTargetInput,
  type RpnHeadTraining,
  type RpnTargetInput,
  type TrainingBuildContext,
  at,
  boxIouFloat32,
  boxIouGraph,
  checkInjectedSample,
  conv2dOptions,
  conv2dParameters,
  encodeBox,
  encodeBoxesGraph,
  hostTensor,
  int64Tensor,
  levelSizeDims,
  losses,
  matchBoxes,
  matchBoxesGraph,
  ops,
  parameter,
  sampleBalanced,
  sampleBalancedGraph,
  sequentialKey,
  sharedChannels,
} from '@rcnn/core';
import { type LevelAnchorSpec, detectron2BaseAnchors, detectronBaseAnchors, gridAnchors, levelAnchorSpecs, nominalStride, torchvisionBaseAnchors } from './anchors.js';
import { type LevelCandidates, filterProposals } from './proposals.js';

/** State-dict prefix of the RPN head's weights (torchvision `rpn.head.*`). */
export const RPN_WEIGHT_PREFIX = 'rpn.';

/** A conv of the shared head: its spec and its parameters, read once for every level. */
interface SharedConv {
  readonly spec: Conv2dSpec;
  readonly weight: Blob;
  readonly bias: Blob;
}

/** The shared head's layers (torchvision RPNHead: `conv` a Sequential of Conv2dNormActivation without norm, then the two 1x1 predictors). */
interface HeadLayers {
  readonly convs: readonly SharedConv[];
  readonly cls: SharedConv;
  readonly bbox: SharedConv;
}

/**
 * Reads the head's parameters once (they are shared by every level), by torchvision name.
 * torchvision RPNHead init: normal(std=0.01) weights, zero biases (used only for random weights).
 */
function headLayers(ctx: BuildContext, channels: number, anchors: number): HeadLayers {
  const g = ctx.graph;
  const init = { kind: 'normal', std: 0.01 } as const;
  const shared = (spec: Conv2dSpec): SharedConv =>
    g.withScope(spec.name ?? 'conv', () => {
      const [weight, bias] = conv2dParameters(spec).map((p) => parameter(ctx, p));
      return { spec, weight: weight!, bias: bias! };
    });
  return g.withScope('head', () => ({
    convs: Array.from({ length: ctx.config.RPN.HEAD_CONV_DEPTH }, (_, i) =>
      shared({ key: sequentialKey(`${RPN_WEIGHT_PREFIX}head.conv`, i, 0), name: `conv${i}`, inChannels: channels, outChannels: channels, kernel: 3, weightInit: init }),
    ),
    cls: shared({ key: `${RPN_WEIGHT_PREFIX}head.cls_logits`, inChannels: channels, outChannels: anchors, kernel: 1, weightInit: init }),
    bbox: shared({ key: `${RPN_WEIGHT_PREFIX}head.bbox_pred`, inChannels: channels, outChannels: 4 * anchors, kernel: 1, weightInit: init }),
  }));
}

/** Applies a shared conv at one level. */
function applyShared(ctx: BuildContext, x: Blob, layer: SharedConv, name: string): Blob {
  return ops.conv(ctx.graph, x, layer.weight, layer.bias, { ...conv2dOptions(layer.spec), name });
}

/** The head's outputs on every level, flattened in torchvision's (level, y, x, a) order. */
interface RpnLevelOutputs {
  readonly levels: readonly { readonly logits: Blob; readonly deltas: Blob; readonly feature: FeatureMaps[number]; readonly spec: LevelAnchorSpec }[];
}

/**
 * Runs the shared head on every level (the inference and the training graph build exactly these
 * nodes): per level objectness [N,A,h,w] and deltas [N,4A,h,w], tapped as `rpn.objectness.<name>`
 * / `rpn.deltas.<name>`, flattened as torchvision's `permute_and_flatten` to [N,h*w*A] and [N,h*w*A,4].
 */
function rpnHeadOutputs(ctx: BuildContext, features: FeatureMaps): RpnLevelOutputs {
  const { graph: g, config } = ctx;
  // The head is shared across levels, so every level must have its input width.
  const channels = sharedChannels(features, 'RPN head', 'RPN.HEAD');
  const specs = levelAnchorSpecs(config, features);
  const a = specs[0]!.sizes.length * specs[0]!.aspectRatios.length;
  const w = headLayers(ctx, channels, a);
  const levels = features.map((f, i) =>
    g.withScope(`level_${f.name}`, () => {
      let x = f.blob;
      w.convs.forEach((c, j) => {
        x = ops.relu(g, applyShared(ctx, x, c, `conv${j}`), `relu${j}`);
      });
      const objectness = applyShared(ctx, x, w.cls, 'cls_logits'); // [N,A,h,w]
      const deltas = applyShared(ctx, x, w.bbox, 'bbox_pred'); // [N,4A,h,w]
      ctx.tap(`rpn.objectness.${f.name}`, objectness, 'float32', 'whole', [DIMS.images, a, ...levelSizeDims(f.name)]);
      ctx.tap(`rpn.deltas.${f.name}`, deltas, 'float32', 'whole', [DIMS.images, 4 * a, ...levelSizeDims(f.name)]);
      // torchvision permute_and_flatten: [N,A,h,w] -> [N,h*w*A]; [N,A*4,h,w] -> [N,A,4,h,w] -> [N,h*w*A,4].
      const logits = ops.reshape(g, ops.transpose(g, objectness, [0, 2, 3, 1], 'obj_nhwa'), [0, -1], 'logits');
      // (h, w) are contiguous, so they can be merged before the transpose: [N,A,4,h*w] -> [N,h*w,A,4].
      const deltas4 = ops.reshape(g, deltas, [0, a, 4, -1], 'deltas_a4s');
      const flatDeltas = ops.reshape(g, ops.transpose(g, deltas4, [0, 3, 1, 2], 'deltas_sa4'), [0, -1, 4], 'deltas_flat');
      return { logits, deltas: flatDeltas, feature: f, spec: at(specs, i, 'RPN anchor specs (one per level)') };
    }),
  );
  return { levels };
}

/** Builds the RPN on `features` (see module doc). */
function buildRpn(ctx: BuildContext, features: FeatureMaps): Proposals {
  const { graph: g, config } = ctx;
  const legacy = config.MODEL.LEGACY_PLUS_ONE;
  const head = rpnHeadOutputs(ctx, features);
  const allAnchors: Blob[] = [];
  const levels: LevelCandidates[] = head.levels.map((l) =>
    g.withScope(`level_${l.feature.name}`, () => {
      const stride = nominalStride(l.feature);
      const offset = config.RPN.ANCHOR_OFFSET;
      // Detectron2's strides are the levels' nominal ones (P6: 64 even when the padded size is not
      // a multiple of 64); torchvision divides the padded size by the grid size.
      const anchors = legacy
        ? gridAnchors(g, l.feature.blob, ctx.batch.images, { base: detectronBaseAnchors(l.spec, stride), fixedStride: stride, offset })
        : config.RPN.ANCHOR_GENERATOR === 'detectron2'
          ? gridAnchors(g, l.feature.blob, ctx.batch.images, { base: detectron2BaseAnchors(l.spec), fixedStride: stride, offset })
          : gridAnchors(g, l.feature.blob, ctx.batch.images, { base: torchvisionBaseAnchors(l.spec), offset });
      allAnchors.push(anchors);
      return { logits: l.logits, deltas: l.deltas, anchors };
    }),
  );
  ctx.tap('rpn.anchors', allAnchors.length === 1 ? allAnchors[0]! : ops.concat(g, allAnchors, 0, 'anchors'), 'float32', 'replicated-per-image', [DIMS.anchors, 4]);

  const t = config.TEST;
  return filterProposals(g, levels, ctx.batch.imageSizes, {
    preNmsTopN: t.RPN_PRE_NMS_TOP_N,
    postNmsTopN: t.RPN_POST_NMS_TOP_N,
    nmsThresh: t.RPN_NMS_THRESH,
    minSize: t.RPN_MIN_SIZE,
    minSizeRule: t.RPN_MIN_SIZE_RULE,
    scoreThresh: t.RPN_SCORE_THRESH,
    weights: config.RPN.BBOX_REG_WEIGHTS,
    bboxXformClip: config.MODEL.BBOX_XFORM_CLIP,
    plusOne: legacy,
    coordinateTrickMaxBoxes: t.NMS_COORDINATE_TRICK_MAX_BOXES,
  });
}

/** The RPN head + proposal generation, single-level or FPN (slot rpn-head). */
export const genericRpnOutputs: RpnHead = {
  build: buildRpn,
  weightPrefixes: [RPN_WEIGHT_PREFIX],
  get training(): RpnHeadTraining {
    return rpnTraining;
  },
};

/** Registry entry of {@link genericRpnOutputs}. */
export const GENERIC_RPN_OUTPUTS: Implementation<RpnHead> = {
  name: 'rpn_heads.add_generic_rpn_outputs',
  aliases: ['RPNHead', 'FPN.add_fpn_rpn_outputs', 'rpn_heads.add_single_scale_rpn_outputs'],
  provider: '@rcnn/rpn',
  description: 'RPN head (HEAD_CONV_DEPTH x 3x3 conv + 1x1 objectness/deltas, shared across FPN levels), anchors and in-graph proposal generation',
  value: genericRpnOutputs,
};

/** Names of the graph inputs the RPN's training part declares (fed by {@link rpnTraining}'s `targets`). */
export const RPN_TRAINING_INPUTS = {
  /** [S] int64: flat index n * A + a of every sampled anchor of the batch (positives of all images, then negatives). */
  sampleIndex: 'train.rpn.sample_index',
  /** [S] float32: 1 for a sampled positive, 0 for a negative. */
  sampleLabels: 'train.rpn.sample_labels',
  /** [Sp] int64: flat index of every sampled positive. */
  positiveIndex: 'train.rpn.positive_index',
  /** [Sp,4] float32: (dx, dy, dw, dh) of each sampled positive vs its GT (RPN.BBOX_REG_WEIGHTS). */
  regressionTargets: 'train.rpn.regression_targets',
} as const;

/**
 * The head's objectness logit [S] and deltas [S, 4] of the sampled anchors only
 * (TRAIN.RPN_SPARSE_HEAD): the loss reads the dense outputs at the sampled anchors and nowhere
 * else, so the one 3x3 conv is evaluated at the sampled anchors' positions only — an im2col of
 * those positions (GatherElements of each kernel tap, zero outside the map as the conv's zero
 * padding) times the conv weight as a [O, C·k·k] matrix — and the 1x1 predictors on those rows.
 * The same sums as the dense head at those positions; the forward and backward cost ~S·9·C·O
 * multiply-adds instead of h·w·9·C·O per level (at 800x1066, P2 alone: 32 G), and the gradient
 * into the features is a scatter of S·9 patches. Every sample is evaluated on every level (its
 * index clamped into the level) and kept by a 0/1 mask of its level, so the host contract
 * (`train.rpn.sample_index`: flat n·A + anchor over the levels in (level, y, x, a) order) is the
 * dense head's.
 */
function sparseSampledOutputs(ctx: TrainingBuildContext, features: FeatureMaps, sampleIndex: Blob): { readonly logits: Blob; readonly deltas: Blob } {
  const { graph: g, config } = ctx;
  const channels = sharedChannels(features, 'RPN head', 'RPN.HEAD');
  const specs = levelAnchorSpecs(config, features);
  const a = specs[0]!.sizes.length * specs[0]!.aspectRatios.length;
  const w = headLayers(ctx, channels, a);
  const conv = w.convs[0]!;
  const o = conv2dOptions(conv.spec);
  const k = o.kernel as number;
  const pad = o.pad as number;
  const dil = o.dilation as number;
  const taps = k * k;
  const i64 = (v: number) => g.constInt64([v]);
  // Kernel tap offsets (dy, dx) in input pixels, in the weight's (ky, kx) order: [T, 1].
  const offY: number[] = [];
  const offX: number[] = [];
  for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
    offY.push(ky * dil - pad);
    offX.push(kx * dil - pad);
  }
  const tapDy = g.constInt64(offY, [taps, 1]);
  const tapDx = g.constInt64(offX, [taps, 1]);
  // Weights as matrices: [O, C·T] (row c·T + t), [A, O], [4A, O]; biases as columns.
  const weight = ops.reshape(g, conv.weight, [channels, channels * taps], 'conv_w2');
  const column = (b: Blob, name: string) => ops.reshape(g, b, [-1, 1], name);
  const clsW = ops.reshape(g, w.cls.weight, [a, channels], 'cls_w2');
  const bboxW = ops.reshape(g, w.bbox.weight, [4 * a, channels], 'bbox_w2');

  const sizes = features.map((f) => g.withScope(`size_${f.name}`, () => {
    const h = ops.dim(g, f.blob, 2, 'h');
    const wd = ops.dim(g, f.blob, 3, 'w');
    const hw = ops.mul(g, h, wd, 'hw');
    return { h, w: wd, hw, anchors: ops.mul(g, hw, i64(a), 'anchors') };
  }));
  const total = sizes.slice(1).reduce((acc, s, i) => ops.add(g, acc, s.anchors, `total${i}`), sizes[0]!.anchors);
  const image = ops.div(g, sampleIndex, total, 'image'); // [S]
  const anchor = g.op('Mod', [sampleIndex, total], {}, 'anchor'); // [S], over the levels
  const n = ops.dim(g, features[0]!.blob, 0, 'n');
  const imageRange = ops.reshape(g, g.op('Range', [g.constInt64(0, []), ops.reshape(g, n, [], 'n_scalar'), g.constInt64(1, [])], {}, 'images'), [-1, 1], 'images_col'); // [N,1]
  const ofImage = ops.cast(g, ops.equal(g, imageRange, ops.reshape(g, image, [1, -1], 'image_row'), 'of_image'), 'float32', 'of_image_f'); // [N,S]
  const zero = g.constInt64(0, []);
  // Shape of the gathered patches, [N, C, T·S], the same on every level.
  const patchDims = g.op('Concat', [n, i64(channels), ops.mul(g, i64(taps), ops.dim(g, sampleIndex, 0, 's'), 'ts')], { axis: 0 }, 'patch_dims');

  let logits: Blob | undefined;
  let deltas: Blob | undefined;
  let offset: Blob = i64(0);
  features.forEach((f, li) => g.withScope(`level_${f.name}`, () => {
    const s = sizes[li]!;
    const local = ops.sub(g, anchor, offset, 'local');
    offset = ops.add(g, offset, s.anchors, 'next_offset');
    const inLevel = ops.and(g, ops.greaterOrEqual(g, local, zero, 'ge0'), ops.less(g, local, s.anchors, 'lt_end'), 'in_level');
    const clamped = ops.where(g, inLevel, local, zero, 'clamped');
    // torchvision's flattening: (y·w + x)·A + a.
    const position = ops.div(g, clamped, i64(a), 'position');
    const anchorOf = g.op('Mod', [clamped, i64(a)], {}, 'anchor_of');
    const y = ops.reshape(g, ops.div(g, position, s.w, 'y'), [1, -1], 'y_row'); // [1,S]
    const x = ops.reshape(g, g.op('Mod', [position, s.w], {}, 'x'), [1, -1], 'x_row');
    const yy = ops.add(g, y, tapDy, 'tap_y'); // [T,S]
    const xx = ops.add(g, x, tapDx, 'tap_x');
    const inside = ops.and(
      g,
      ops.and(g, ops.greaterOrEqual(g, yy, zero, 'y_ge0'), ops.less(g, yy, s.h, 'y_lt_h'), 'y_in'),
      ops.and(g, ops.greaterOrEqual(g, xx, zero, 'x_ge0'), ops.less(g, xx, s.w, 'x_lt_w'), 'x_in'),
      'inside',
    );
    const flat = ops.where(g, inside, ops.add(g, ops.mul(g, yy, s.w, 'row'), xx, 'flat_raw'), zero, 'flat'); // [T,S]
    // [N, C, h·w] gathered at every (tap, sample): [N, C, T·S]; then each sample's own image, zero outside the map.
    const plane = ops.reshape(g, f.blob, [0, 0, -1], 'plane');
    const index = g.op('Expand', [ops.reshape(g, flat, [1, 1, -1], 'flat_row'), patchDims], {}, 'index');
    const gathered = g.op('GatherElements', [plane, index], { axis: 2 }, 'gathered');
    const keep = ops.reshape(g, ops.mul(g, ops.reshape(g, ofImage, [0, 1, -1], 'of_image_3'), ops.cast(g, inside, 'float32', 'inside_f'), 'keep_ts'), [0, 1, -1], 'keep'); // [N,1,T·S]
    const patches = ops.reshape(
      g,
      g.op('ReduceSum', [ops.mul(g, gathered, keep, 'kept'), g.constInt64([0])], { keepdims: 0 }, 'patches_cts'),
      [channels * taps, -1],
      'patches',
    ); // [C·T, S]
    const hidden = ops.relu(g, ops.add(g, g.op('MatMul', [weight, patches], {}, 'conv0'), column(conv.bias, 'conv_b'), 'conv0_b'), 'relu0'); // [O,S]
    const cls = ops.add(g, g.op('MatMul', [clsW, hidden], {}, 'cls_mm'), column(w.cls.bias, 'cls_b'), 'cls_logits'); // [A,S]
    const bbox = ops.reshape(g, ops.add(g, g.op('MatMul', [bboxW, hidden], {}, 'bbox_mm'), column(w.bbox.bias, 'bbox_b'), 'bbox_pred'), [a, 4, -1], 'bbox_a4s'); // [A,4,S]
    const anchorRow = ops.reshape(g, anchorOf, [1, -1], 'anchor_row');
    const logit = ops.reshape(g, g.op('GatherElements', [cls, anchorRow], { axis: 0 }, 'logit_own'), [-1], 'logit'); // [S]
    const anchor4 = g.op('Expand', [ops.reshape(g, anchorOf, [1, 1, -1], 'anchor_3'), g.constInt64([1, 4, 1])], {}, 'anchor_4');
    const delta = ops.reshape(g, g.op('GatherElements', [bbox, anchor4], { axis: 0 }, 'delta_own'), [4, -1], 'delta'); // [4,S]
    const member = ops.cast(g, inLevel, 'float32', 'member');
    const l = ops.mul(g, logit, member, 'logit_kept');
    const d = ops.mul(g, delta, member, 'delta_kept');
    logits = logits ? ops.add(g, logits, l, 'logits') : l;
    deltas = deltas ? ops.add(g, deltas, d, 'deltas') : d;
  }));
  return { logits: logits!, deltas: ops.transpose(g, deltas!, [1, 0], 'deltas_s4') };
}

/**
 * The RPN losses in the graph (torchvision `RegionProposalNetwork.compute_loss`): objectness =
 * BCE-with-logits over every sampled anchor of the batch / their number; rpn_box_reg = smooth-L1
 * (TRAIN.RPN_SMOOTH_L1_BETA, sum) over the sampled positives / the number of sampled anchors.
 * With TRAIN.RPN_SPARSE_HEAD (default) and one head conv the head is evaluated at the sampled
 * anchors only ({@link sparseSampledOutputs}); else densely, as torchvision.
 */
function buildRpnLosses(ctx: TrainingBuildContext, features: FeatureMaps): LossTerm[] {
  const { graph: g, config } = ctx;
  const sparse = config.TRAIN.RPN_SPARSE_HEAD && config.RPN.HEAD_CONV_DEPTH === 1;
  const head = sparse ? undefined : rpnHeadOutputs(ctx, features);
  return g.withScope('losses', () => {
    const sampleIndex = ctx.input(RPN_TRAINING_INPUTS.sampleIndex, 'int64', ['S']);
    const sampleLabels = ctx.input(RPN_TRAINING_INPUTS.sampleLabels, 'float32', ['S']);
    const positiveIndex = ctx.input(RPN_TRAINING_INPUTS.positiveIndex, 'int64', ['Sp']);
    const targets = ctx.input(RPN_TRAINING_INPUTS.regressionTargets, 'float32', ['Sp', 4]);
    const sampled = losses.elementCount(g, sampleIndex, 'sampled');
    let sampledLogits: Blob;
    let positiveDeltas: Blob;
    if (head) {
      const cat = (parts: Blob[], name: string): Blob => (parts.length === 1 ? parts[0]! : ops.concat(g, parts, 1, name));
      const logits = ops.reshape(g, cat(head.levels.map((l) => l.logits), 'logits_all'), [-1], 'logits_flat'); // [N*A]
      const deltas = ops.reshape(g, cat(head.levels.map((l) => l.deltas), 'deltas_all'), [-1, 4], 'deltas_flat'); // [N*A,4]
      sampledLogits = ops.gather(g, logits, sampleIndex, 0, 'sampled_logits');
      positiveDeltas = ops.gather(g, deltas, positiveIndex, 0, 'positive_deltas');
    } else {
      // The sample lists the positives first (rpnTargets), so the positives' deltas are its first Sp rows.
      const out = g.withScope('sparse_head', () => sparseSampledOutputs(ctx, features, sampleIndex));
      sampledLogits = out.logits;
      positiveDeltas = ops.slice(g, out.deltas, [0], ops.dim(g, positiveIndex, 0, 'positives'), [0], undefined, 'positive_deltas');
    }
    const objectness = losses.safeMean(g, losses.bceWithLogitsSum(g, sampledLogits, sampleLabels), sampled, 'objectness');
    const reg = losses.smoothL1Sum(g, positiveDeltas, targets, config.TRAIN.RPN_SMOOTH_L1_BETA);
    const boxReg = losses.safeMean(g, reg, sampled, 'rpn_box_reg');
    return [
      { name: 'objectness', blob: objectness },
      { name: 'rpn_box_reg', blob: boxReg },
    ];
  });
}

/**
 * The RPN's host targets (torchvision `assign_targets_to_anchors` + `fg_bg_sampler` +
 * `box_coder.encode`): per image anchors matched to the GT (TRAIN.RPN_POSITIVE_OVERLAP /
 * RPN_NEGATIVE_OVERLAP, low-quality matches per TRAIN.RPN_ALLOW_LOW_QUALITY_MATCHES), sampled
 * (TRAIN.RPN_BATCH_SIZE_PER_IM, RPN_FG_FRACTION) or injected, positives encoded against their GT.
 * MODEL.LEGACY_PLUS_ONE: Detectron's +1 widths in the IoU and the encoding (`bbox_overlaps`,
 * `bbox_transform_inv`).
 */
function rpnTargets(input: RpnTargetInput, config: RcnnConfig): HostTargets {
  const t = config.TRAIN;
  // Detectron's +1 widths in the IoU and the encoding (its anchors come with the inference pass).
  const plusOne = config.MODEL.LEGACY_PLUS_ONE;
  const anchors = input.anchors;
  const a = anchors.length / 4;
  const intermediates: Record<string, HostTensor> = {};
  const pos: number[] = [];
  const neg: number[] = [];
  const regression: number[] = [];
  input.targets.forEach((gt, i) => {
    const g = gt.labels.length;
    const matched = matchBoxes(boxIouFloat32(gt.boxes, anchors, plusOne), g, a, {
      high: t.RPN_POSITIVE_OVERLAP,
      low: t.RPN_NEGATIVE_OVERLAP,
      allowLowQualityMatches: t.RPN_ALLOW_LOW_QUALITY_MATCHES,
    });
    const kinds = Int8Array.from(matched, (m) => (m >= 0 ? 1 : m === BELOW_LOW_THRESHOLD ? 0 : -1));
    const injected = input.sampling.injected?.[i];
    const sample: BalancedSample = injected
      ? checkInjectedSample(injected, kinds, `RPN sample of image ${i}`)
      : sampleBalanced(kinds, { batchSizePerImage: t.RPN_BATCH_SIZE_PER_IM, positiveFraction: t.RPN_FG_FRACTION }, input.sampling.rand);
    const targets = new Float32Array(4 * sample.positive.length);
    sample.positive.forEach((anchor, j) => encodeBox(gt.boxes, 4 * matched[anchor]!, anchors, 4 * anchor, config.RPN.BBOX_REG_WEIGHTS, targets, 4 * j, plusOne));
    for (const p of sample.positive) pos.push(i * a + p);
    for (const n of sample.negative) neg.push(i * a + n);
    regression.push(...targets);
    intermediates[`train.rpn.anchors.${i}`] = hostTensor('float32', [a, 4], anchors);
    intermediates[`train.rpn.matched_gt.${i}`] = int64Tensor(matched);
    intermediates[`train.rpn.sampled_pos.${i}`] = int64Tensor(sample.positive);
    intermediates[`train.rpn.sampled_neg.${i}`] = int64Tensor(sample.negative);
    intermediates[`train.rpn.regression_targets.${i}`] = hostTensor('float32', [sample.positive.length, 4], targets);
  });
  const feeds: Record<string, HostTensor> = {
    [RPN_TRAINING_INPUTS.sampleIndex]: int64Tensor([...pos, ...neg]),
    [RPN_TRAINING_INPUTS.sampleLabels]: hostTensor('float32', [pos.length + neg.length], Float32Array.from([...pos.map(() => 1), ...neg.map(() => 0)])),
    [RPN_TRAINING_INPUTS.positiveIndex]: int64Tensor(pos),
    [RPN_TRAINING_INPUTS.regressionTargets]: hostTensor('float32', [pos.length, 4], Float32Array.from(regression)),
  };
  return { feeds, intermediates };
}

/**
 * {@link rpnTargets} in the graph (TRAIN.PROPOSALS_IN_GRAPH): the same matching, sampling (by the
 * host's keys) and encoding over the padded batch, giving the same four inputs in the same layout
 * (positives of every image, then negatives; flat index n·A + anchor).
 */
function buildRpnTargets(ctx: TrainingBuildContext, input: RpnGraphTargetInput): Readonly<Record<string, Blob>> {
  const { graph: g, config } = ctx;
  const t = config.TRAIN;
  const plusOne = config.MODEL.LEGACY_PLUS_ONE;
  return g.withScope('rpn_targets', () => {
    const anchors = input.anchors; // [A,4]
    const iou = boxIouGraph(g, input.gt.boxes, ops.unsqueeze(g, anchors, [0], 'anchors_1a4'), plusOne); // [N,G,A]
    const matched = matchBoxesGraph(g, iou, input.gt.valid, { high: t.RPN_POSITIVE_OVERLAP, low: t.RPN_NEGATIVE_OVERLAP, allowLowQualityMatches: t.RPN_ALLOW_LOW_QUALITY_MATCHES });
    const zero = g.constInt64(0, []);
    const kinds = ops.where(
      g,
      ops.greaterOrEqual(g, matched, zero, 'is_matched'),
      g.constInt64(1, []),
      ops.where(g, ops.equal(g, matched, g.constInt64(BELOW_LOW_THRESHOLD, []), 'is_bg'), zero, g.constInt64(-1, []), 'bg_or_ignored'),
      'kinds',
    );
    const a = ops.dim(g, anchors, 0, 'anchor_count');
    const keys = ops.slice(g, input.keys, g.constInt64([0]), a, [1], undefined, 'keys');
    const sample = sampleBalancedGraph(g, kinds, keys, { batchSizePerImage: t.RPN_BATCH_SIZE_PER_IM, positiveFraction: t.RPN_FG_FRACTION });
    const flat = (mask: Blob, tag: string): { readonly index: Blob; readonly pairs: Blob } => {
      const pairs = ops.transpose(g, ops.nonZero(g, mask, `${tag}_at`), [1, 0], `${tag}_pairs`); // [S,2] (image, anchor)
      const [image, anchor] = ops.split(g, pairs, [1, 1], 1, `${tag}_split`);
      const index = ops.squeeze(g, ops.add(g, ops.mul(g, image, a, `${tag}_base`), anchor, `${tag}_flat2`), [1], `${tag}_index`);
      return { index, pairs };
    };
    const pos = flat(sample.positive, 'pos');
    const neg = flat(sample.negative, 'neg');
    const posAnchor = ops.gather(g, pos.pairs, g.constInt64(1, []), 1, 'pos_anchor');
    const posGt = ops.concat(g, [ops.slice(g, pos.pairs, [0], [1], [1], undefined, 'pos_image'), ops.unsqueeze(g, ops.gatherND(g, matched, pos.pairs, 0, 'pos_matched'), [1], 'pos_matched_col')], 1, 'pos_gt_pairs');
    const regression = encodeBoxesGraph(g, ops.gatherND(g, input.gt.boxes, posGt, 0, 'pos_gt_boxes'), ops.gather(g, anchors, posAnchor, 0, 'pos_anchors'), config.RPN.BBOX_REG_WEIGHTS, plusOne);
    const ones = ops.constantOfShape(g, ops.shape(g, pos.index, undefined, undefined, 'pos_shape'), 1, 'float32', 'pos_labels');
    const zeros = ops.constantOfShape(g, ops.shape(g, neg.index, undefined, undefined, 'neg_shape'), 0, 'float32', 'neg_labels');
    return {
      [RPN_TRAINING_INPUTS.sampleIndex]: ops.concat(g, [pos.index, neg.index], 0, 'sample_index'),
      [RPN_TRAINING_INPUTS.sampleLabels]: ops.concat(g, [ones, zeros], 0, 'sample_labels'),
      [RPN_TRAINING_INPUTS.positiveIndex]: pos.index,
      [RPN_TRAINING_INPUTS.regressionTargets]: regression,
    };
  });
}

/** Training part of the generic RPN (slot rpn-head). */
export const rpnTraining: RpnHeadTraining = { targets: rpnTargets, buildTargets: buildRpnTargets, buildLosses: buildRpnLosses };
