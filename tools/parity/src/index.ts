/** The parity harness CLI's built-in packages (runCase / compareCase / produceCaseTensors are @rcnn/testing's). */
export * from './built-ins.js';
