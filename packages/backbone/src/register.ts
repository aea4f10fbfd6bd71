/** Registration of this package's implementations (nothing registers on import). */
import { type DependencyContainer, type ImageTransform, type Implementation, SLOTS, registerImplementation } from '@rcnn/core';
import { GeneralizedRCNNTransform } from './image-transform.js';
import { BACKBONE_PROVIDER, RESNET_BODIES } from './resnet-variants.js';

/** The image transform this package registers in the image-transform slot. */
export const IMAGE_TRANSFORM: Implementation<ImageTransform> = {
  name: 'GeneralizedRCNNTransform',
  provider: BACKBONE_PROVIDER,
  description: 'normalise, bilinear resize (torchvision float32 or Detectron rule), zero-pad to INPUT.SIZE_DIVISIBILITY',
  value: new GeneralizedRCNNTransform(),
};

/** Registers the ResNet / ResNeXt conv bodies and the GeneralizedRCNNTransform image transform. */
export function register(container: DependencyContainer): void {
  for (const body of RESNET_BODIES) registerImplementation(container, SLOTS.convBody, body);
  registerImplementation(container, SLOTS.imageTransform, IMAGE_TRANSFORM);
}
