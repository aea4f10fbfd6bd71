/**
 * `@rcnn/core` layers (Detectron2's `layers/` + `poolers.py`): what a head is written with. Each
 * layer reads its parameters by torchvision state-dict key with the exact shape and a declared
 * random init.
 */
export {
  type Activation,
  type Conv2dSpec,
  type ConvTransposeSpec,
  type LayerSpec,
  type LinearSpec,
  conv2d,
  conv2dOptions,
  conv2dParameters,
  conv2dWeightShape,
  convTranspose,
  convTransposeParameters,
  linear,
  linearParameters,
} from './conv.js';
export { upsampleBilinear } from './interpolate.js';
export { type ConvNormSpec, NORM_RANDOM_INIT, type NormAffine, type NormKind, type NormSpec, convNorm, foldNorm, normParameters, readNormAffine } from './norm.js';
export { type PooledRois, type RoiPoolerCallOptions, type RoiPoolerSection, roiPooler, roiPoolerOptions, sharedChannels } from './pooler.js';
export {
  HE_INIT,
  ONE_INIT,
  type ParameterSpec,
  ZERO_INIT,
  convNormActivationKeys,
  parameter,
  readParameter,
  resolveKey,
  sequentialKey,
  xavierFill,
} from './weights.js';
