/**
 * @rcnn/core/web: the part of core that runs anywhere JavaScript does — browsers and bundlers
 * included. No Node API, no graph builder, no protobuf schema: errors, host tensors, the typed
 * host results (masks, keypoints), COCO RLE, the public input/output/metadata names of built
 * models and a reader of a serialised model's metadata. Node code imports the same modules
 * through `@rcnn/core`.
 */
export {
  ConfigError,
  GraphError,
  InputError,
  OutputError,
  RcnnError,
  RegistryError,
  TargetError,
  WeightsError,
} from './errors.js';
export {
  DATA_TYPE_SIZE,
  type DataType,
  elementCount,
  hostTensor,
  type HostTensor,
  ONNX_DATA_TYPE,
  type TensorArray,
  type TypedArrayOf,
} from './graph/dtypes.js';
export type {
  HostPostprocessor,
  HostTargets,
  ImageDetections,
  ImageTransform,
  PreparedBatch,
  RawOutputs,
  RgbImage,
} from './model/contracts.js';
export {
  EXTRA_KEYS,
  extraKey,
  type ExtraKey,
  getExtra,
  keypointSet,
  type KeypointSet,
  type MaskCrop,
  type MaskSet,
  setExtra,
} from './model/extras.js';
export { DETECTION_OUTPUTS, MODEL_INPUTS, MODEL_METADATA, PROPOSAL_OUTPUTS } from './model/names.js';
export { DIMS } from './model/dims.js';
export {
  type CocoRle,
  compressRle,
  decodeRle,
  decompressRle,
  encodeRle,
  rleArea,
  RleBuilder,
  rleCountsFromString,
  rleCountsToString,
  type UncompressedRle,
} from './formats/rle.js';
export { roundHalfEven } from './numeric.js';
export { readModelMetadata } from './onnx/metadata.js';
export type { RcnnConfig } from './config/config.js';
export type { Dim } from './graph/builder.js';
