/** @rcnn/backbone: ResNet / ResNeXt conv bodies (torchvision and Detectron conventions), the host-side image transform and the features-only net. */
export { register, IMAGE_TRANSFORM } from './register.js';
export { BOTTLENECK_EXPANSION, type FrozenNormKind, type ResNetConventions, bottleneckWidth, resnetConventions, resnetNorm } from './conventions.js';
export { type BottleneckSpec, type ResNetStageOutput, type ResNetStageSpec, buildBottleneck, buildResNetStage } from './bottleneck.js';
export { STEM, buildResNetStem } from './stem.js';
export { type ArchitectureResolver, RESNET_BODY_PREFIX, type ResNetArchitecture, ResNetBody } from './resnet-body.js';
export {
  BACKBONE_PROVIDER,
  type BodyDepth,
  RESNET_BODIES,
  RESNET_CUSTOM_C4_BODY,
  RESNET_DEPTHS,
  RESNET_STAGE_PLANES,
  customResNet,
  fixedResNeXt,
  standardResNet,
} from './resnet-variants.js';
export { type LinearAxis, type PlanarTarget, opencvLinearAxis, pytorchLinearAxis, resampleBilinear, resampleBilinearRgb8 } from './bilinear.js';
export { type ResizeRule, type ResizedSize, detectronResizedSize, resizedSize, torchvisionResizedSize } from './resize-rule.js';
export { GeneralizedRCNNTransform, padToMultiple } from './image-transform.js';
export { type PilAxis, pilBilinearAxis, pilBilinearResizeRgb8 } from './pil-bilinear.js';
export { detectron2ResizedSize } from './resize-rule.js';
