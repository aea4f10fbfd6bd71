/**
 * Checks on output paths made before any work: a results file whose directory is missing, that is
 * a directory, that cannot be written, or that is one of the inputs (the same file by device and
 * inode, however it is spelled) is refused up front, not after minutes of inference — and an
 * output never overwrites an input.
 */
import { accessSync, constants, mkdirSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { OutputError } from '../errors.js';
import { describeSystemError } from './atomic-write.js';

/** An input file an output must not replace: its path and what it is (`image`, `weights`, …). */
export interface NamedInput {
  readonly path: string;
  readonly what: string;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** `device:inode` of an existing file (symlinks followed), or undefined when it does not exist. */
export function fileIdentity(path: string): string | undefined {
  const s = statOrUndefined(path);
  return s ? `${s.dev}:${s.ino}` : undefined;
}

/** The input that is the same file as `path` (device and inode), if any. */
export function sameFileAs(path: string, inputs: readonly NamedInput[]): NamedInput | undefined {
  const id = fileIdentity(path);
  if (id === undefined) return undefined;
  return inputs.find((i) => fileIdentity(i.path) === id);
}

/**
 * Throws an {@link OutputError} unless `path` can be written as a new or replaced file: its
 * directory exists and is writable, it is not a directory, and it is not one of `inputs`.
 * `what` names the output in messages (`results file`, `--dump file`, …).
 */
export function checkOutputFile(path: string, options: { what?: string; inputs?: readonly NamedInput[] } = {}): void {
  const what = options.what ?? 'output file';
  const existing = statOrUndefined(path);
  if (existing?.isDirectory()) {
    throw new OutputError(`${what} ${path} is a directory`, { file: path, errno: 'EISDIR', hint: 'give a file path' });
  }
  if (existing) {
    const input = sameFileAs(path, options.inputs ?? []);
    if (input) {
      throw new OutputError(`${what} ${path} is the ${input.what} ${input.path}: writing it would destroy that input`, {
        file: path,
        hint: 'write the output to another path',
      });
    }
  }
  const dir = dirname(resolve(path));
  const parent = statOrUndefined(dir);
  if (!parent) throw new OutputError(`cannot write ${what} ${path}: its directory ${dir} does not exist`, { file: path, errno: 'ENOENT', hint: 'create the directory first' });
  if (!parent.isDirectory()) throw new OutputError(`cannot write ${what} ${path}: ${dir} is not a directory`, { file: path, errno: 'ENOTDIR', hint: 'check the output path' });
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new OutputError(`cannot write ${what} ${path}: ${describeSystemError(e)} (directory ${dir})`, {
      file: path,
      errno: (e as NodeJS.ErrnoException).code ?? 'EACCES',
      hint: 'write to a directory you can write to',
      cause: e,
    });
  }
}

/**
 * Makes sure `dir` is a writable directory (creating it and its parents): an existing file there
 * is an {@link OutputError} (EEXIST) naming it, before any work.
 */
export function ensureOutputDirectory(dir: string, what = 'output directory'): void {
  const s = statOrUndefined(dir);
  if (s && !s.isDirectory()) throw new OutputError(`${what} ${dir} exists and is not a directory`, { file: dir, errno: 'EEXIST', hint: 'give a directory path (it is created if missing)' });
  if (!s) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new OutputError(`cannot create ${what} ${dir}: ${describeSystemError(e)}`, { file: dir, errno: (e as NodeJS.ErrnoException).code ?? 'EIO', hint: 'check the output path', cause: e });
    }
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new OutputError(`cannot write into ${what} ${dir}: ${describeSystemError(e)}`, { file: dir, errno: (e as NodeJS.ErrnoException).code ?? 'EACCES', hint: 'write to a directory you can write to', cause: e });
  }
}
