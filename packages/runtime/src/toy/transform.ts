/** The toy image transform: nearest-neighbour resize by torchvision's size rule, normalise, pad. */
import { type ImageTransform, type PreparedBatch, type RcnnConfig, type RgbImage, hostTensor } from '@rcnn/core';

/** Resized size of an (h, w) image: scale = min(SCALE / short side, MAX_SIZE / long side), floored. */
export function toyResizedSize(h: number, w: number, config: RcnnConfig): [number, number] {
  const scale = Math.min(config.TEST.SCALE / Math.min(h, w), config.TEST.MAX_SIZE / Math.max(h, w));
  return [Math.max(1, Math.floor(h * scale)), Math.max(1, Math.floor(w * scale))];
}

/** Toy transform (`Toy.transform`): enough of GeneralizedRCNNTransform for tests, nothing more. */
export const toyTransform: ImageTransform = {
  prepare(images: readonly RgbImage[], config: RcnnConfig): PreparedBatch {
    const sizes = images.map((im) => toyResizedSize(im.height, im.width, config));
    const div = config.INPUT.SIZE_DIVISIBILITY;
    const up = (v: number): number => (div > 0 ? Math.ceil(v / div) * div : v);
    const hp = up(Math.max(...sizes.map((s) => s[0])));
    const wp = up(Math.max(...sizes.map((s) => s[1])));
    const out = new Float32Array(images.length * 3 * hp * wp);
    const { PIXEL_MEANS: mean, PIXEL_STDS: std, PIXEL_RANGE: range, FORMAT: format } = config.INPUT;
    images.forEach((im, n) => {
      const [h, w] = sizes[n]!;
      for (let c = 0; c < 3; c++) {
        const src = format === 'BGR' ? 2 - c : c;
        const base = (n * 3 + c) * hp * wp;
        for (let y = 0; y < h; y++) {
          const sy = Math.min(im.height - 1, Math.floor(((y + 0.5) * im.height) / h));
          for (let x = 0; x < w; x++) {
            const sx = Math.min(im.width - 1, Math.floor(((x + 0.5) * im.width) / w));
            const v = (im.data[(sy * im.width + sx) * 3 + src]! / im.maxValue) * range;
            out[base + y * wp + x] = (v - mean[c]!) / std[c]!;
          }
        }
      }
    });
    const i64 = (pairs: number[][]): BigInt64Array => BigInt64Array.from(pairs.flat(), (v) => BigInt(v));
    return {
      images: hostTensor('float32', [images.length, 3, hp, wp], out),
      imageSizes: hostTensor('int64', [images.length, 2], i64(sizes)),
      originalSizes: hostTensor('int64', [images.length, 2], i64(images.map((im) => [im.height, im.width]))),
    };
  },
};
