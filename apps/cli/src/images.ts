/** Image arguments: files, or directories expanded to the images they hold. */
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { InputError } from '@rcnn/core';
import { fileKind } from '@rcnn/runtime';

/** Extensions taken from a directory argument. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif'];

/** Options of {@link expandImages}. */
export interface ExpandImagesOptions {
  /** Accept FIFOs, devices and sockets given explicitly (`--allow-special-files`, e.g. `<(cat a.jpg)`). */
  readonly allowSpecialFiles?: boolean;
  /** Told about each directory entry that is skipped because it is not a regular file. */
  readonly onSkip?: (path: string, why: string) => void;
}

/**
 * Expands directories (their regular image files, sorted, not recursive) and checks that every
 * path exists before any model is built, so a typo fails in milliseconds. A FIFO or device inside
 * a directory is skipped (and reported through `onSkip`): it could block the batch forever. Given
 * explicitly it is refused unless `allowSpecialFiles`.
 */
export async function expandImages(args: readonly string[], options: ExpandImagesOptions = {}): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    let s;
    try {
      s = await stat(arg);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new InputError(`cannot read image ${arg}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { source: arg, hint: 'check the path' });
    }
    if (s.isDirectory()) {
      const names = (await readdir(arg)).filter((n) => IMAGE_EXTENSIONS.includes(extname(n).toLowerCase())).sort();
      const files: string[] = [];
      for (const n of names) {
        const path = join(arg, n);
        const entry = await stat(path).catch(() => undefined);
        if (entry?.isFile()) files.push(path);
        else options.onSkip?.(path, entry ? `${fileKind(entry)}, not a regular file` : 'cannot be read (a dangling link?)');
      }
      if (files.length === 0) throw new InputError(`directory ${arg} holds no images (${IMAGE_EXTENSIONS.join(', ')})`, { source: arg });
      out.push(...files);
    } else if (!s.isFile() && !options.allowSpecialFiles) {
      throw new InputError(`image ${arg} is ${fileKind(s)}, not a regular file: refused (it may never end or never deliver data)`, {
        source: arg,
        hint: 'pass --allow-special-files to read pipes such as <(cat a.jpg), within LIMITS.READ_TIMEOUT_MS and LIMITS.MAX_IMAGE_BYTES',
      });
    } else {
      out.push(arg);
    }
  }
  return out;
}
