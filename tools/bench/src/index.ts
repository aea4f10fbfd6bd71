/** @rcnn/bench-tools: rcnn-node against torchvision's own ONNX export (the peer) on the perf cases. */

export {
  benchCase,
  type BenchOptions,
  type CaseReport,
  checkTargets,
  GEMM_CLASS,
  outsideShare,
  rcnnTask,
  type Section,
  SECTIONS,
  type SideSummary,
  STEADY_TARGETS,
  type TargetCheck,
} from './bench.js';
export {
  DEFAULT_PEER_TOOL,
  defaultOrtNodeDir,
  type PeerProfile,
  type PeerSetup,
  type PeerSteady,
  profilePeer,
  timePeer,
} from './peer.js';
export { type ChildOutput, childResult, peakRssMb, reportResult, RESULT_MARK, runNode } from './child.js';
export { countFlops, countKernelFlops, type FlopCount, kernelFlops } from './flops.js';
export { medianOpTimes } from './profile-runs.js';
export { formatCase } from './report.js';
export { formatMs, median, minimum, ratio } from './stats.js';
export {
  convProbeModel,
  type ConvProbeResult,
  type PipelineRun,
  type PlacementResult,
  type ProfileResult,
  type RcnnTask,
  type SteadyResult,
  type ThroughputResult,
} from './rcnn-child.js';
export {
  benchTrain,
  caseKind,
  checkTrainTargets,
  formatTrain,
  gemmKernelMs,
  stepPhases,
  timeTorchTrain,
  type TorchTrainRow,
  type TrainBenchOptions,
  type TrainCaseReport,
  type TrainRuleReport,
  type TrainTarget,
} from './train.js';
export {
  BACKWARD_PREFIX,
  frozenStages,
  gradientKernels,
  readTargets,
  type SessionProfile,
  type Trainability,
  trainabilitySet,
  type TrainFlopsResult,
  type TrainStepsResult,
  type TrainTask,
  type TrainThroughputResult,
} from './train-child.js';
