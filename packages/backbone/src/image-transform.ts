/**
 * The host-side image transform (slot image-transform, `INPUT.TRANSFORM`): torchvision's
 * GeneralizedRCNNTransform — scale pixels, normalise FIRST, THEN bilinear resize, then zero-pad
 * the batch bottom/right — or Detectron's variant of it, chosen by `INPUT.*` keys.
 *
 * It runs on the host rather than in the ONNX graph (see the measurement in this package's
 * README): it matches torchvision to one float32 ulp where ORT's Resize is off by up to 4e-5 (its
 * source coordinates are rounded to float32), images of one batch have different sizes that one
 * graph input cannot hold before resizing, and its ~20 ms for a 480x640 → 800x1066 image is under
 * 1% of an R-50-FPN forward on the same CPU (ORT's Resize takes ~10 ms).
 */
import { type HostTensor, type ImageTransform, InputError, type PreparedBatch, type RcnnConfig, type RgbImage } from '@rcnn/core/web';
import { type LinearAxis, opencvLinearAxis, pytorchLinearAxis, resampleBilinear, resampleBilinearRgb8 } from './bilinear.js';
import { pilBilinearResizeRgb8 } from './pil-bilinear.js';
import { type ResizedSize, resizedSize } from './resize-rule.js';

const CHANNELS = 3;
const f32 = Math.fround;

/** Per-channel pixel → network value, in float32 steps as torchvision evaluates them. */
interface Normaliser {
  /** Source channel (RGB index) of each network channel (INPUT.FORMAT order). */
  readonly sourceChannel: readonly number[];
  /** Value of a raw sample `v` in network channel `c`. */
  value(c: number, v: number): number;
}

function normaliser(config: RcnnConfig, maxValue: number): Normaliser {
  const { FORMAT, PIXEL_RANGE, PIXEL_MEANS, PIXEL_STDS } = config.INPUT;
  const means = PIXEL_MEANS.map(f32);
  const stds = PIXEL_STDS.map(f32);
  // torchvision: x = f32(u8) / 255 (float32), then (x - mean) / std with float32 mean/std.
  // Detectron: raw 0..255 values minus the means (std 1). When the range equals the data's own
  // full scale the samples are used as they are, so 8-bit data stays exact for Detectron.
  const scaled = PIXEL_RANGE === maxValue ? (v: number) => v : (v: number) => f32(f32(v / maxValue) * PIXEL_RANGE);
  return {
    sourceChannel: FORMAT === 'BGR' ? [2, 1, 0] : [0, 1, 2],
    value: (c, v) => f32(f32(scaled(v) - means[c]!) / stds[c]!),
  };
}

/** The normalised value of every 8-bit level, per network channel. */
function levelTables(norm: Normaliser): Float32Array[] {
  return Array.from({ length: CHANNELS }, (_, c) => {
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) table[v] = norm.value(c, v);
    return table;
  });
}

/**
 * Writes float image `index` (samples in [0, maxValue]) as normalised planar float32 [3, H, W] into
 * `out`, checking that every sample is finite. (8-bit images go through {@link levelTables}.)
 */
function normaliseImage(image: RgbImage, index: number, norm: Normaliser, out: Float32Array): void {
  const { data, width, height } = image;
  const pixels = width * height;
  for (let c = 0; c < CHANNELS; c++) {
    const sc = norm.sourceChannel[c]!;
    const plane = c * pixels;
    for (let p = 0; p < pixels; p++) {
      const v = data[p * CHANNELS + sc]!;
      if (!Number.isFinite(v)) {
        throw new InputError(`image ${index}: sample ${p * CHANNELS + sc} (pixel ${p}, channel ${sc}) is ${v}; pixel data must be finite`, {
          source: `image ${index}`,
        });
      }
      out[plane + p] = norm.value(c, v);
    }
  }
}

function checkImage(image: RgbImage, index: number, config: RcnnConfig): void {
  const fail = (what: string, hint?: string): never => {
    throw new InputError(`image ${index}: ${what}`, { source: `image ${index}`, ...(hint ? { hint } : {}) });
  };
  const { width, height, data, maxValue } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) fail(`size ${width}x${height} is empty or not integral`);
  const { MAX_IMAGE_SIDE, MAX_IMAGE_PIXELS } = config.LIMITS;
  if (Math.max(width, height) > MAX_IMAGE_SIDE) fail(`size ${width}x${height} exceeds LIMITS.MAX_IMAGE_SIDE (${MAX_IMAGE_SIDE})`);
  if (width * height > MAX_IMAGE_PIXELS) fail(`${width * height} pixels exceed LIMITS.MAX_IMAGE_PIXELS (${MAX_IMAGE_PIXELS})`);
  if (!(data instanceof Uint8Array) && !(data instanceof Float32Array)) fail('data must be a Uint8Array or Float32Array');
  if (data.length !== width * height * CHANNELS) fail(`data holds ${data.length} values, expected ${width}x${height}x${CHANNELS} = ${width * height * CHANNELS} (interleaved RGB)`);
  if (!Number.isFinite(maxValue) || maxValue <= 0) fail(`maxValue ${maxValue} must be a positive number (255 for 8-bit data, 1 for floats in [0, 1])`);
}

/** Source-coordinate tables of both axes of one image under the configured resize rule. */
function axesFor(image: RgbImage, size: ResizedSize, config: RcnnConfig): { ay: LinearAxis; ax: LinearAxis } {
  if (config.INPUT.RESIZE_RULE === 'detectron') {
    return { ay: opencvLinearAxis(image.height, size.height, size.scale), ax: opencvLinearAxis(image.width, size.width, size.scale) };
  }
  // recompute_scale_factor=True: the kernel uses in/out of the floored size, not `scale`.
  return { ay: pytorchLinearAxis(image.height, size.height), ax: pytorchLinearAxis(image.width, size.width) };
}

