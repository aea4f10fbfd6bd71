/** @rcnn/fpn: Feature pyramid network over the conv bodies; registers the FPN.* conv bodies. */
export { FEATURE_PYRAMID, FPN_BODIES, FPN_PROVIDER, register } from './register.js';
export { FPN_PREFIX, FeaturePyramidNetwork, pyramidLevels } from './fpn.js';
export { FpnConvBody } from './fpn-body.js';
export { EXTRA_BLOCKS_PREFIX, convLevels, maxPoolLevel } from './extra-levels.js';
export { nearestSourceIndices, nearestUpsample2x, nearestUpsampleLike } from './upsample.js';
