/**
 * @rcnn/reliability: rcnn-node's reliability and security suite. Hostile-input cases (images,
 * weights, configs, the CLI, input limits), fuzz targets and a runner (fast-check), the load and
 * shutdown scenarios, and the soak and create/close churn measurements. The CI part runs as this
 * package's tests; `build/src/long.js` runs everything at full size.
 */

export {
  assertInputError,
  assertTyped,
  type CaseCategory,
  CaseContext,
  type CaseResult,
  outcomeError,
  type ReliabilityCase,
  runCases,
  thrown,
} from './cases.js';
export {
  FAULTY,
  type LoadOptions,
  type LoadReport,
  registerFaultyToy,
  requestSize,
  runLoad,
  runShutdown,
  type ShutdownReport,
} from './load.js';
export {
  type ChurnOptions,
  type ChurnReport,
  forceGc,
  rssAfterGc,
  runChurn,
  runSoak,
  type SoakModel,
  type SoakOptions,
  type SoakReport,
} from './soak.js';
export {
  caseFiles,
  FIXTURES,
  isTypedError,
  MODEL_REGISTER,
  outcomeLabel,
  RCNN_BIN,
  REPO_ROOT,
  tempDir,
  type TempDir,
  type TinyCase,
  tinyDetector,
  toyDetector,
  withTimeout,
} from './common.js';
export { assertBoxesInside, assertSameDetections, imageCases } from './categories/images.js';
export { weightsCases } from './categories/weights.js';
export { configCases } from './categories/config.js';
export { assertCliError, cliCases, type CliRun, rcnnBinary, rcnnInProcess } from './categories/cli.js';
export { DOCUMENTED_LIMITS, limitsCases } from './categories/limits.js';
export { mkfifo, streamCases } from './categories/streams.js';
export { mountFullTmpfs, outputCases } from './categories/outputs.js';
export { memoryCases } from './categories/memory.js';
export { pluginCases } from './categories/plugins.js';
export { apiCases, BAD_DETECTOR_OPTIONS } from './categories/api.js';
export {
  displayForStored,
  encode,
  type EncodedFormat,
  gradient,
  pattern,
  pixelDiff,
  type Pixels,
  storedCoordinate,
  storedForDisplay,
  swapsAxes,
} from './craft/images.js';
export {
  commandPickle,
  crc32,
  encodedZip,
  type EncodedZipEntry,
  fileWritingPickle,
  joinSafetensors,
  PickleWriter,
  readTensors,
  type SafetensorsParts,
  splitSafetensors,
  storedZip,
  torchArchive,
  type ZipInput,
} from './craft/weights.js';
export { applyMutations, describeMutations, INTERESTING_INTS, type Mutation, mutations, type Region } from './fuzz/mutate.js';
export { fixPngCrcs, type FuzzTarget, fuzzTargets, InvariantError } from './fuzz/targets.js';
export { apiOptionsTarget, apiPredictTarget } from './fuzz/api-targets.js';
export { formatOutcomes, type FuzzOptions, type FuzzReport, runFuzz } from './fuzz/run.js';
