/**
 * @rcnn/core: the ground every rcnn-node package stands on: the ONNX graph builder, the DI slot
 * registry, the Detectron-style config, weights I/O, shared box/RoI graph ops and the model builder.
 */
import 'reflect-metadata';

export type { DependencyContainer } from 'tsyringe';

export * from './errors.js';
export * from './graph/dtypes.js';
export * from './graph/builder.js';
export * as ops from './graph/ops.js';
export { decodeModelProto, ONNX_PROTO_PATH } from './onnx/proto.js';
export { toFloat16Bits, toFloat16Tensor } from './graph/float16.js';
export * from './config/schema.js';
export * from './config/sections.js';
export * from './config/config.js';
export * from './config/case.js';
export * from './config/detectron2.js';
export * from './registry/registry.js';
export * from './model/contracts.js';
export * from './model/extras.js';
export * from './model/dims.js';
export * from './model/names.js';
export { readModelMetadata } from './onnx/metadata.js';
export * from './model/build.js';
export * from './model/build-train.js';
export * from './training/matching.js';
export * from './training/targets.js';
export * from './training/roi-sampling.js';
export * as losses from './training/losses.js';
export * from './weights/safetensors.js';
export * from './weights/store.js';
export * from './weights/conventions.js';
export * from './ops/boxes.js';
export * from './ops/pooler.js';
export * from './ops/batch.js';
export * from './layers/index.js';
export { roundHalfEven } from './numeric.js';
export * from './formats/rle.js';
export * from './autodiff/index.js';
export * from './io/index.js';
export * from './config/memory.js';
