/**
 * Reading image files with bounds: a regular file larger than `LIMITS.MAX_IMAGE_BYTES` is refused
 * from its size; its first bytes are read first and, unless they start like an accepted format,
 * nothing more is read (a 2 GB file of zeros costs one small read). Special files — FIFOs, `/dev/zero`,
 * sockets — never end or block forever, so they are refused unless the caller opts in
 * (`allowSpecialFiles`, `--allow-special-files`: e.g. a shell process substitution `<(curl …)`),
 * and then read with the same byte bound and a deadline (`LIMITS.READ_TIMEOUT_MS`).
 */
import { constants, createReadStream, open as openFd, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import { InputError } from '@rcnn/core';

/** Bytes read first to recognise the format (and, for most files, the size). */
export const IMAGE_HEAD_BYTES = 64 * 1024;

/** How {@link readImageFile} reads. */
export interface ImageReadLimits {
  /** Most bytes an image file or stream may have (`LIMITS.MAX_IMAGE_BYTES`). */
  readonly maxBytes: number;
  /** Accept FIFOs, character devices and sockets (default false). */
  readonly allowSpecialFiles?: boolean;
  /** Deadline for reading a special file, in ms (`LIMITS.READ_TIMEOUT_MS`). */
  readonly readTimeoutMs: number;
}

/** What {@link readImageFile} read. */
export interface ImageBytes {
  readonly bytes: Uint8Array;
  /** False when only the head was read because it does not start like an accepted format. */
  readonly complete: boolean;
}

/** True when `head` starts like one of the accepted encoded formats (JPEG, PNG, WebP, GIF, TIFF, AVIF/HEIF). */
export function looksLikeAcceptedImage(head: Uint8Array): boolean {
  const at = (i: number, ...b: number[]): boolean => b.every((v, k) => head[i + k] === v);
  const ascii = (i: number, s: string): boolean => at(i, ...[...s].map((c) => c.charCodeAt(0)));
  return (
    at(0, 0xff, 0xd8, 0xff) ||
    at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a) ||
    (ascii(0, 'RIFF') && ascii(8, 'WEBP')) ||
    ascii(0, 'GIF87a') ||
    ascii(0, 'GIF89a') ||
    at(0, 0x49, 0x49, 0x2a, 0x00) ||
    at(0, 0x4d, 0x4d, 0x00, 0x2a) ||
    at(0, 0x49, 0x49, 0x2b, 0x00) ||
    at(0, 0x4d, 0x4d, 0x00, 0x2b) ||
    ascii(4, 'ftyp')
  );
}

/** What kind of file a non-regular one is, in words. */
export function fileKind(s: Stats): string {
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  if (s.isDirectory()) return 'a directory';
  return 'not a regular file';
}

function tooLarge(source: string, what: string, maxBytes: number): InputError {
  return new InputError(`${source}: ${what}, more than LIMITS.MAX_IMAGE_BYTES (${maxBytes})`, {
    source,
    hint: 'downscale or recompress the image, or raise LIMITS.MAX_IMAGE_BYTES (--set LIMITS.MAX_IMAGE_BYTES=…)',
  });
}

function readFailure(source: string, e: unknown): InputError {
  if (e instanceof InputError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
  return new InputError(`cannot read image ${source}: ${why}`, { source, hint: 'check the path', cause: e });
}

/** A regular file: the size checked, the head read, the rest only for a recognised format. */
async function readRegular(path: string, size: number, source: string, limits: ImageReadLimits): Promise<ImageBytes> {
  if (size > limits.maxBytes) throw tooLarge(source, `file is ${size} bytes`, limits.maxBytes);
  const handle = await open(path, 'r');
  try {
    const head = new Uint8Array(Math.min(size, IMAGE_HEAD_BYTES));
    const { bytesRead } = await handle.read(head, 0, head.byteLength, 0);
    if (!looksLikeAcceptedImage(head.subarray(0, bytesRead)) || bytesRead >= size) {
      return { bytes: head.subarray(0, bytesRead), complete: bytesRead >= size };
    }
    // The file may have grown since stat: read at most maxBytes + 1 to notice.
    const all = Buffer.allocUnsafe(size);
    all.set(head.subarray(0, bytesRead), 0);
    let filled = bytesRead;
    while (filled < size) {
      const r = await handle.read(all, filled, size - filled, filled);
      if (r.bytesRead === 0) break;
      filled += r.bytesRead;
    }
    return { bytes: new Uint8Array(all.buffer, all.byteOffset, filled), complete: true };
  } finally {
    await handle.close();
  }
}

/** A FIFO, socket or character device: read to its end within the byte bound and the deadline. */
async function readSpecial(path: string, s: Stats, source: string, limits: ImageReadLimits): Promise<ImageBytes> {
  // O_NONBLOCK: opening a FIFO that has no writer would otherwise block a libuv thread for good.
  // A raw descriptor (not a FileHandle): the stream owns it and closes it when destroyed.
  const fd = await new Promise<number>((resolve, reject) => openFd(path, constants.O_RDONLY | constants.O_NONBLOCK, (e, d) => (e ? reject(e) : resolve(d))));
  const pipe = s.isFIFO() || s.isSocket();
  const stream = pipe ? new Socket({ fd, readable: true, writable: false }) : createReadStream('', { fd, autoClose: true });
  const chunks: Buffer[] = [];
  let total = 0;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new InputError(`${source}: ${fileKind(s)} delivered ${total} bytes and did not end within LIMITS.READ_TIMEOUT_MS (${limits.readTimeoutMs} ms)`, {
        source,
        hint: 'make sure something writes the whole image and closes the pipe, or raise LIMITS.READ_TIMEOUT_MS',
      })), limits.readTimeoutMs);
      stream.on('data', (chunk: Buffer | string) => {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        total += b.byteLength;
        if (total > limits.maxBytes) {
          reject(tooLarge(source, `${fileKind(s)} delivered more than ${limits.maxBytes} bytes without ending`, limits.maxBytes));
          return;
        }
        chunks.push(b);
      });
      stream.once('end', () => resolve());
      stream.once('error', (e: Error) => reject(readFailure(source, e)));
    });
  } finally {
    clearTimeout(timer);
    stream.destroy();
  }
  const bytes = Buffer.concat(chunks, total);
  return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), complete: true };
}

/**
 * Reads an image file within `limits`. Regular files: refused from their size when larger than
 * `maxBytes`; only the head is returned (`complete: false`) when it does not start like an
 * accepted format. Directories are refused; special files unless `allowSpecialFiles`. Errors are
 * {@link InputError}s naming `source`.
 */
export async function readImageFile(path: string, source: string, limits: ImageReadLimits): Promise<ImageBytes> {
  let s: Stats;
  try {
    s = await stat(path);
  } catch (e) {
    throw readFailure(source, e);
  }
  if (s.isDirectory()) throw new InputError(`${source} is a directory, not an image`, { source });
  try {
    if (s.isFile()) return await readRegular(path, s.size, source, limits);
    if (!limits.allowSpecialFiles) {
      throw new InputError(`${source} is ${fileKind(s)}, not a regular file: refused (it may never end or never deliver data)`, {
        source,
        hint: 'pass --allow-special-files (allowSpecialFiles: true) to read pipes such as <(cat a.jpg), with a time limit',
      });
    }
    return await readSpecial(path, s, source, limits);
  } catch (e) {
    throw readFailure(source, e);
  }
}
