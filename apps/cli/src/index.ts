/**
 * @rcnn/cli: the `rcnn` command (predict, export, bench, convert, eval). The command table is exported so
 * other packages can add commands (e.g. `rcnn convert` on top of @rcnn/checkpoint).
 */
export { runCli, globalHelp, version } from './cli.js';
export { type Command, type OptionSpecs, type OptionValues, MODEL_OPTIONS, RUN_OPTIONS, parseCommand, optFlag, optInt, optNumber, optString, optStrings } from './command.js';
export { COMMANDS } from './commands/index.js';
export { DEFAULT_HINTS, EXIT, UsageError, describeError, reportError } from './errors.js';
export { type CliIO, ProgressBar } from './io.js';
export { MODEL_PACKAGES, loadPlugins } from './plugins.js';
export { DEFAULT_BENCH_CONFIG, SAMPLE_IMAGES } from './commands/bench.js';
export { renderHtml } from './bench/html.js';
export type { BenchReport, Measurement, Summary, BaselineReport } from './bench/model.js';
export { LABEL_MAPS, type LabelMapKind, type PredictedResults, evalCommand, labelMapper, predictCocoResults, statsJson } from './commands/eval.js';
