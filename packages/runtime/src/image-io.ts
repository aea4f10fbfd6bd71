/**
 * Image input: files and encoded buffers (JPEG, PNG, WebP and whatever else sharp reads) decoded
 * to 8-bit RGB with the EXIF orientation applied, or raw RGB pixels handed over as they are. Size
 * limits are checked on the header, before any pixel is decoded.
 */
import { InputError, LIMITS_SECTION, type RgbImage } from '@rcnn/core';
import sharp, { type Metadata } from 'sharp';
import { readImageFile } from './image-read.js';

/** Raw pixels: interleaved HWC RGB (`maxValue` 255 for 8-bit data, 1 for floats in [0, 1]). */
export type RawImage = RgbImage;

/** What the runtime accepts as one image: a file path, an encoded image in memory, or raw RGB pixels. */
export type ImageInput = string | Uint8Array | RawImage | { readonly data: Uint8Array; readonly name: string };

/** Bounds checked before decoding (`LIMITS.*` of the config). */
export interface ImageLimits {
  /** Most pixels (width * height) of a decoded image. */
  readonly maxPixels: number;
  /** Longest side of a decoded image. */
  readonly maxSide: number;
  /** Most bytes of an encoded image file, stream or buffer (`LIMITS.MAX_IMAGE_BYTES`; default its default). */
  readonly maxBytes?: number;
  /** Read FIFOs, character devices and sockets given as image paths (default false: refused). */
  readonly allowSpecialFiles?: boolean;
  /** Deadline for reading such a special file (`LIMITS.READ_TIMEOUT_MS`; default its default). */
  readonly readTimeoutMs?: number;
}

/** A decoded image and where it came from. */
export interface DecodedImage extends RgbImage {
  /** The file path, the buffer's name, or `<buffer i>` / `<pixels i>`. */
  readonly source: string;
  /** EXIF orientation that was applied (1 = none). */
  readonly orientation: number;
}

/** Encoded formats {@link decodeImage} accepts (sharp's names; `heif` is how sharp reports AVIF). */
export const ACCEPTED_IMAGE_FORMATS: readonly string[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif'];
const ACCEPTED_FORMATS: ReadonlySet<string | undefined> = new Set(ACCEPTED_IMAGE_FORMATS);
const FORMATS_HINT = 'JPEG, PNG, WebP, GIF, TIFF, AVIF';

/** True when `input` is raw pixels rather than a path or an encoded buffer. */
export function isRawImage(input: ImageInput): input is RawImage {
  return typeof input === 'object' && !(input instanceof Uint8Array) && 'width' in input && 'height' in input;
}

/** A printable name for input `index` (file path, buffer name or placeholder). */
export function describeInput(input: ImageInput, index: number): string {
  if (typeof input === 'string') return input;
  if (input instanceof Uint8Array) return `<buffer ${index}>`;
  if (isRawImage(input)) return `<pixels ${index}>`;
  return input.name;
}

function checkSize(width: number, height: number, limits: ImageLimits, source: string): void {
  if (width <= 0 || height <= 0) throw new InputError(`${source}: image has no pixels (${width} x ${height})`, { source });
  if (Math.max(width, height) > limits.maxSide) {
    throw new InputError(`${source}: image is ${width} x ${height}, longer than LIMITS.MAX_IMAGE_SIDE (${limits.maxSide})`, {
      source,
      hint: 'downscale the image, or raise LIMITS.MAX_IMAGE_SIDE (--set LIMITS.MAX_IMAGE_SIDE=…)',
    });
  }
  if (width * height > limits.maxPixels) {
    throw new InputError(`${source}: image is ${width} x ${height} = ${width * height} pixels, more than LIMITS.MAX_IMAGE_PIXELS (${limits.maxPixels})`, {
      source,
      hint: 'downscale the image, or raise LIMITS.MAX_IMAGE_PIXELS (--set LIMITS.MAX_IMAGE_PIXELS=…)',
    });
  }
}

/** Checks raw pixels (layout, length, value range type) and the limits. */
export function checkRawImage(image: RawImage, limits: ImageLimits, source: string): DecodedImage {
  const { width, height, data, maxValue } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height)) throw new InputError(`${source}: width and height must be integers`, { source });
  checkSize(width, height, limits, source);
  if (!(data instanceof Uint8Array) && !(data instanceof Float32Array)) {
    throw new InputError(`${source}: raw pixels must be a Uint8Array or Float32Array`, { source });
  }
  if (data.length !== width * height * 3) {
    throw new InputError(`${source}: raw pixels hold ${data.length} values but ${width} x ${height} RGB needs ${width * height * 3} (interleaved HWC, 3 channels)`, {
      source,
    });
  }
  if (!(maxValue > 0)) throw new InputError(`${source}: maxValue must be positive (255 for 8-bit, 1 for floats in [0, 1])`, { source });
  return { data, width, height, maxValue, source, orientation: 1 };
}

