/**
 * @rcnn/reliability: rcnn-node's reliability and security suite. Hostile-input cases (images,
 * weights, configs, the CLI, input limits), fuzz targets and a runner (fast-check), the load and
 * shutdown scenarios, and the soak and create/close churn measurements. The CI part runs as this
 * package's tests; `build/src/long.js` runs everything at full size.
 */
export * from './common.js';
export * from './cases.js';
export { imageCases, assertBoxesInside, assertSameDetections } from './categories/images.js';
export { weightsCases } from './categories/weights.js';
export { configCases } from './categories/config.js';
export { cliCases, assertCliError, rcnnBinary, rcnnInProcess, type CliRun } from './categories/cli.js';
export { limitsCases, DOCUMENTED_LIMITS } from './categories/limits.js';
export { streamCases, mkfifo } from './categories/streams.js';
export { outputCases, mountFullTmpfs } from './categories/outputs.js';
export { memoryCases } from './categories/memory.js';
export { pluginCases } from './categories/plugins.js';
export { apiCases, BAD_DETECTOR_OPTIONS } from './categories/api.js';
export * from './craft/images.js';
export * from './craft/weights.js';
export * from './fuzz/mutate.js';
export * from './fuzz/targets.js';
export * from './fuzz/api-targets.js';
export * from './fuzz/run.js';
export * from './load.js';
export * from './soak.js';
