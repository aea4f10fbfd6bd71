/** The parity harness: run rcnn-node on parity case directories and judge every reference tensor. */
export * from './compare-case.js';
export * from './run-case.js';
export { compareDetectron2Image, type NamedTensors } from './compare-detectron2.js';
