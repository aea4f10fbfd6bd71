/**
 * Drawings of results: the image with translucent masks (a raw RGBA layer), boxes, labels with
 * scores and keypoint skeletons (an SVG overlay), composited by sharp. Random-weights results get
 * a red banner across the top.
 */
import type { RcnnConfig } from '@rcnn/core';
import sharp, { type OverlayOptions } from 'sharp';
import type { ModelLabels } from './categories.js';
import type { ImageResult } from './detector.js';
import { classColour, detectionText, drawOrder, drawSizes, maskLayerRgba } from './draw-layers.js';
import { readKeypoints } from './extras.js';
import type { DecodedImage } from './image-io.js';

export { classColour };

/** Options of {@link drawResult}. */
export interface DrawOptions {
  readonly labels: ModelLabels;
  readonly config: RcnnConfig;
  /** Detections below this score are not drawn (default 0.5; 0 for random weights, whose scores are all low). */
  readonly minScore?: number;
  /** Opacity of the masks (default 0.45). */
  readonly maskOpacity?: number;
  /** Output format (default png). */
  readonly format?: 'png' | 'jpeg' | 'webp';
}

/** 8-bit RGB pixels of an image (float images in [0, maxValue] are scaled). */
function rgb8(image: DecodedImage): Uint8Array {
  if (image.data instanceof Uint8Array && image.maxValue === 255) return image.data;
  const scale = 255 / image.maxValue;
  return Uint8Array.from(image.data, (v) => Math.max(0, Math.min(255, Math.round(v * scale))));
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const css = ([r, g, b]: readonly number[]): string => `rgb(${r},${g},${b})`;

/** Draws `result` over its decoded image (`predict(…, { keepImages: true })`); returns the encoded image. */
export async function drawResult(result: ImageResult, options: DrawOptions): Promise<Buffer> {
  const image = result.image;
  if (!image) throw new Error('drawResult needs results of predict(…, { keepImages: true })');
  return drawOn(image, result, options);
}

/** Draws `result` over `image` (the image it was computed on). */
export async function drawOn(image: DecodedImage, result: ImageResult, options: DrawOptions): Promise<Buffer> {
  const { width: w, height: h } = image;
  const minScore = options.minScore ?? (result.randomWeights ? 0 : 0.5);
  const { line, font } = drawSizes(w, h);
  const svg: string[] = [];
  const layers: OverlayOptions[] = [];
  const det = result.detections;
  if (det) {
    const order = drawOrder(det, minScore);
    const rgba = maskLayerRgba(det, order, w, h, options.maskOpacity ?? 0.45);
    if (rgba) layers.push({ input: Buffer.from(rgba.buffer), raw: { width: w, height: h, channels: 4 } });
    const kp = readKeypoints(det);
    for (const d of order) {
      const colour = css(classColour(det.labels[d]!));
      const [x1, y1, x2, y2] = [det.boxes[4 * d]!, det.boxes[4 * d + 1]!, det.boxes[4 * d + 2]!, det.boxes[4 * d + 3]!];
      svg.push(`<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="${colour}" stroke-width="${line}"/>`);
      const text = detectionText(det, d, options.labels);
      const ty = Math.max(font + 2, y1);
      svg.push(`<rect x="${x1.toFixed(1)}" y="${(ty - font - 2).toFixed(1)}" width="${(text.length * font * 0.6 + 6).toFixed(1)}" height="${font + 4}" fill="${colour}" fill-opacity="0.85"/>`);
      svg.push(`<text x="${(x1 + 3).toFixed(1)}" y="${(ty - 3).toFixed(1)}" font-family="DejaVu Sans, sans-serif" font-size="${font}" fill="black">${esc(text)}</text>`);
      if (kp) {
        const k = kp.numKeypoints;
        const at = (j: number): [number, number] => [kp.keypoints[(d * k + j) * 3]!, kp.keypoints[(d * k + j) * 3 + 1]!];
        for (const [a, b] of options.labels.skeleton ?? []) {
          if (a >= k || b >= k) continue;
          const [ax, ay] = at(a);
          const [bx, by] = at(b);
          svg.push(`<line x1="${ax.toFixed(1)}" y1="${ay.toFixed(1)}" x2="${bx.toFixed(1)}" y2="${by.toFixed(1)}" stroke="${colour}" stroke-width="${line}"/>`);
        }
        for (let j = 0; j < k; j++) {
          const [x, y] = at(j);
          svg.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${line + 1}" fill="white" stroke="${colour}" stroke-width="${Math.max(1, line - 1)}"/>`);
        }
      }
    }
  }
  if (result.proposals) {
    const p = result.proposals;
    for (let i = 0; i < Math.min(p.count, 50); i++) {
      const [x1, y1, x2, y2] = [p.boxes[4 * i]!, p.boxes[4 * i + 1]!, p.boxes[4 * i + 2]!, p.boxes[4 * i + 3]!];
      svg.push(`<rect x="${x1.toFixed(1)}" y="${y1.toFixed(1)}" width="${(x2 - x1).toFixed(1)}" height="${(y2 - y1).toFixed(1)}" fill="none" stroke="yellow" stroke-opacity="0.6" stroke-width="1"/>`);
    }
  }
  if (result.randomWeights) {
    const banner = 'RANDOM WEIGHTS: detections are meaningless';
    // Fit the banner to narrow images (bold DejaVu is about 0.65 em per character).
    const size = Math.max(8, Math.min(font, Math.floor((w - 12) / (banner.length * 0.65))));
    const bh = size + 10;
    svg.push(`<rect x="0" y="0" width="${w}" height="${bh}" fill="rgb(200,0,0)" fill-opacity="0.85"/>`);
    svg.push(`<text x="6" y="${bh - 7}" font-family="DejaVu Sans, sans-serif" font-weight="bold" font-size="${size}" fill="white">${banner}</text>`);
  }
  if (svg.length > 0) layers.push({ input: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${svg.join('')}</svg>`) });
  const base = sharp(Buffer.from(rgb8(image)), { raw: { width: w, height: h, channels: 3 } });
  const composed = layers.length > 0 ? base.composite(layers) : base;
  const format = options.format ?? 'png';
  return format === 'jpeg' ? composed.jpeg({ quality: 90 }).toBuffer() : format === 'webp' ? composed.webp().toBuffer() : composed.png().toBuffer();
}
