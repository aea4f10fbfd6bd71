/** @rcnn/bench-tools: rcnn-node against torchvision's own ONNX export (the peer) on the perf cases. */
export * from './bench.js';
export * from './child.js';
export * from './flops.js';
export * from './peer.js';
export * from './profile-runs.js';
export * from './report.js';
export * from './stats.js';
export { convProbeModel, type ConvProbeResult, type PipelineRun, type PlacementResult, type ProfileResult, type RcnnTask, type SteadyResult, type ThroughputResult } from './rcnn-child.js';
export { type TorchTrainRow, type TrainBenchOptions, type TrainRuleReport, type TrainCaseReport, type TrainTarget, benchTrain, caseKind, checkTrainTargets, formatTrain, gemmKernelMs, timeTorchTrain } from './train.js';
export { type Trainability, type TrainTask, type SessionProfile, type TrainStepsResult, type TrainFlopsResult, type TrainThroughputResult, BACKWARD_PREFIX, frozenStages, gradientKernels, readTargets, trainabilitySet } from './train-child.js';
