/**
 * @rcnn/runtime/training: the engine of `rcnn train` — the training-step contract, Detectron's
 * solver (warm-up, steps, SGD with momentum, bias rules, clipping), data-parallel replicas with
 * host-side gradient averaging, atomic checkpoints with exact resume, the metrics log and report.
 */
export { TrainingError } from './errors.js';
export {
  type SolverConfig,
  type ParameterRule,
  type ClipReport,
  type MomentumState,
  type SgdThreadOptions,
  SgdMomentum,
  sgdUpdate,
  learningRateFactor,
  learningRateAt,
  isBias,
  parameterRule,
  clipGradients,
  totalNorm,
} from './solver.js';
export {
  LOSS_PREFIX,
  GRADIENT_PREFIX,
  type TrainableParameter,
  type TrainingGraphSpec,
  type TrainingGraph,
  TOTAL_LOSS_OUTPUT,
  type StepContext,
  type StepResult,
  type ReplicaOptions,
  replicaSessionOptions,
  runWithLentParameters,
  copyParameters,
  type TrainingReplica,
  type ParameterInfo,
  type TrainingModel,
  type GraphTrainingModelInit,
  graphTrainingModel,
  checkSessionInterface,
  trainingGraphSpec,
  checkInitialValues,
  metricName,
} from './step.js';
export { type TrainingData, type BatchSampler, ShuffledSampler, mixSeed, seededPermutation, replicaShares } from './data.js';
export { AspectRatioGroupedSampler } from './data.js';
export {
  LAST_CHECKPOINT_FILE,
  MOMENTUM_PREFIX,
  CHECKPOINT_METADATA,
  CHECKPOINT_FORMAT,
  type TrainingState,
  type CheckpointFiles,
  type LoadedCheckpoint,
  checkpointName,
  solverPath,
  writeCheckpoint,
  lastCheckpoint,
  readCheckpoint,
  readSafetensorsMetadata,
  checkpointCategories,
} from './checkpoint.js';
export { type WeightRequest, type ReinitialisedTensor, type FittedWeights, describeReinitialised, recordingWeights, fitInitialWeights } from './initial-weights.js';
export {
  METRICS_FILE,
  type TrainOptions,
  type IterationRecord,
  type TrainingReplicaInfo,
  type TrainResult,
  train,
  metricsLine,
} from './trainer.js';
export { type TinyNetOptions, type TinySample, tinyNetParameters, buildTinyNetGraph, tinyNetModel, tinyShapesData } from './tiny-net.js';
export { type MetricsEntry, type TrainingReportInfo, parseMetrics, readMetrics, lineChart, trainingReportHtml } from './report.js';
export { KEEP_ALLOCATOR_ENV, TRAINING_MALLOC_ARENA_MAX, runsOnGlibc, trainingAllocatorEnvironment } from './allocator.js';
export { type DetectorSample, type DetectorTrainingOptions, type DetectorTrainingModel, detectorTrainingModel } from './detector.js';