/** Writes interleaved 8-bit RGB of `size` normalised into the planar padded batch `target`. */
function writeNormalised8(
  data: Uint8Array,
  size: ResizedSize,
  norm: Normaliser,
  target: { data: Float32Array; offset: number; planeStride: number; rowStride: number },
): void {
  const tables = levelTables(norm);
  for (let c = 0; c < CHANNELS; c++) {
    const table = tables[c]!;
    const sc = norm.sourceChannel[c]!;
    const plane = target.offset + c * target.planeStride;
    for (let y = 0; y < size.height; y++) {
      const row = plane + y * target.rowStride;
      const src = y * size.width * CHANNELS + sc;
      for (let x = 0; x < size.width; x++) target.data[row + x] = table[data[src + x * CHANNELS]!]!;
    }
  }
}

/** `size` rounded up to a multiple of `divisor` (0 = unchanged), torchvision's `batch_images`. */
export function padToMultiple(size: number, divisor: number): number {
  return divisor > 0 ? Math.ceil(size / divisor) * divisor : size;
}

/**
 * torchvision's GeneralizedRCNNTransform (eval) as an {@link ImageTransform}; Detectron's variant
 * with `INPUT.RESIZE_RULE: detectron`, `FORMAT: BGR`, `PIXEL_RANGE: 255`, `PIXEL_STDS: [1, 1, 1]`.
 * Reads `INPUT.FORMAT`, `PIXEL_RANGE`, `PIXEL_MEANS`, `PIXEL_STDS`, `RESIZE_RULE`,
 * `SIZE_DIVISIBILITY`, `TEST.SCALE`, `TEST.MAX_SIZE` and `LIMITS.*`.
 */
export class GeneralizedRCNNTransform implements ImageTransform {
  prepare(images: readonly RgbImage[], config: RcnnConfig): PreparedBatch {
    const n = images.length;
    if (n === 0) throw new InputError('the batch has no image', { source: 'batch' });
    if (n > config.LIMITS.MAX_BATCH) {
      throw new InputError(`the batch has ${n} images, more than LIMITS.MAX_BATCH (${config.LIMITS.MAX_BATCH}); image ${config.LIMITS.MAX_BATCH} is the first one over`, {
        source: `image ${config.LIMITS.MAX_BATCH}`,
        hint: 'split the batch or raise LIMITS.MAX_BATCH',
      });
    }
    images.forEach((image, i) => checkImage(image, i, config));
    const sizes = images.map((image, i) => {
      const size = resizedSize(image.height, image.width, config);
      if (size.height < 1 || size.width < 1) {
        throw new InputError(`image ${i}: ${image.width}x${image.height} resizes to ${size.width}x${size.height} (scale ${size.scale}); its aspect ratio is too extreme`, {
          source: `image ${i}`,
          // Not a damaged file: the shorter side rounds to 0 px once the longer one fits TEST.MAX_SIZE.
          hint: `crop or pad the image to an aspect ratio under about ${config.TEST.MAX_SIZE}:1 (the longer side is scaled to at most TEST.MAX_SIZE)`,
        });
      }
      return size;
    });
    const divisor = config.INPUT.SIZE_DIVISIBILITY;
    const padH = padToMultiple(Math.max(...sizes.map((s) => s.height)), divisor);
    const padW = padToMultiple(Math.max(...sizes.map((s) => s.width)), divisor);
    const plane = padH * padW;
    // Zero-initialised: the padding is exactly 0, as torchvision's batch_images.
    const batch = new Float32Array(n * CHANNELS * plane);
    const imageSizes = new BigInt64Array(n * 2);
    const originalSizes = new BigInt64Array(n * 2);
    images.forEach((image, i) => {
      const size = sizes[i]!;
      const norm = normaliser(config, image.maxValue);
      const { ay, ax } = axesFor(image, size, config);
      const scratch = new Float32Array(CHANNELS * image.height * size.width);
      const target = { data: batch, offset: i * CHANNELS * plane, planeStride: plane, rowStride: padW };
      if (config.INPUT.RESIZE_RULE === 'detectron2' && image.data instanceof Uint8Array) {
        // Detectron2 resizes the 8-bit image with PIL first, then normalises the 8-bit result.
        const resized = pilBilinearResizeRgb8(image.data, image.width, image.height, size.width, size.height);
        writeNormalised8(resized, size, norm, target);
      } else if (image.data instanceof Uint8Array) {
        // 8-bit pixels are normalised by table lookup inside the resampling: no normalised copy.
        resampleBilinearRgb8(image.data, norm.sourceChannel, levelTables(norm), ay, ax, target, scratch);
      } else {
        const normalised = new Float32Array(CHANNELS * image.width * image.height);
        normaliseImage(image, i, norm, normalised);
        resampleBilinear(normalised, CHANNELS, ay, ax, target, scratch);
      }
      imageSizes[2 * i] = BigInt(size.height);
      imageSizes[2 * i + 1] = BigInt(size.width);
      originalSizes[2 * i] = BigInt(image.height);
      originalSizes[2 * i + 1] = BigInt(image.width);
    });
    const images4d: HostTensor<'float32'> = { dtype: 'float32', dims: [n, CHANNELS, padH, padW], data: batch };
    return {
      images: images4d,
      imageSizes: { dtype: 'int64', dims: [n, 2], data: imageSizes },
      originalSizes: { dtype: 'int64', dims: [n, 2], data: originalSizes },
    };
  }
}
