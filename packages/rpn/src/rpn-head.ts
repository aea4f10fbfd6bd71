/**
 * `rpn_heads.add_generic_rpn_outputs`: the RPN of a Faster/Mask/Keypoint R-CNN at test time, on one
 * feature map (C4) or on every FPN level with one shared head (torchvision `RPNHead` +
 * `AnchorGenerator` + `RegionProposalNetwork.filter_proposals`; Detectron's
 * `add_single_scale_rpn_outputs` / `FPN.add_fpn_rpn_outputs`).
 */
import { type Blob, type BuildContext, ConfigError, DIMS, levelSizeDims, type FeatureMaps, type Implementation, type Proposals, type RpnHead, ops } from '@rcnn/core';
import { detectronBaseAnchors, gridAnchors, levelAnchorSpecs, nominalStride, torchvisionBaseAnchors } from './anchors.js';
import { type LevelCandidates, filterProposals } from './proposals.js';

/** State-dict prefix of the RPN head's weights (torchvision `rpn.head.*`). */
export const RPN_WEIGHT_PREFIX = 'rpn.';

/** Weights of the shared head, as initializer blobs. */
interface HeadWeights {
  readonly convs: readonly { readonly weight: Blob; readonly bias: Blob }[];
  readonly clsWeight: Blob;
  readonly clsBias: Blob;
  readonly bboxWeight: Blob;
  readonly bboxBias: Blob;
}

/** Reads the head's weights once (they are shared by every level), by torchvision name. */
function headWeights(ctx: BuildContext, channels: number, anchors: number): HeadWeights {
  const { graph: g, weights } = ctx;
  // torchvision RPNHead init: normal(std=0.01) weights, zero biases (used only for random weights).
  const std = { kind: 'normal', std: 0.01 } as const;
  const zero = { kind: 'constant', value: 0 } as const;
  const tensor = (key: string, dims: number[], init: typeof std | typeof zero, name: string): Blob =>
    g.initializer(name, { dtype: 'float32', dims, data: weights.take(key, dims, init) });
  return g.withScope('head', () => {
    const convs = Array.from({ length: ctx.config.RPN.HEAD_CONV_DEPTH }, (_, i) => ({
      weight: tensor(`rpn.head.conv.${i}.0.weight`, [channels, channels, 3, 3], std, `conv${i}_w`),
      bias: tensor(`rpn.head.conv.${i}.0.bias`, [channels], zero, `conv${i}_b`),
    }));
    return {
      convs,
      clsWeight: tensor('rpn.head.cls_logits.weight', [anchors, channels, 1, 1], std, 'cls_logits_w'),
      clsBias: tensor('rpn.head.cls_logits.bias', [anchors], zero, 'cls_logits_b'),
      bboxWeight: tensor('rpn.head.bbox_pred.weight', [4 * anchors, channels, 1, 1], std, 'bbox_pred_w'),
      bboxBias: tensor('rpn.head.bbox_pred.bias', [4 * anchors], zero, 'bbox_pred_b'),
    };
  });
}

/** Builds the RPN on `features` (see module doc). */
function buildRpn(ctx: BuildContext, features: FeatureMaps): Proposals {
  const { graph: g, config } = ctx;
  if (features.length === 0) throw new ConfigError('the RPN got no feature maps', { key: 'RPN.HEAD' });
  const channels = features[0].channels;
  const odd = features.find((f) => f.channels !== channels);
  if (odd) {
    throw new ConfigError(
      `the RPN head is shared across levels, but feature map "${odd.name}" has ${odd.channels} channels and "${features[0].name}" has ${channels}`,
      { key: 'FPN.DIM' },
    );
  }
  const specs = levelAnchorSpecs(config, features);
  const a = specs[0].sizes.length * specs[0].aspectRatios.length;
  const w = headWeights(ctx, channels, a);
  const legacy = config.MODEL.LEGACY_PLUS_ONE;

  const levels: LevelCandidates[] = [];
  const allAnchors: Blob[] = [];
  features.forEach((f, i) => {
    g.withScope(`level_${f.name}`, () => {
      let x = f.blob;
      w.convs.forEach((c, j) => {
        x = ops.relu(g, ops.conv(g, x, c.weight, c.bias, { kernel: 3, pad: 1, name: `conv${j}` }), `relu${j}`);
      });
      const objectness = ops.conv(g, x, w.clsWeight, w.clsBias, { kernel: 1, name: 'cls_logits' }); // [N,A,h,w]
      const deltas = ops.conv(g, x, w.bboxWeight, w.bboxBias, { kernel: 1, name: 'bbox_pred' }); // [N,4A,h,w]
      ctx.tap(`rpn.objectness.${f.name}`, objectness, 'float32', 'whole', [DIMS.images, a, ...levelSizeDims(f.name)]);
      ctx.tap(`rpn.deltas.${f.name}`, deltas, 'float32', 'whole', [DIMS.images, 4 * a, ...levelSizeDims(f.name)]);
      // torchvision permute_and_flatten: [N,A,h,w] -> [N,h*w*A]; [N,A*4,h,w] -> [N,A,4,h,w] -> [N,h*w*A,4].
      const logits = ops.reshape(g, ops.transpose(g, objectness, [0, 2, 3, 1], 'obj_nhwa'), [0, -1], 'logits');
      // (h, w) are contiguous, so they can be merged before the transpose: [N,A,4,h*w] -> [N,h*w,A,4].
      const deltas4 = ops.reshape(g, deltas, [0, a, 4, -1], 'deltas_a4s');
      const flatDeltas = ops.reshape(g, ops.transpose(g, deltas4, [0, 3, 1, 2], 'deltas_sa4'), [0, -1, 4], 'deltas_flat');
      const stride = nominalStride(f);
      const anchors = legacy
        ? gridAnchors(g, f.blob, ctx.batch.images, { base: detectronBaseAnchors(specs[i], stride), fixedStride: stride })
        : gridAnchors(g, f.blob, ctx.batch.images, { base: torchvisionBaseAnchors(specs[i]) });
      allAnchors.push(anchors);
      levels.push({ logits, deltas: flatDeltas, anchors });
    });
  });
  ctx.tap('rpn.anchors', allAnchors.length === 1 ? allAnchors[0] : ops.concat(g, allAnchors, 0, 'anchors'), 'float32', 'replicated-per-image', [DIMS.anchors, 4]);

  const t = config.TEST;
  return filterProposals(g, levels, ctx.batch.imageSizes, {
    preNmsTopN: t.RPN_PRE_NMS_TOP_N,
    postNmsTopN: t.RPN_POST_NMS_TOP_N,
    nmsThresh: t.RPN_NMS_THRESH,
    minSize: t.RPN_MIN_SIZE,
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
};

/** Registry entry of {@link genericRpnOutputs}. */
export const GENERIC_RPN_OUTPUTS: Implementation<RpnHead> = {
  name: 'rpn_heads.add_generic_rpn_outputs',
  aliases: ['RPNHead', 'FPN.add_fpn_rpn_outputs', 'rpn_heads.add_single_scale_rpn_outputs'],
  provider: '@rcnn/rpn',
  description: 'RPN head (HEAD_CONV_DEPTH x 3x3 conv + 1x1 objectness/deltas, shared across FPN levels), anchors and in-graph proposal generation',
  value: genericRpnOutputs,
};
