/** The table of `rcnn` commands; a new command is one module and one entry here. */
import type { Command } from '../command.js';
import { bench } from './bench.js';
import { compare } from './compare.js';
import { convert } from './convert.js';
import { exportCommand } from './export.js';
import { predict } from './predict.js';

/** Every command, in the order `rcnn --help` lists them. */
export const COMMANDS: readonly Command[] = [predict, exportCommand, bench, convert, compare];
