/**
 * `rpn_heads.add_generic_rpn_outputs`: the RPN of a Faster/Mask/Keypoint R-CNN at test time, on one
 * feature map (C4) or on every FPN level with one shared head (torchvision `RPNHead` +
 * `AnchorGenerator` + `RegionProposalNetwork.filter_proposals`; Detectron's
 * `add_single_scale_rpn_outputs` / `FPN.add_fpn_rpn_outputs`).
 */
import {
  type Blob,
  type BuildContext,
  type Conv2dSpec,
  type FeatureMaps,
  type Implementation,
  type Proposals,
  type RpnHead,
  conv2dOptions,
  conv2dParameters,
  ops,
  parameter,
  sequentialKey,
  sharedChannels,
} from '@rcnn/core';
import { detectronBaseAnchors, gridAnchors, levelAnchorSpecs, nominalStride, torchvisionBaseAnchors } from './anchors.js';
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

/** Builds the RPN on `features` (see module doc). */
function buildRpn(ctx: BuildContext, features: FeatureMaps): Proposals {
  const { graph: g, config } = ctx;
  // The head is shared across levels, so every level must have its input width.
  const channels = sharedChannels(features, 'RPN head', 'RPN.HEAD');
  const specs = levelAnchorSpecs(config, features);
  const a = specs[0]!.sizes.length * specs[0]!.aspectRatios.length;
  const w = headLayers(ctx, channels, a);
  const legacy = config.MODEL.LEGACY_PLUS_ONE;

  const levels: LevelCandidates[] = [];
  const allAnchors: Blob[] = [];
  features.forEach((f, i) => {
    g.withScope(`level_${f.name}`, () => {
      let x = f.blob;
      w.convs.forEach((c, j) => {
        x = ops.relu(g, applyShared(ctx, x, c, `conv${j}`), `relu${j}`);
      });
      const objectness = applyShared(ctx, x, w.cls, 'cls_logits'); // [N,A,h,w]
      const deltas = applyShared(ctx, x, w.bbox, 'bbox_pred'); // [N,4A,h,w]
      ctx.tap(`rpn.objectness.${f.name}`, objectness, 'float32', 'whole');
      ctx.tap(`rpn.deltas.${f.name}`, deltas, 'float32', 'whole');
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
  ctx.tap('rpn.anchors', allAnchors.length === 1 ? allAnchors[0] : ops.concat(g, allAnchors, 0, 'anchors'), 'float32', 'replicated-per-image');

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
