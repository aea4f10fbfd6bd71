/**
 * @rcnn/runtime: assembles rcnn-node models per device and runs them on onnxruntime-node (one
 * replica and session per device, CUDA with a CPU fallback), with image decoding, scheduling,
 * presets, result formats, tensor dumps, drawings and ONNX export.
 */
export * from './errors.js';
export * from './devices.js';
export * from './threads.js';
export { OrtSession, type OpenSessionOptions, type OrtLogLevel, type SessionRun } from './session.js';
export type { ValueInfo } from './worker/protocol.js';
export * from './scheduler.js';
export * from './image-io.js';
export * from './image-read.js';
export * from './options.js';
export * from './categories.js';
export * from './presets.js';
export * from './weights.js';
export * from './setup.js';
export * from './outputs.js';
export * from './extras.js';
export * from './detector.js';
export * from './dump.js';
export * from './coco.js';
export * from './draw.js';
export * from './export.js';
export * from './profile.js';
export { type PluginRegister, importPluginRegister, pluginSpecifiers } from './plugins.js';
export * from './training.js';
