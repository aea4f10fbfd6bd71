/**
 * Synthetic images for the suite, made with sharp at run time (nothing big is committed): smooth
 * and patterned RGB pixels, encodings in every format, and EXIF orientations computed
 * independently of sharp so that its auto-rotation can be checked pixel for pixel.
 */
import sharp from 'sharp';

/** Interleaved 8-bit RGB pixels. */
export interface Pixels {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** Smooth gradients (JPEG keeps them well, so lossy comparisons stay tight). */
export function gradient(width: number, height: number): Pixels {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      data[o] = 40 + Math.floor((160 * x) / Math.max(1, width - 1));
      data[o + 1] = 30 + Math.floor((180 * y) / Math.max(1, height - 1));
      data[o + 2] = 200 - Math.floor((150 * (x + y)) / Math.max(1, width + height - 2));
    }
  }
  return { data, width, height };
}

/**
 * A picture with a distinctive object: gradients, a bright square in the upper-left quadrant and a
 * dark bar on the right edge, plus seeded noise so that every seed gives different pixels.
 */
export function pattern(width: number, height: number, seed = 1): Pixels {
  const data = new Uint8Array(width * height * 3);
  let s = (seed * 2654435761) >>> 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1664525 + 1013904223) >>> 0;
      const o = (y * width + x) * 3;
      const square = x > width / 8 && x < width / 2.5 && y > height / 8 && y < height / 2;
      const bar = x > (width * 7) / 8 && y > height / 4;
      data[o] = square ? 250 : bar ? 10 : (x * 255) / width;
      data[o + 1] = square ? 235 : bar ? 20 : (y * 255) / height;
      data[o + 2] = square ? 40 : bar ? 30 : (s >>> 24) & 0xff;
    }
  }
  return { data, width, height };
}

/** Encoded formats the suite produces. */
export type EncodedFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff' | 'avif';

/** Encodes pixels with sharp (PNG/WebP lossless, JPEG quality 95), optionally with an EXIF orientation. */
export async function encode(px: Pixels, format: EncodedFormat, options: { orientation?: number; progressive?: boolean } = {}): Promise<Buffer> {
  let s = sharp(Buffer.from(px.data.buffer, px.data.byteOffset, px.data.byteLength), { raw: { width: px.width, height: px.height, channels: 3 } });
  if (options.orientation !== undefined) s = s.withMetadata({ orientation: options.orientation });
  switch (format) {
    case 'png':
      return s.png().toBuffer();
    case 'jpeg':
      return s.jpeg({ quality: 95, progressive: options.progressive ?? false }).toBuffer();
    case 'webp':
      return s.webp({ lossless: true }).toBuffer();
    case 'gif':
      return s.gif().toBuffer();
    case 'tiff':
      return s.tiff().toBuffer();
    case 'avif':
      return s.avif({ quality: 90 }).toBuffer();
  }
}

/** Where display pixel (x, y) comes from in the stored image of size (w, h), for EXIF orientation `o` (1..8). */
export function storedCoordinate(o: number, x: number, y: number, w: number, h: number): [number, number] {
  switch (o) {
    case 1:
      return [x, y];
    case 2:
      return [w - 1 - x, y]; // mirrored left-right
    case 3:
      return [w - 1 - x, h - 1 - y]; // rotated 180°
    case 4:
      return [x, h - 1 - y]; // mirrored top-bottom
    case 5:
      return [y, x]; // transposed: stored rows are display columns
    case 6:
      return [y, h - 1 - x]; // shown after a 90° clockwise turn
    case 7:
      return [w - 1 - y, h - 1 - x]; // transverse
    case 8:
      return [w - 1 - y, x]; // shown after a 90° counter-clockwise turn
    default:
      throw new RangeError(`EXIF orientation must be 1..8, got ${o}`);
  }
}

/** Whether orientation `o` swaps width and height (5..8). */
export const swapsAxes = (o: number): boolean => o >= 5;

/** The stored pixels that a viewer shows as `display` under EXIF orientation `o` (the EXIF definitions, not sharp's code). */
export function storedForDisplay(display: Pixels, o: number): Pixels {
  const w = swapsAxes(o) ? display.height : display.width;
  const h = swapsAxes(o) ? display.width : display.height;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < display.height; y++) {
    for (let x = 0; x < display.width; x++) {
      const [sx, sy] = storedCoordinate(o, x, y, w, h);
      data.set(display.data.subarray((y * display.width + x) * 3, (y * display.width + x) * 3 + 3), (sy * w + sx) * 3);
    }
  }
  return { data, width: w, height: h };
}

/** What a viewer shows for `stored` pixels under EXIF orientation `o`. */
export function displayForStored(stored: Pixels, o: number): Pixels {
  const dw = swapsAxes(o) ? stored.height : stored.width;
  const dh = swapsAxes(o) ? stored.width : stored.height;
  const data = new Uint8Array(dw * dh * 3);
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      const [sx, sy] = storedCoordinate(o, x, y, stored.width, stored.height);
      data.set(stored.data.subarray((sy * stored.width + sx) * 3, (sy * stored.width + sx) * 3 + 3), (y * dw + x) * 3);
    }
  }
  return { data, width: dw, height: dh };
}

/** Largest absolute difference and mean absolute difference of two equally sized pixel arrays. */
export function pixelDiff(a: Uint8Array | Float32Array, b: Uint8Array | Float32Array): { max: number; mean: number } {
  if (a.length !== b.length) throw new RangeError(`pixel arrays differ in length: ${a.length} vs ${b.length}`);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { max, mean: a.length === 0 ? 0 : sum / a.length };
}
