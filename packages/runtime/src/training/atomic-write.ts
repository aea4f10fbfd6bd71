/**
 * Atomic file writes for checkpoints: temporary file in the same directory, fsync, rename, so a
 * crash, a full disk or Ctrl-C mid-save leaves the previous checkpoint intact. A local helper until
 * core's shared `writeFileAtomic` (branch `reliability`) is on main; same name and semantics, so
 * switching is an import change.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { TrainingError } from './errors.js';

/** Writes `data` to `path` atomically: either all of it is there afterwards, or `path` is as it was. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const tmp = resolve(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let handle: fsp.FileHandle | undefined;
  let created = false;
  try {
    handle = await fsp.open(tmp, 'wx', 0o666);
    created = true;
    let offset = 0;
    while (offset < bytes.byteLength) {
      const { bytesWritten } = await handle.write(bytes, offset, Math.min(bytes.byteLength - offset, 1 << 24));
      if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
      offset += bytesWritten;
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(tmp, path);
    created = false;
  } catch (e) {
    await handle?.close().catch(() => undefined);
    if (created) await fsp.unlink(tmp).catch(() => undefined);
    throw new TrainingError(`cannot write ${path}: ${(e as Error).message}`, { hint: 'check the --out directory and the free space; the previous checkpoint is intact', cause: e });
  }
}
