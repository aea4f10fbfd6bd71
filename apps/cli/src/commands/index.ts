/** The table of `rcnn` commands; a new command is one module and one entry here. */
import type { Command } from '../command.js';
import { bench } from './bench.js';
import { compare } from './compare.js';
import { convert } from './convert.js';
import { evalCommand } from './eval.js';
import { exportCommand } from './export.js';
import { predict } from './predict.js';
import { trainCommand } from './train.js';
import { trainStepCommand } from './train-step.js';

/** Every command, in the order `rcnn --help` lists them. */
export const COMMANDS: readonly Command[] = [predict, exportCommand, bench, convert, evalCommand, trainCommand, trainStepCommand, compare];
