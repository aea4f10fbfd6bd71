/** Template of an RPN head (slot rpn-head): a shared conv head, one anchor per location, in-graph proposals. */
import type { TemplateVars } from '../vars.js';
import { type SlotTemplate, ids } from './slot-template.js';

function implementation(v: TemplateVars): string {
  const { C, p } = ids(v);
  return `/**
 * ${v.registryName}: an RPN for rcnn-node (slot rpn-head, \`RPN.HEAD\`). On every level, a shared
 * 3x3 conv + ReLU and 1x1 objectness / box-delta convs; one square anchor per location of side
 * ${C}.ANCHOR_SCALE x stride, centred on the location. Proposals are made in the graph with
 * core's box ops: the best TEST.RPN_PRE_NMS_TOP_N logits of each image over all levels, decoded
 * (RPN.BBOX_REG_WEIGHTS, MODEL.BBOX_XFORM_CLIP), clipped to the image, small boxes
 * (TEST.RPN_MIN_SIZE) and low scores (TEST.RPN_SCORE_THRESH) dropped, NMS (TEST.RPN_NMS_THRESH),
 * then the best TEST.RPN_POST_NMS_TOP_N per image in core's padded Proposals layout.
 *
 * Training (train mode): anchors matched to the GT with core's Matcher (TRAIN.RPN_POSITIVE_OVERLAP /
 * RPN_NEGATIVE_OVERLAP, low-quality matches), a balanced sample (TRAIN.RPN_BATCH_SIZE_PER_IM,
 * RPN_FG_FRACTION; drawn or injected), BCE-with-logits objectness over the sampled anchors and
 * smooth-L1 (TRAIN.RPN_SMOOTH_L1_BETA) of the positives' deltas, both over the sampled count.
 */
import {
  BELOW_LOW_THRESHOLD,
  type Blob,
  type BuildContext,
  type Conv2dSpec,
  DIMS,
  type FeatureMap,
  type FeatureMaps,
  type GraphBuilder,
  type HostTargets,
  type HostTensor,
  type Implementation,
  type LossTerm,
  type Proposals,
  type RcnnConfig,
  type RpnHead,
  type RpnHeadTraining,
  type RpnTargetInput,
  type TrainingBuildContext,
  batchedNmsKeep,
  boxIouFloat32,
  checkInjectedSample,
  clipBoxes,
  conv2dOptions,
  conv2dParameters,
  decodeBoxes,
  encodeBox,
  hostTensor,
  imageBounds,
  int64Tensor,
  keepLargeBoxes,
  levelSizeDims,
  losses,
  matchBoxes,
  ops,
  parameter,
  sampleBalanced,
  sharedChannels,
} from '@rcnn/core';
import { ${p}Settings } from './config.js';

/** Registry name (slot rpn-head). */
export const ${C}_NAME = '${v.registryName}';

/** State-dict prefixes of the head's weights (torchvision's place for an RPN head). */
export const ${C}_WEIGHT_PREFIXES = ['rpn.head.'] as const;

/** The layers of the head (shared by every level). */
export interface ${v.className}Layers {
  readonly conv: Conv2dSpec;
  readonly objectness: Conv2dSpec;
  readonly deltas: Conv2dSpec;
}

// torchvision's RPNHead init: N(0, 0.01^2) weights, zero biases.
const RPN_INIT = { kind: 'normal', std: 0.01 } as const;

/** The layers the head is made of for feature maps of \`channels\` channels. */
export function ${p}Layers(_config: RcnnConfig, channels: number): ${v.className}Layers {
  return {
    conv: { key: 'rpn.head.conv', inChannels: channels, outChannels: channels, kernel: 3, weightInit: RPN_INIT },
    objectness: { key: 'rpn.head.cls_logits', inChannels: channels, outChannels: 1, kernel: 1, weightInit: RPN_INIT },
    deltas: { key: 'rpn.head.bbox_pred', inChannels: channels, outChannels: 4, kernel: 1, weightInit: RPN_INIT },
  };
}

/** The weight keys the head reads. */
export function ${p}WeightKeys(config: RcnnConfig, channels: number): string[] {
  const l = ${p}Layers(config, channels);
  return [l.conv, l.objectness, l.deltas].flatMap(conv2dParameters).map((t) => t.key);
}

/** A conv whose parameters are read once and applied on every level. */
function sharedConv(ctx: BuildContext, spec: Conv2dSpec): (x: Blob, name: string) => Blob {
  const [weight, bias] = ctx.graph.withScope(spec.key.slice(spec.key.lastIndexOf('.') + 1), () => conv2dParameters(spec).map((t) => parameter(ctx, t)));
  return (x, name) => ops.conv(ctx.graph, x, weight!, bias ?? null, { ...conv2dOptions(spec), name });
}

/** One square anchor of side \`side\` centred on every location of \`f\`: [h*w, 4] (x1, y1, x2, y2), row-major. */
function levelAnchors(g: GraphBuilder, f: FeatureMap, side: number): Blob {
  const stride = 1 / f.spatialScale;
  const hw = ops.shape(g, f.blob, 2, 4, 'hw');
  const [h, w] = ops.split(g, hw, [1, 1], 0, 'h_w');
  const centres = (n: Blob, name: string): Blob => {
    const index = ops.range(g, g.constInt64(0), ops.squeeze(g, n, [0], \`\${name}_n\`), g.constInt64(1), \`\${name}_range\`);
    return ops.add(g, ops.mul(g, ops.cast(g, index, 'float32', \`\${name}_f\`), g.constFloat32(stride)), g.constFloat32(stride / 2), \`\${name}_centre\`);
  };
  const cy = ops.expand(g, ops.unsqueeze(g, centres(h, 'y'), [1], 'cy_col'), hw, 'cy');
  const cx = ops.expand(g, ops.unsqueeze(g, centres(w, 'x'), [0], 'cx_row'), hw, 'cx');
  const half = g.constFloat32(side / 2);
  const column = (x: Blob, name: string): Blob => ops.reshape(g, x, [-1, 1], name);
  return ops.concat(
    g,
    [column(ops.sub(g, cx, half), 'x1'), column(ops.sub(g, cy, half), 'y1'), column(ops.add(g, cx, half), 'x2'), column(ops.add(g, cy, half), 'y2')],
    1,
    'anchors',
  );
}

/** The head's outputs on every level, each flattened in (y, x) order, the order of the anchors. */
interface HeadOutputs {
  /** Per level [N, h*w] objectness logits. */
  readonly logits: readonly Blob[];
  /** Per level [N, h*w, 4] box deltas. */
  readonly deltas: readonly Blob[];
}

/** The shared head on every level (inference and training read the same outputs). */
function headOutputs(ctx: BuildContext, features: FeatureMaps): HeadOutputs {
  const { graph: g, config } = ctx;
  // The head is shared across levels, which needs one channel count.
  const channels = sharedChannels(features, '${v.registryName}', 'RPN.HEAD');
  const head = g.withScope('head', () => {
    const layers = ${p}Layers(config, channels);
    return { conv: sharedConv(ctx, layers.conv), objectness: sharedConv(ctx, layers.objectness), deltas: sharedConv(ctx, layers.deltas) };
  });
  const logits: Blob[] = [];
  const deltas: Blob[] = [];
  for (const f of features) {
    g.withScope(\`level_\${f.name}\`, () => {
      const x = ops.relu(g, head.conv(f.blob, 'conv'));
      const objectness = head.objectness(x, 'objectness'); // [N,1,h,w]
      const boxDeltas = head.deltas(x, 'deltas'); // [N,4,h,w]
      ctx.tap(\`rpn.objectness.\${f.name}\`, objectness, 'float32', 'whole', [DIMS.images, 1, ...levelSizeDims(f.name)]);
      ctx.tap(\`rpn.deltas.\${f.name}\`, boxDeltas, 'float32', 'whole', [DIMS.images, 4, ...levelSizeDims(f.name)]);
      logits.push(ops.reshape(g, objectness, [0, -1], 'logits')); // [N,h*w]
      deltas.push(ops.reshape(g, ops.transpose(g, boxDeltas, [0, 2, 3, 1], 'deltas_nhwc'), [0, -1, 4], 'deltas_flat')); // [N,h*w,4]
    });
  }
  return { logits, deltas };
}

function build(ctx: BuildContext, features: FeatureMaps): Proposals {
  const { graph: g, config } = ctx;
  const t = config.TEST;
  const settings = ${p}Settings(config);
  const { logits, deltas } = headOutputs(ctx, features);
  const anchors = features.map((f) => g.withScope(\`anchors_\${f.name}\`, () => levelAnchors(g, f, settings.ANCHOR_SCALE / f.spatialScale)));
  const join = (parts: readonly Blob[], axis: number, name: string): Blob => (parts.length === 1 ? parts[0]! : ops.concat(g, parts, axis, name));
  const allAnchors = join(anchors, 0, 'anchors'); // [M,4]
  ctx.tap('rpn.anchors', allAnchors, 'float32', 'replicated-per-image', [DIMS.anchors, 4]);

  return g.withScope('proposals', () => {
    const allLogits = join(logits, 1, 'logits'); // [N,M]
    const k = ops.min(g, [g.constInt64([t.RPN_PRE_NMS_TOP_N]), ops.dim(g, allLogits, 1, 'm')], 'pre_nms_k');
    const [topLogits, index] = ops.topK(g, allLogits, k, 1, 'pre_nms');
    const topDeltas = ops.gatherND(g, join(deltas, 1, 'deltas'), ops.unsqueeze(g, index, [2], 'index3'), 1, 'top_deltas'); // [N,k,4]
    const topAnchors = ops.gather(g, allAnchors, index, 0, 'top_anchors'); // [N,k,4]
    const decoded = decodeBoxes(g, topDeltas, topAnchors, { weights: config.RPN.BBOX_REG_WEIGHTS, clip: config.MODEL.BBOX_XFORM_CLIP });
    const boxes = clipBoxes(g, decoded, imageBounds(g, ctx.batch.imageSizes));
    const scores = ops.sigmoid(g, topLogits, 'scores');
    const valid = ops.and(g, keepLargeBoxes(g, boxes, t.RPN_MIN_SIZE), ops.greaterOrEqual(g, scores, g.constFloat32(t.RPN_SCORE_THRESH), 'above'), 'valid');
    // One NMS group per image: [N,1,k,…] in core's batched layout; -inf where suppressed.
    const kept = batchedNmsKeep(g, {
      boxes: ops.unsqueeze(g, boxes, [1], 'nms_boxes'),
      scores: ops.unsqueeze(g, scores, [1], 'nms_scores'),
      valid: ops.unsqueeze(g, valid, [1], 'nms_valid'),
      iouThreshold: t.RPN_NMS_THRESH,
      coordinateTrickMaxBoxes: t.NMS_COORDINATE_TRICK_MAX_BOXES,
      firstGroupId: 0,
    });
    const slots = ops.min(g, [g.constInt64([t.RPN_POST_NMS_TOP_N]), k], 'post_nms_k');
    const [topScores, topIndex] = ops.topK(g, kept, slots, 1, 'post_nms'); // sorted; suppressed slots are -inf and last
    const slotValid = ops.greater(g, topScores, g.constFloat32(-Infinity), 'slot_valid');
    const picked = ops.gatherND(g, boxes, ops.unsqueeze(g, topIndex, [2], 'top_index3'), 1, 'picked');
    return {
      boxes: ops.where(g, ops.unsqueeze(g, slotValid, [2], 'slot_valid3'), picked, g.constFloat32(0), 'boxes'),
      scores: topScores,
      valid: slotValid,
      counts: ops.reduceSum(g, ops.cast(g, slotValid, 'int64', 'valid_i64'), [1], false, 'counts'),
    };
  });
}

/** Graph inputs of the training part (fed by its host \`targets\`). */
export const ${C}_TRAINING_INPUTS = {
  /** [S] int64: flat index n * A + a of every sampled anchor of the batch (positives of all images, then negatives). */
  sampleIndex: 'train.${v.propertyName}.sample_index',
  /** [S] float32: 1 for a sampled positive, 0 for a negative. */
  sampleLabels: 'train.${v.propertyName}.sample_labels',
  /** [Sp] int64: flat index of every sampled positive. */
  positiveIndex: 'train.${v.propertyName}.positive_index',
  /** [Sp, 4] float32: (dx, dy, dw, dh) of each sampled positive vs its GT (RPN.BBOX_REG_WEIGHTS). */
  regressionTargets: 'train.${v.propertyName}.regression_targets',
} as const;

/**
 * The RPN losses (torchvision compute_loss): objectness = BCE-with-logits over every sampled anchor
 * of the batch / their number; rpn_box_reg = smooth-L1 (TRAIN.RPN_SMOOTH_L1_BETA, sum) over the
 * sampled positives / the number of sampled anchors.
 */
function buildLosses(ctx: TrainingBuildContext, features: FeatureMaps): LossTerm[] {
  const { graph: g, config } = ctx;
  const head = headOutputs(ctx, features);
  return g.withScope('losses', () => {
    const join = (parts: readonly Blob[], name: string): Blob => (parts.length === 1 ? parts[0]! : ops.concat(g, parts, 1, name));
    // Flat index n * A + a, A = anchors of all levels: the order of \`RpnTargetInput.anchors\`.
    const logits = ops.reshape(g, join(head.logits, 'logits_all'), [-1], 'logits_flat'); // [N*A]
    const deltas = ops.reshape(g, join(head.deltas, 'deltas_all'), [-1, 4], 'deltas_flat'); // [N*A,4]
    const sampleIndex = ctx.input(${C}_TRAINING_INPUTS.sampleIndex, 'int64', ['S']);
    const sampleLabels = ctx.input(${C}_TRAINING_INPUTS.sampleLabels, 'float32', ['S']);
    const positiveIndex = ctx.input(${C}_TRAINING_INPUTS.positiveIndex, 'int64', ['Sp']);
    const targets = ctx.input(${C}_TRAINING_INPUTS.regressionTargets, 'float32', ['Sp', 4]);
    const sampled = losses.elementCount(g, sampleIndex, 'sampled');
    const objectness = losses.safeMean(g, losses.bceWithLogitsSum(g, ops.gather(g, logits, sampleIndex, 0, 'sampled_logits'), sampleLabels), sampled, 'objectness');
    const reg = losses.smoothL1Sum(g, ops.gather(g, deltas, positiveIndex, 0, 'positive_deltas'), targets, config.TRAIN.RPN_SMOOTH_L1_BETA);
    return [
      { name: 'objectness', blob: objectness },
      { name: 'rpn_box_reg', blob: losses.safeMean(g, reg, sampled, 'rpn_box_reg') },
    ];
  });
}

/**
 * Host targets (torchvision assign_targets_to_anchors + fg_bg_sampler + box_coder.encode, with
 * core's helpers): per image the anchors matched to the GT, a balanced sample (drawn or injected),
 * the positives encoded against their GT.
 */
function targets(input: RpnTargetInput, config: RcnnConfig): HostTargets {
  const t = config.TRAIN;
  const anchors = input.anchors;
  const a = anchors.length / 4;
  const positives: number[] = [];
  const negatives: number[] = [];
  const regression: number[] = [];
  const intermediates: Record<string, HostTensor> = {};
  input.targets.forEach((gt, i) => {
    const matched = matchBoxes(boxIouFloat32(gt.boxes, anchors), gt.labels.length, a, {
      high: t.RPN_POSITIVE_OVERLAP,
      low: t.RPN_NEGATIVE_OVERLAP,
      allowLowQualityMatches: t.RPN_ALLOW_LOW_QUALITY_MATCHES,
    });
    // 1 positive, 0 negative, -1 ignored (between the thresholds).
    const kinds = Int8Array.from(matched, (m) => (m >= 0 ? 1 : m === BELOW_LOW_THRESHOLD ? 0 : -1));
    const injected = input.sampling.injected?.[i];
    const sample = injected
      ? checkInjectedSample(injected, kinds, \`RPN sample of image \${i}\`)
      : sampleBalanced(kinds, { batchSizePerImage: t.RPN_BATCH_SIZE_PER_IM, positiveFraction: t.RPN_FG_FRACTION }, input.sampling.rand);
    const encoded = new Float32Array(4 * sample.positive.length);
    sample.positive.forEach((anchor, j) => encodeBox(gt.boxes, 4 * matched[anchor]!, anchors, 4 * anchor, config.RPN.BBOX_REG_WEIGHTS, encoded, 4 * j));
    for (const p of sample.positive) positives.push(i * a + p);
    for (const n of sample.negative) negatives.push(i * a + n);
    regression.push(...encoded);
    intermediates[\`train.rpn.sampled_pos.\${i}\`] = int64Tensor(sample.positive);
    intermediates[\`train.rpn.sampled_neg.\${i}\`] = int64Tensor(sample.negative);
    intermediates[\`train.rpn.regression_targets.\${i}\`] = hostTensor('float32', [sample.positive.length, 4], encoded);
  });
  const labels = Float32Array.from([...positives.map(() => 1), ...negatives.map(() => 0)]);
  return {
    feeds: {
      [${C}_TRAINING_INPUTS.sampleIndex]: int64Tensor([...positives, ...negatives]),
      [${C}_TRAINING_INPUTS.sampleLabels]: hostTensor('float32', [labels.length], labels),
      [${C}_TRAINING_INPUTS.positiveIndex]: int64Tensor(positives),
      [${C}_TRAINING_INPUTS.regressionTargets]: hostTensor('float32', [positives.length, 4], Float32Array.from(regression)),
    },
    intermediates,
  };
}

/** Training part (train mode, docs/training.md of rcnn-node): targets on the host, the RPN losses in the graph. */
export const ${p}Training: RpnHeadTraining = { targets, buildLosses };

/** The RPN as an {@link RpnHead}. */
export const ${p}: RpnHead = {
  build,
  weightPrefixes: ${C}_WEIGHT_PREFIXES,
  training: ${p}Training,
};

/** Registry entry (slot rpn-head). */
export const ${C}_IMPLEMENTATION: Implementation<RpnHead> = {
  name: ${C}_NAME,
  provider: '${v.importPath}',
  description: 'shared 3x3 conv head, one anchor per location (${C}.ANCHOR_SCALE), in-graph proposals with core box ops',
  value: ${p},
};
`;
}

