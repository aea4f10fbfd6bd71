/** Image arguments: files, or directories expanded to the images they hold. */
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { InputError } from '@rcnn/core';

/** Extensions taken from a directory argument. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif'];

/**
 * Expands directories (their image files, sorted, not recursive) and checks that every path
 * exists before any model is built, so a typo fails in milliseconds.
 */
export async function expandImages(args: readonly string[]): Promise<string[]> {
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
      if (names.length === 0) throw new InputError(`directory ${arg} holds no images (${IMAGE_EXTENSIONS.join(', ')})`, { source: arg });
      out.push(...names.map((n) => join(arg, n)));
    } else {
      out.push(arg);
    }
  }
  return out;
}
