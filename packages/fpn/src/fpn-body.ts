/**
 * The `FPN.add_fpn_*_conv5_body` conv bodies: a bottom-up conv body found in the registry by name
 * (never imported) under `backbone.body.`, and the pyramid of `FPN.IMPL` over its outputs under
 * `backbone.fpn.` — torchvision's BackboneWithFPN.
 */
import { type Blob, type BuildContext, ConfigError, type ConvBody, type FeatureMaps, type Implementation, RegistryError, SLOTS, resolveImplementation } from '@rcnn/core';

/** A conv body that is `bottomUp` (a conv-body registry name) followed by the configured FPN. */
export class FpnConvBody implements ConvBody {
  readonly isFpn = true;
  readonly weightPrefixes = ['backbone.'] as const;

  /** @param name this body's registry name (for messages); @param bottomUp the registry name of the body it builds on. */
  constructor(
    readonly name: string,
    readonly bottomUp: string,
  ) {}

  build(ctx: BuildContext, images: Blob): FeatureMaps {
    let body: Implementation<ConvBody>;
    try {
      body = resolveImplementation(ctx.container, SLOTS.convBody, this.bottomUp);
    } catch (e) {
      if (!(e instanceof RegistryError)) throw e;
      throw new RegistryError(`conv body "${this.name}" builds on the conv body "${this.bottomUp}", which is not registered. ${e.message}`, {
        hint: "register the package that provides it too (the ResNet bodies: @rcnn/backbone's register(container))",
      });
    }
    if (body.value.isFpn) throw new ConfigError(`conv body "${this.name}" needs a bottom-up body, but "${this.bottomUp}" is itself an FPN body`);
    const pyramid = resolveImplementation(ctx.container, SLOTS.fpn, ctx.config.FPN.IMPL);
    const bottomUp = ctx.graph.withScope('body', () => body.value.build(ctx, images));
    return ctx.graph.withScope('fpn', () => pyramid.value.build(ctx, bottomUp));
  }
}
