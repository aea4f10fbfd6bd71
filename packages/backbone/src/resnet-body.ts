/**
 * The ResNet / ResNeXt conv body (Detectron's `ResNet.add_ResNet*_conv{4,5}_body`): the stem and
 * three (C4) or four (C5) bottleneck stages under `backbone.body.`, returning the stage outputs
 * as torchvision's IntermediateLayerGetter does. Which depth, widths and conventions it has is
 * decided from the config by an {@link ArchitectureResolver} (see resnet-variants.ts).
 */
import type { BuildContext, ConvBody, FeatureMap, FeatureMaps, Blob, RcnnConfig } from '@rcnn/core';
import { at } from '@rcnn/core';
import type { ResNetConventions } from './conventions.js';
import { buildResNetStage } from './bottleneck.js';
import { buildResNetStem } from './stem.js';

/** State-dict prefix of every ResNet body weight (torchvision `backbone.body.`). */
export const RESNET_BODY_PREFIX = 'backbone.body.';

/** A fully resolved body: every number the graph needs. */
export interface ResNetArchitecture {
  /** Output channels of the stem (`RESNETS.STEM_OUT_CHANNELS`). */
  readonly stemChannels: number;
  /** Planes of each stage `layer1..layerK` (K = 3 for C4, 4 for C5); stage outputs have 4x. */
  readonly planes: readonly number[];
  /** Blocks of each stage. */
  readonly blocks: readonly number[];
  readonly conventions: ResNetConventions;
  /** Dilation of layer4 (`RESNETS.RES5_DILATION`); > 1 gives layer4 stride 1. */
  readonly res5Dilation: number;
}

/** Decides the architecture from the config (throws a ConfigError naming the key at fault). */
export type ArchitectureResolver = (config: RcnnConfig) => ResNetArchitecture;

/**
 * Stride of the stem output (conv1 /2, maxpool /2); every later stage but the first halves the
 * resolution once more, unless it is a dilated res5.
 */
const STEM_STRIDE = 4;

/**
 * A conv body over a resolver. With 3 stages (C4) it returns the single map '0' = layer3 (stride
 * 16), as torchvision's `return_layers {"layer3": "0"}`; with 4 stages (C5) it returns '0'..'3' =
 * layer1..layer4 (strides 4..32), so an FPN can consume them; a non-FPN model uses the last one.
 */
export class ResNetBody implements ConvBody {
  readonly isFpn = false;
  readonly weightPrefixes = [RESNET_BODY_PREFIX] as const;

  constructor(private readonly resolve: ArchitectureResolver) {}

  /** The architecture this body builds under `config` (for inspection and FLOP counts). */
  architecture(config: RcnnConfig): ResNetArchitecture {
    return this.resolve(config);
  }

  build(ctx: BuildContext, images: Blob): FeatureMaps {
    const arch = this.resolve(ctx.config);
    const g = ctx.graph;
    let x = g.withScope('stem', () => buildResNetStem(ctx, images, RESNET_BODY_PREFIX, arch.stemChannels, arch.conventions));
    let channels = arch.stemChannels;
    let stride = STEM_STRIDE;
    const outputs: FeatureMap[] = [];
    arch.planes.forEach((planes, i) => {
      const isRes5 = i === 3;
      const dilation = isRes5 ? arch.res5Dilation : 1;
      const stageStride = i === 0 || dilation > 1 ? 1 : 2;
      const name = `layer${i + 1}`;
      const stage = g.withScope(name, () =>
        buildResNetStage(ctx, x, {
          prefix: `${RESNET_BODY_PREFIX}${name}.`,
          inChannels: channels,
          planes,
          blocks: arch.blocks[i]!,
          stride: stageStride,
          dilation,
          conventions: arch.conventions,
        }),
      );
      x = stage.blob;
      channels = stage.channels;
      stride *= stageStride;
      outputs.push({ name: String(i), blob: x, channels, spatialScale: 1 / stride, level: Math.log2(stride) });
    });
    // C4: only layer3's output is returned (the res5 stage lives in the RoI head).
    return arch.planes.length === 3 ? [{ ...at(outputs, 2, 'C4 body outputs'), name: '0' }] : outputs;
  }
}
