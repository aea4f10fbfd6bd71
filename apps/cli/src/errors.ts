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
  /** The command line is wrong (also: a --plugin that cannot be loaded). */
  usage: 2,
  /** stdout was closed by its reader (`rcnn predict … | head -1`): 128 + SIGPIPE, as a shell reports it. */
  brokenPipe: 141,
} as const;

/**
 * A `--plugin` module failed: at import, in its `register(container)`, or in code of it that the
 * model ran (a head's `build()`, a post-processor). Names the plugin and the phase, so the fault is
 * not blamed on rcnn. Load failures (import, register) exit with 2, like other command-line mistakes.
 */
export class PluginError extends RcnnError {
  /** The plugin as given (`./my-head.mjs`, `my-package`). */
  readonly plugin: string;
  /** Where it failed: `import`, `register()`, `build()` or `predict`. */
  readonly phase: 'import' | 'register()' | 'build()' | 'predict';
  constructor(plugin: string, phase: PluginError['phase'], message: string, options?: { hint?: string; cause?: unknown }) {
    super('E_PLUGIN', `plugin ${plugin} failed in ${phase}: ${message}`, {
      hint: options?.hint ?? (phase === 'import' || phase === 'register()' ? 'fix the plugin or leave it out (--plugin, RCNN_PLUGINS)' : 'this is a bug in the plugin, not in rcnn: run again with --verbose for its stack trace'),
      cause: options?.cause,
    });
    this.plugin = plugin;
    this.phase = phase;
  }
}

/** The reader of stdout went away (EPIPE): the command stops quietly with {@link EXIT.brokenPipe}. */
export class StdoutClosedError extends Error {
  constructor() {
    super('stdout was closed');
    this.name = 'StdoutClosedError';
  }
}

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
  E_OUTPUT: 'check the output path and the free space of its device; nothing was left there',
};

/** The message, hint and exit status for anything thrown. */
export function describeError(e: unknown, command: string | undefined): { message: string; hint: string | undefined; status: number } {
  const helpHint = `run rcnn ${command ? `${command} ` : ''}--help`;
  if (e instanceof UsageError) return { message: oneLine(e.message), hint: e.hint ?? helpHint, status: EXIT.usage };
  if (e instanceof PluginError) return { message: oneLine(e.message), hint: e.hint, status: e.phase === 'import' || e.phase === 'register()' ? EXIT.usage : EXIT.failure };
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
  if (e instanceof StdoutClosedError || (e as NodeJS.ErrnoException | undefined)?.code === 'EPIPE') return EXIT.brokenPipe;
  const { message, hint, status } = describeError(e, command);
  stderr.write(`rcnn${command ? ` ${command}` : ''}: error: ${message}\n`);
  if (hint) stderr.write(`  hint: ${oneLine(hint)}\n`);
  if (verbose && e instanceof Error && e.stack) stderr.write(`${e.stack}\n`);
  return status;
}
