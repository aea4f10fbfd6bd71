/**
 * How the CLI reports failure: one line saying what went wrong, one line saying what to do, a
 * non-zero exit status — never a stack trace (unless --verbose), whatever was thrown.
 */
import { RcnnError } from '@rcnn/core';

/** A mistake in the command line itself (exit status 2). */
export class UsageError extends Error {
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'UsageError';
    this.hint = hint;
  }
}

/** Exit statuses of `rcnn`. */
export const EXIT = {
  ok: 0,
  /** Something failed (bad input, weights, config, device …). */
  failure: 1,
  /** The command line is wrong. */
  usage: 2,
} as const;

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();

/**
 * The hint of a typed error that carries none (e.g. a YAML syntax error, a truncated safetensors
 * header): every error still gets its "what to do" line, by error code.
 */
export const DEFAULT_HINTS: Readonly<Record<string, string>> = {
  E_CONFIG: 'see docs/config.md for every key and the values it accepts',
  E_WEIGHTS: 'check that the weights file is complete and made for this config (docs/weights.md)',
  E_INPUT: 'check the image file (JPEG, PNG, WebP, GIF, TIFF or AVIF)',
  E_REGISTRY: 'register the package that provides it (--plugin)',
  E_DEVICE: 'run rcnn predict --help for the device forms',
  E_GRAPH: 'this is a bug in a model stage: run again with --verbose and report it',
  E_INFERENCE: 'run again with --verbose for onnxruntime logs',
  E_SHUTDOWN: 'the model was closed while this work was pending: run it again',
  E_TRAINING: 'see docs/fine-tuning.md; fix the cause and continue with --resume',
};

/** The message, hint and exit status for anything thrown. */
export function describeError(e: unknown, command: string | undefined): { message: string; hint: string | undefined; status: number } {
  const helpHint = `run rcnn ${command ? `${command} ` : ''}--help`;
  if (e instanceof UsageError) return { message: oneLine(e.message), hint: e.hint ?? helpHint, status: EXIT.usage };
  if (e instanceof RcnnError) return { message: oneLine(e.message), hint: e.hint ?? DEFAULT_HINTS[e.code] ?? helpHint, status: EXIT.failure };
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && typeof err.message === 'string') {
    const path = err.path ? ` ${err.path}` : '';
    switch (err.code) {
      case 'ENOENT':
        return { message: `no such file or directory:${path}`, hint: 'check the path', status: EXIT.failure };
      case 'EACCES':
      case 'EPERM':
        return { message: `permission denied:${path}`, hint: 'check the file permissions', status: EXIT.failure };
      case 'EISDIR':
        return { message: `is a directory:${path}`, hint: 'give a file path', status: EXIT.failure };
      case 'ENOTDIR':
        return { message: `not a directory:${path}`, hint: 'check the path', status: EXIT.failure };
      case 'ENOSPC':
        return { message: `no space left on the device writing${path}`, hint: 'free some disk space', status: EXIT.failure };
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        return { message: oneLine(err.message.replace(/\. To specify a positional argument.*$/s, '')), hint: helpHint, status: EXIT.usage };
      default:
        break;
    }
  }
  const message = e instanceof Error ? e.message : String(e);
  return { message: `internal error: ${oneLine(message)}`, hint: 'run again with --verbose for the stack trace, and please report it', status: EXIT.failure };
}

/** Writes the two lines of an error to stderr and returns the exit status. */
export function reportError(e: unknown, command: string | undefined, verbose: boolean, stderr: NodeJS.WritableStream = process.stderr): number {
  const { message, hint, status } = describeError(e, command);
  stderr.write(`rcnn${command ? ` ${command}` : ''}: error: ${message}\n`);
  if (hint) stderr.write(`  hint: ${oneLine(hint)}\n`);
  if (verbose && e instanceof Error && e.stack) stderr.write(`${e.stack}\n`);
  return status;
}
