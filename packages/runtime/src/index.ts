/**
 * @rcnn/runtime: assembles rcnn-node models per device and runs them on onnxruntime-node (one
 * replica and session per device, CUDA with a CPU fallback), with image decoding, scheduling,
 * presets, result formats, tensor dumps, drawings and ONNX export.
 *
 * This index is the package's public API, name by name; the rest (the scheduler under
 * `src/internal/`, the worker protocol, option checks, random-weight calibration) is implementation
 * detail that tests import by path.
 */
export { type OpenSessionOptions, type OrtLogLevel, OrtSession, type RunOptions, type SessionRun } from './session.js';
export {
  findPreset,
  type Preset,
  PRESET_NAMES,
  PRESETS,
  resolveConfig,
  type ResolveConfigOptions,
  type ResolvedConfig,
} from './presets.js';
export { dumpTensors, writeDump } from './dump.js';
export { drawOn, type DrawOptions, drawResult } from './draw.js';
export { type ExportedModel, type ExportedValue, exportModel, type ExportOptions } from './export.js';
export { DeviceError, InferenceError, ShutdownError } from './errors.js';
export { type Device, DEVICE_FORMS, discoverGpus, type GpuInfo, type ResolvedDevices, resolveDevices } from './devices.js';
export type { ThreadSettings } from './threads.js';
export type { ValueInfo } from './worker/protocol.js';
export {
  ACCEPTED_IMAGE_FORMATS,
  type DecodedImage,
  decodeImage,
  type ImageInput,
  type ImageLimits,
  type RawImage,
} from './image-io.js';
export { fileKind, type ImageBytes, type ImageReadLimits, readImageFile } from './image-read.js';
export {
  OPTION_BOUNDS,
  ORT_LOG_LEVELS,
  PRECISIONS,
  validateDetectorOptions,
  validateExportOptions,
  validateModelSourceOptions,
  validatePredictOptions,
} from './options.js';
export {
  COCO_KEYPOINT_NAMES,
  COCO_KEYPOINT_SKELETON,
  defaultLabels,
  DETECTRON_COCO_CATEGORIES,
  DETECTRON_COCO_CATEGORY_IDS,
  type ModelLabels,
  TORCHVISION_COCO_CATEGORIES,
} from './categories.js';
export { type CalibrationOptions, RESIDUAL_GAIN, calibratedRandomWeights, loadWeights } from './weights.js';
export { type ModelSourceOptions, type ModelSources, NON_FINITE_POLICIES, resolveModelSources } from './setup.js';
export { type ImageProposals, type RowRange, splitDetections, splitProposals } from './outputs.js';
export { readKeypoints, readMasks } from './extras.js';
export {
  type BatchOutputs,
  createDetector,
  Detector,
  type DetectorOptions,
  type ImageResult,
  type PredictOptions,
  type PredictOutcome,
  type ReplicaSummary,
  type StageTimings,
} from './detector.js';
export type { ReplicaLoad } from './internal/scheduler.js';
export { type CocoImage, type CocoOptions, type CocoProposal, type CocoResults, CocoResultsBuilder } from './coco.js';
export {
  describePlacement,
  type KernelEvent,
  nodePlacement,
  type NodePlacement,
  opTimes,
  type OrtProfileEvent,
  readOrtProfile,
  runKernels,
  runMemory,
  type RunMemory,
} from './profile.js';
export { importPluginRegister, type PluginRegister, pluginSpecifiers } from './plugins.js';
export {
  type InGraphReplay,
  type InjectedTraining,
  loadTrainingCase,
  type TrainingCase,
  trainStep,
  trainStepInGraph,
  type TrainStepInGraphOptions,
  type TrainStepInput,
  type TrainStepOptions,
  type TrainStepResult,
} from './training.js';
export type { CocoAnnotation } from './coco-annotations.js';
export { classColour } from './draw-layers.js';
