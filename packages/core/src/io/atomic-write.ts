/**
 * Writing output files so that a failure never leaves a truncated file: the bytes go to a temporary
 * file in the same directory, are flushed to the device (fsync) and the temporary file is renamed
 * over the target, which POSIX makes atomic. On any failure the temporary file is removed and the
 * error is an {@link OutputError} naming the target. Every writer of rcnn-node's outputs (results
 * JSON, drawings, tensor dumps, exported models, converted weights, bench reports) goes through
 * {@link writeFileAtomic}; training checkpoints should too, so a crash or a full disk mid-save keeps
 * the previous checkpoint intact.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, resolve } from 'node:path';
import { OutputError } from '../errors.js';

/** The file operations {@link writeFileAtomic} uses (replaceable to inject failures in tests). */
export interface AtomicWriteIO {
  open(path: string, flags: string, mode: number): Promise<fsp.FileHandle>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Permission bits of a new file (default 0o666, less the umask). */
  readonly mode?: number;
  /** File operations (default node:fs/promises); tests pass a failing one. */
  readonly io?: AtomicWriteIO;
}

const NODE_IO: AtomicWriteIO = { open: (p, f, m) => fsp.open(p, f, m), rename: fsp.rename, unlink: fsp.unlink };

/** Why a system call failed, in words (the code alone says little to a user). */
export function describeSystemError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOENT':
      return 'its directory does not exist';
    case 'ENOTDIR':
      return 'a parent of it is not a directory';
    case 'EISDIR':
      return 'it is a directory';
    case 'EFBIG':
      return 'the file is too large for the file system';
    case 'EIO':
      return 'input/output error on the device';
    default:
      return e instanceof Error ? e.message : String(e);
  }
}

function outputError(path: string, e: unknown): OutputError {
  if (e instanceof OutputError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const hint =
    code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG'
      ? 'free some space on that device or write somewhere else; nothing was left at the path'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'write to a directory you can write to'
        : 'check the output path';
  return new OutputError(`cannot write ${path}: ${describeSystemError(e)}`, { file: path, ...(code === undefined ? {} : { errno: code }), hint, cause: e });
}

/** The temporary name next to `path` (hidden, unique per process and call). */
function tempName(path: string): string {
  return resolve(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Writes `data` to `path` atomically: temporary file in the same directory, fsync, rename. Either
 * the whole new content is at `path` afterwards, or (on any error) `path` is as it was and the
 * temporary file is gone; errors are {@link OutputError}s naming `path`.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): Promise<void> {
  const io = options.io ?? NODE_IO;
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const tmp = tempName(path);
  let handle: fsp.FileHandle | undefined;
  let created = false;
  try {
    handle = await io.open(tmp, 'wx', options.mode ?? 0o666);
    created = true;
    let offset = 0;
    while (offset < bytes.byteLength) {
      const { bytesWritten } = await handle.write(bytes, offset, Math.min(bytes.byteLength - offset, 1 << 24));
      if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
      offset += bytesWritten;
    }
    // tmpfs and most file systems report ENOSPC at write time; NFS and some others only here.
    await handle.sync();
    await handle.close();
    handle = undefined;
    await io.rename(tmp, path);
    created = false;
  } catch (e) {
    await handle?.close().catch(() => undefined);
    if (created) await io.unlink(tmp).catch(() => undefined);
    throw outputError(path, e);
  }
}

/** {@link writeFileAtomic} for synchronous callers (e.g. converters that are synchronous end to end). */
export function writeFileAtomicSync(path: string, data: Uint8Array | string, options: { readonly mode?: number } = {}): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const tmp = tempName(path);
  let fd: number | undefined;
  let created = false;
  try {
    fd = fs.openSync(tmp, 'wx', options.mode ?? 0o666);
    created = true;
    let offset = 0;
    while (offset < bytes.byteLength) {
      const n = fs.writeSync(fd, bytes, offset, Math.min(bytes.byteLength - offset, 1 << 24));
      if (n <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
      offset += n;
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, path);
    created = false;
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing: the write error is the one to report
      }
    }
    if (created) fs.rmSync(tmp, { force: true });
    throw outputError(path, e);
  }
}
