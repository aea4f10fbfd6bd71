#!/usr/bin/env node
/** Entry point of the `rcnn` binary. */
import { reportError } from './errors.js';
import { runCli } from './cli.js';
import { relaunchForTraining } from './relaunch.js';

const verbose = process.argv.includes('--verbose') || process.argv.includes('-v');
// Last resort: whatever escapes still ends as two lines and a non-zero status, not a stack trace.
process.on('unhandledRejection', (e) => {
  process.exitCode = reportError(e, undefined, verbose);
});
process.on('uncaughtException', (e) => {
  process.exitCode = reportError(e, undefined, verbose);
});
const argv = process.argv.slice(2);
process.exitCode = (await relaunchForTraining(argv)) ?? (await runCli(argv));
