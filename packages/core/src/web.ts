/**
 * @rcnn/core/web: the part of core that runs anywhere JavaScript does — browsers and bundlers
 * included. No Node API, no graph builder, no protobuf schema: errors, host tensors, the typed
 * host results (masks, keypoints), COCO RLE, the public input/output/metadata names of built
 * models and a reader of a serialised model's metadata. Node code imports the same modules
 * through `@rcnn/core`.
 */
export * from './errors.js';
export * from './graph/dtypes.js';
export type * from './model/contracts.js';
export * from './model/extras.js';
export * from './model/names.js';
export * from './model/dims.js';
export * from './formats/rle.js';
export { roundHalfEven } from './numeric.js';
export { readModelMetadata } from './onnx/metadata.js';
export type { RcnnConfig } from './config/config.js';
export type { Dim } from './graph/builder.js';