async function readInput(input: string | Uint8Array, source: string, limits: ImageLimits): Promise<{ bytes: Uint8Array; complete: boolean }> {
  const maxBytes = limits.maxBytes ?? LIMITS_SECTION.fields.MAX_IMAGE_BYTES.default;
  if (typeof input !== 'string') {
    if (!(input instanceof Uint8Array)) throw new InputError(`${source}: an encoded image must be a Uint8Array, got ${typeof input}`, { source });
    if (input.byteLength > maxBytes) {
      throw new InputError(`${source}: encoded image is ${input.byteLength} bytes, more than LIMITS.MAX_IMAGE_BYTES (${maxBytes})`, { source, hint: 'raise LIMITS.MAX_IMAGE_BYTES (--set LIMITS.MAX_IMAGE_BYTES=…)' });
    }
    return { bytes: input, complete: true };
  }
  return readImageFile(input, source, {
    maxBytes,
    allowSpecialFiles: limits.allowSpecialFiles ?? false,
    readTimeoutMs: limits.readTimeoutMs ?? LIMITS_SECTION.fields.READ_TIMEOUT_MS.default,
  });
}

/**
 * Decodes one input to 8-bit RGB. Files and buffers: the header is read first and the size
 * checked against `limits` (after EXIF rotation) before decoding; sharp's own pixel limit backs
 * that up. Gray is expanded to RGB, alpha dropped (not composited, as PIL's `convert('RGB')`),
 * 16-bit scaled to 8-bit. Anything unreadable is an {@link InputError} naming the source.
 */
export async function decodeImage(input: ImageInput, limits: ImageLimits, source = describeInput(input, 0)): Promise<DecodedImage> {
  if (isRawImage(input)) return checkRawImage(input, limits, source);
  const { bytes, complete } = await readInput(typeof input === 'string' || input instanceof Uint8Array ? input : input.data, source, limits);
  if (bytes.byteLength === 0) throw new InputError(`${source} is empty (0 bytes)`, { source, hint: 'the file was not written completely' });
  // 'warning' (sharp's advice for untrusted input): with 'error', a JPEG whose entropy-coded data is
  // corrupt ("bad Huffman code") decodes without complaint to damaged pixels, i.e. silently wrong detections.
  const options = { limitInputPixels: limits.maxPixels, failOn: 'warning' as const };
  let meta: Metadata;
  try {
    // The header alone: sharp's pixel limit would refuse here with a vaguer message than ours.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new InputError(`${source} is not a readable image: ${(e as Error).message}`, { source, hint: `supported formats: ${FORMATS_HINT}`, cause: e });
  }
  if (!complete && ACCEPTED_FORMATS.has(meta.format)) {
    // Only the head was read because it starts like no accepted format, yet sharp names one.
    throw new InputError(`${source} is not a readable image: it does not start like a ${FORMATS_HINT} file`, { source, hint: `supported formats: ${FORMATS_HINT}` });
  }
  if (!ACCEPTED_FORMATS.has(meta.format)) {
    // sharp also renders SVG (and whatever its libvips was built with): a vector document with
    // external references and unbounded rendering work is not an image a detector should open.
    throw new InputError(`${source} is ${meta.format ? `a ${meta.format.toUpperCase()} file` : 'in an unknown format'}, not an accepted image format (${FORMATS_HINT})`, {
      source,
      hint: 'convert it to PNG or JPEG',
    });
  }
  const oriented = meta.autoOrient ?? { width: meta.width ?? 0, height: meta.height ?? 0 };
  checkSize(oriented.width, oriented.height, limits, source);
  try {
    const { data, info } = await sharp(bytes, options)
      .rotate() // EXIF orientation: the model sees the pixels as a viewer shows them
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      maxValue: 255,
      source,
      orientation: meta.orientation ?? 1,
    };
  } catch (e) {
    throw new InputError(`${source} cannot be decoded: ${(e as Error).message}`, { source, hint: 'the file is corrupt or truncated (re-encode it if another viewer opens it)', cause: e });
  }
}
