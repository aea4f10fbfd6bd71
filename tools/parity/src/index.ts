/** The parity harness CLI's built-in packages (runCase / compareCase / produceCaseTensors are @rcnn/testing's). */

export { BUILT_IN_PACKAGES } from './built-ins.js';
export { compareDetectron2Image, type NamedTensors } from './compare-detectron2.js';
