/**
 * What every drawing of results shares, whatever it draws on (sharp in Node, a canvas in a
 * browser): class colours, which detections are drawn in which order, the translucent mask layer,
 * the label text and the line / font sizes for an image size.
 */
import type { ImageDetections } from '@rcnn/core/web';
import type { ModelLabels } from './categories.js';
import { readMasks } from './extras.js';

/** A distinct colour per class (golden-angle hues), as [r, g, b]. */
export function classColour(label: number): [number, number, number] {
  const h = (label * 137.508) % 360;
  const s = 0.75;
  const v = 0.95;
  const c = v * s;
  const x = c * (1 - Math.abs(((h / 60) % 2) - 1));
  const m = v - c;
  const [r, g, b] = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x] : h < 240 ? [0, x, c] : h < 300 ? [x, 0, c] : [c, 0, x];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/** Detections at or above `minScore`, lowest score first (so the best is drawn on top). */
export function drawOrder(det: ImageDetections, minScore: number): number[] {
  return Array.from(det.scores.keys())
    .filter((d) => det.scores[d]! >= minScore)
    .sort((a, b) => det.scores[a]! - det.scores[b]!);
}

/** Line width and font size (px) for an image of `w` x `h`. */
export function drawSizes(w: number, h: number): { readonly line: number; readonly font: number } {
  return { line: Math.max(2, Math.round(Math.min(w, h) / 300)), font: Math.max(11, Math.round(Math.min(w, h) / 45)) };
}

/** `person 0.93`: the label drawn next to a box. */
export function detectionText(det: ImageDetections, d: number, labels: ModelLabels): string {
  return `${labels.categories[det.labels[d]!] ?? `class_${det.labels[d]}`} ${det.scores[d]!.toFixed(2)}`;
}

/**
 * The masks of the detections in `order` as one RGBA layer of the image's size (class colour,
 * `opacity`; later detections over earlier ones), or undefined without masks. Only each
 * detection's pasted crop is visited: no full-image mask per detection.
 */
export function maskLayerRgba(det: ImageDetections, order: readonly number[], w: number, h: number, opacity: number): Uint8ClampedArray | undefined {
  const masks = readMasks(det);
  if (!masks || order.length === 0) return undefined;
  const rgba = new Uint8ClampedArray(w * h * 4);
  const alpha = Math.round(opacity * 255);
  for (const d of order) {
    const [r, g, b] = classColour(det.labels[d]!);
    const crop = masks.crop(d);
    for (let y = 0; y < crop.height; y++) {
      for (let x = 0; x < crop.width; x++) {
        if (!(crop.probs[y * crop.width + x]! > masks.threshold)) continue;
        const p = (crop.y + y) * w + crop.x + x;
        rgba[4 * p] = r;
        rgba[4 * p + 1] = g;
        rgba[4 * p + 2] = b;
        rgba[4 * p + 3] = alpha;
      }
    }
  }
  return rgba;
}
