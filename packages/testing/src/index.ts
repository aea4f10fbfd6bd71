/**
 * @rcnn/testing: what rcnn-node's own tests and plugin authors' tests share: parity fixtures,
 * the tolerance comparisons, ORT helpers, isolated build contexts and the conformance kit.
 */
export {
  decodeRgb,
  findRepoRoot,
  loadParityCase,
  type LoadParityCaseOptions,
  type ParityCase,
  PUBLIC_CASES,
  publicCaseDir,
} from './fixtures.js';
export { createTestContext, type TestContext } from './context.js';
export {
  assertConformance,
  type ConformanceCheck,
  type ConformanceOptions,
  type ConformanceReport,
  type ConsumedWeight,
  formatConformanceReport,
  runConformance,
} from './conformance.js';
export { createTestSession, fromOrtTensor, runModel, toOrtTensor } from './ort.js';
export {
  boxIoU,
  compareDense,
  compareDetections,
  compareExact,
  compareKeypoints,
  compareMasks,
  compareProposals,
  type Verdict,
} from './compare.js';
export { type ConformanceCase, defaultBottomUp, defaultFeatures, type FeatureSpec } from './conformance-inputs.js';
export { type CaseVerdict, compareCase, type ProducedTensors } from './compare-case.js';
export { type CaseOutcome, produceCaseTensors, type RegisterFunction, runCase, type RunCaseOptions } from './run-case.js';
export {
  compareGradient,
  compareTrainingDump,
  TRAINING_TOLERANCES,
  type TrainingDumpCheck,
  type TrainingTolerances,
} from './training.js';
export { type PickleDict, type PickleFlavor, type PickleValue, writeNumpyPickle } from './numpy-pickle.js';
export { runTrainingConformance, type TrainingConformanceOptions, type TrainingSlotId } from './conformance-training.js';
export type { ConformanceExpectations, ConformanceSlotId } from './conformance-slots.js';
