/**
 * Drawing results onto an HTML canvas (or an OffscreenCanvas, or any object with the same 2D
 * context methods): the same drawing as {@link drawOn} makes with sharp — translucent masks,
 * boxes, labels with scores, keypoint skeletons — for browser pages. The context is typed by the
 * few methods used, so this module needs neither the DOM library nor a canvas package.
 */
import type { ImageDetections } from '@rcnn/core/web';
import type { ModelLabels } from './categories.js';
import { classColour, detectionText, drawOrder, drawSizes, maskLayerRgba } from './draw-layers.js';
import { readKeypoints } from './extras.js';

/** Pixels a 2D context accepts (the DOM's ImageData). */
export interface CanvasImageDataLike {
  readonly data: Uint8ClampedArray;
  readonly width: number;
  readonly height: number;
}

/** The methods of `CanvasRenderingContext2D` the drawing uses. */
export interface Canvas2DLike {
  strokeStyle: unknown;
  fillStyle: unknown;
  lineWidth: number;
  font: string;
  globalAlpha: number;
  createImageData(width: number, height: number): CanvasImageDataLike;
  getImageData(x: number, y: number, width: number, height: number): CanvasImageDataLike;
  putImageData(data: CanvasImageDataLike, x: number, y: number): void;
  strokeRect(x: number, y: number, w: number, h: number): void;
  fillRect(x: number, y: number, w: number, h: number): void;
  fillText(text: string, x: number, y: number): void;
  measureText(text: string): { readonly width: number };
  beginPath(): void;
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  arc(x: number, y: number, r: number, start: number, end: number): void;
  stroke(): void;
  fill(): void;
}

/** Options of {@link drawDetectionsOnCanvas}. */
export interface CanvasDrawOptions {
  readonly labels: ModelLabels;
  /** Detections below this score are not drawn (default 0.5). */
  readonly minScore?: number;
  /** Opacity of the masks (default 0.45). */
  readonly maskOpacity?: number;
}

const css = ([r, g, b]: readonly number[]): string => `rgb(${r},${g},${b})`;

/**
 * Draws one image's detections (original-image pixels) over what the context already shows (the
 * image, drawn 1:1 at the origin). Returns how many detections were drawn.
 */
export function drawDetectionsOnCanvas(ctx: Canvas2DLike, det: ImageDetections, width: number, height: number, options: CanvasDrawOptions): number {
  const order = drawOrder(det, options.minScore ?? 0.5);
  const { line, font } = drawSizes(width, height);
  const rgba = maskLayerRgba(det, order, width, height, options.maskOpacity ?? 0.45);
  if (rgba) {
    // Alpha-blend the mask layer into the pixels (putImageData would replace them).
    const under = ctx.getImageData(0, 0, width, height);
    const px = under.data;
    for (let i = 0; i < rgba.length; i += 4) {
      const a = rgba[i + 3]! / 255;
      if (a === 0) continue;
      px[i] = px[i]! * (1 - a) + rgba[i]! * a;
      px[i + 1] = px[i + 1]! * (1 - a) + rgba[i + 1]! * a;
      px[i + 2] = px[i + 2]! * (1 - a) + rgba[i + 2]! * a;
    }
    ctx.putImageData(under, 0, 0);
  }
  const kp = readKeypoints(det);
  ctx.font = `${font}px "DejaVu Sans", sans-serif`;
  for (const d of order) {
    const colour = css(classColour(det.labels[d]!));
    const [x1, y1, x2, y2] = [det.boxes[4 * d]!, det.boxes[4 * d + 1]!, det.boxes[4 * d + 2]!, det.boxes[4 * d + 3]!];
    ctx.globalAlpha = 1;
    ctx.strokeStyle = colour;
    ctx.lineWidth = line;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = detectionText(det, d, options.labels);
    const ty = Math.max(font + 2, y1);
    ctx.globalAlpha = 0.85;
    ctx.fillStyle = colour;
    ctx.fillRect(x1, ty - font - 2, ctx.measureText(text).width + 6, font + 4);
    ctx.globalAlpha = 1;
    ctx.fillStyle = 'black';
    ctx.fillText(text, x1 + 3, ty - 3);
    if (kp) {
      const k = kp.numKeypoints;
      const at = (j: number): [number, number] => [kp.keypoints[(d * k + j) * 3]!, kp.keypoints[(d * k + j) * 3 + 1]!];
      ctx.strokeStyle = colour;
      for (const [a, b] of options.labels.skeleton ?? []) {
        if (a >= k || b >= k) continue;
        ctx.beginPath();
        ctx.moveTo(...at(a));
        ctx.lineTo(...at(b));
        ctx.stroke();
      }
      ctx.fillStyle = 'white';
      ctx.lineWidth = Math.max(1, line - 1);
      for (let j = 0; j < k; j++) {
        const [x, y] = at(j);
        ctx.beginPath();
        ctx.arc(x, y, line + 1, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
    }
  }
  return order.length;
}
