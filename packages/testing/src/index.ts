/**
 * @rcnn/testing: what rcnn-node's own tests and plugin authors' tests share: parity fixtures,
 * the tolerance comparisons, ORT helpers, isolated build contexts and the conformance kit.
 */
export * from './compare.js';
export * from './fixtures.js';
export * from './ort.js';
export * from './context.js';
export * from './conformance.js';
export { defaultBottomUp, defaultFeatures } from './conformance-inputs.js';
export { type CaseVerdict, type ProducedTensors, compareCase } from './compare-case.js';
export { type CaseOutcome, type RegisterFunction, type RunCaseOptions, produceCaseTensors, runCase } from './run-case.js';
export * from './training.js';
export { type PickleDict, type PickleFlavor, type PickleValue, writeNumpyPickle } from './numpy-pickle.js';
export { type TrainingConformanceOptions, type TrainingSlotId, runTrainingConformance } from './conformance-training.js';
