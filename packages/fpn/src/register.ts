/** Registration of this package's implementations (nothing registers on import). */
import { type ConvBody, type DependencyContainer, type FeaturePyramid, type Implementation, SLOTS, registerImplementation } from '@rcnn/core';
import { FeaturePyramidNetwork } from './fpn.js';
import { FpnConvBody } from './fpn-body.js';

/** npm package name used as the registry provider. */
export const FPN_PROVIDER = '@rcnn/fpn';

/** The FPN implementation (slot fpn). */
export const FEATURE_PYRAMID: Implementation<FeaturePyramid> = {
  name: 'FPN.add_fpn',
  aliases: ['FeaturePyramidNetwork'],
  provider: FPN_PROVIDER,
  description: 'torchvision FeaturePyramidNetwork: 1x1 laterals, nearest top-down, 3x3 outputs; P6 by max-pool or extra convs',
  value: new FeaturePyramidNetwork(),
};

function fpnBody(name: string, aliases: readonly string[], bottomUp: string, what: string): Implementation<ConvBody> {
  return { name, aliases, provider: FPN_PROVIDER, description: `${what} + FPN (bottom-up body ${bottomUp})`, value: new FpnConvBody(name, bottomUp) };
}

/** The FPN conv bodies (slot conv-body), each over a ResNet body resolved by name at build time. */
export const FPN_BODIES: readonly Implementation<ConvBody>[] = [
  fpnBody('FPN.add_fpn_ResNet50_conv5_body', ['R-50-FPN'], 'ResNet.add_ResNet50_conv5_body', 'ResNet-50'),
  fpnBody('FPN.add_fpn_ResNet101_conv5_body', ['R-101-FPN'], 'ResNet.add_ResNet101_conv5_body', 'ResNet-101'),
  fpnBody('FPN.add_fpn_ResNet152_conv5_body', ['R-152-FPN'], 'ResNet.add_ResNet152_conv5_body', 'ResNet-152'),
  fpnBody('FPN.add_fpn_ResNeXt101_32x8d_conv5_body', ['X-101-32x8d-FPN'], 'ResNet.add_ResNeXt101_32x8d_conv5_body', 'ResNeXt-101 32x8d'),
  fpnBody('FPN.add_fpn_ResNeXt101_64x4d_conv5_body', ['X-101-64x4d-FPN'], 'ResNet.add_ResNeXt101_64x4d_conv5_body', 'ResNeXt-101 64x4d'),
  fpnBody('FPN.add_fpn_ResNet_custom_conv5_body', [], 'ResNet.add_ResNet_custom_conv5_body', 'ResNet from RESNETS.STAGE_*'),
];

/**
 * Registers `FPN.add_fpn` and the FPN conv bodies. The bottom-up ResNet bodies come from
 * @rcnn/backbone: register it in the same container.
 */
export function register(container: DependencyContainer): void {
  registerImplementation(container, SLOTS.fpn, FEATURE_PYRAMID);
  for (const body of FPN_BODIES) registerImplementation(container, SLOTS.convBody, body);
}