/** The rpn-head slot. */
export const RPN_HEAD_TEMPLATE: SlotTemplate = {
  slotConst: 'rpnHead',
  contract: 'RpnHead',
  configKey: 'RPN.HEAD',
  title: 'RPN head',
  summary: 'shared conv head, one anchor per location, in-graph proposal generation',
  prefixes: ['rpn.head.'],
  fields: [
    {
      key: 'ANCHOR_SCALE',
      source: "field.float(8, 'Side of the anchor at each location, in strides of its level (8 = 32 px at stride 4).', { min: 0 })",
      shown: '8',
      meaning: 'anchor side in strides of its level (> 0)',
    },
  ],
  checks: (v) => `  if (!(s.ANCHOR_SCALE > 0)) {
    throw new ConfigError(\`${v.constantName}.ANCHOR_SCALE must be > 0, got \${s.ANCHOR_SCALE}\`, { key: '${v.constantName}.ANCHOR_SCALE' });
  }`,
  coreKeys: [
    'RPN.HEAD',
    'RPN.BBOX_REG_WEIGHTS',
    'MODEL.BBOX_XFORM_CLIP',
    'TEST.RPN_PRE_NMS_TOP_N',
    'TEST.RPN_POST_NMS_TOP_N',
    'TEST.RPN_NMS_THRESH',
    'TEST.RPN_MIN_SIZE',
    'TEST.RPN_SCORE_THRESH',
    'TEST.NMS_COORDINATE_TRICK_MAX_BOXES',
    'TRAIN.RPN_POSITIVE_OVERLAP',
    'TRAIN.RPN_NEGATIVE_OVERLAP',
    'TRAIN.RPN_ALLOW_LOW_QUALITY_MATCHES',
    'TRAIN.RPN_BATCH_SIZE_PER_IM',
    'TRAIN.RPN_FG_FRACTION',
    'TRAIN.RPN_SMOOTH_L1_BETA',
  ],
  implementation,
  training: true,
  // One aspect ratio: the training kit's synthetic anchors then come one per location, as the head makes them.
  testLayer: (v) => `{ RPN: { HEAD: ${v.constantName}_NAME }, FPN: { DIM: 16, RPN_ASPECT_RATIOS: [1] }, TEST: { RPN_PRE_NMS_TOP_N: 300, RPN_POST_NMS_TOP_N: 50 } }`,
  keysArgs: "defaultFeatures(config, 'rpn')[0]!.channels",
  keysImports: ['defaultFeatures'],
  badValue: { layer: (v) => `{ ${v.constantName}: { ANCHOR_SCALE: 'large' } }`, key: (v) => `${v.constantName}.ANCHOR_SCALE`, what: 'a string for a number' },
  badCombination: { layer: (v) => `{ ${v.constantName}: { ANCHOR_SCALE: 0 } }`, key: (v) => `${v.constantName}.ANCHOR_SCALE`, what: 'a zero anchor' },
};
