/**
 * How big an image becomes: torchvision's GeneralizedRCNNTransform scale rule (float32) or
 * Detectron's `prep_im_for_blob` rule (float64, rounded sizes), selected by `INPUT.RESIZE_RULE`.
 */
import type { RcnnConfig } from '@rcnn/core';
// The browser-safe entry: this module is part of @rcnn/backbone/web.
import { roundHalfEven } from '@rcnn/core/web';

/** Which resize rule: `INPUT.RESIZE_RULE`. */
export type ResizeRule = 'torchvision' | 'detectron' | 'detectron2';

/** Size of an image after resizing, and the scale that produced it. */
export interface ResizedSize {
  readonly height: number;
  readonly width: number;
  /** The scale factor as the rule computed it (float32-valued for torchvision). */
  readonly scale: number;
}

const f32 = Math.fround;

/**
 * torchvision: `scale = min(min_size / min(h, w), max_size / max(h, w))` where `python_float /
 * float32_tensor` is evaluated as `reciprocal() * min_size`, all in float32; the output size is
 * `floor(double(side) * scale)` (interpolate with `recompute_scale_factor=True`). E.g. 200x300
 * with min 160, max 256 gives scale 0.79999995 and 159x239, not 160x240.
 */
export function torchvisionResizedSize(height: number, width: number, minSize: number, maxSize: number): ResizedSize {
  const byShort = f32(f32(1 / Math.min(height, width)) * f32(minSize));
  const byLong = f32(f32(1 / Math.max(height, width)) * f32(maxSize));
  const scale = Math.min(byShort, byLong);
  return { height: Math.floor(height * scale), width: Math.floor(width * scale), scale };
}

/**
 * Detectron: `scale = min_size / short` in float64, unless `round(scale * long) > max_size`, then
 * `max_size / long`; cv2.resize(fx=fy=scale) makes each side `round(side * scale)`.
 */
export function detectronResizedSize(height: number, width: number, minSize: number, maxSize: number): ResizedSize {
  const short = Math.min(height, width);
  const long = Math.max(height, width);
  let scale = minSize / short;
  if (roundHalfEven(scale * long) > maxSize) scale = maxSize / long;
  return { height: roundHalfEven(height * scale), width: roundHalfEven(width * scale), scale };
}

/**
 * Detectron2 `ResizeShortestEdge.get_output_shape` (float64): the short side becomes `minSize` and
 * the long side `scale * long`; if that unrounded long side exceeds `maxSize` both are scaled by
 * `maxSize / long side`; each side is then `int(x + 0.5)`. E.g. 384x512 with 320 / 512 gives
 * 320x427 (426.67 rounds up).
 */
export function detectron2ResizedSize(height: number, width: number, minSize: number, maxSize: number): ResizedSize {
  const scale = minSize / Math.min(height, width);
  let newH = height < width ? minSize : scale * height;
  let newW = height < width ? scale * width : minSize;
  let factor = scale;
  if (Math.max(newH, newW) > maxSize) {
    const shrink = maxSize / Math.max(newH, newW);
    newH *= shrink;
    newW *= shrink;
    factor *= shrink;
  }
  return { height: Math.trunc(newH + 0.5), width: Math.trunc(newW + 0.5), scale: factor };
}

/** The resized size of an image under `config` (`INPUT.RESIZE_RULE`, `TEST.SCALE`, `TEST.MAX_SIZE`). */
export function resizedSize(height: number, width: number, config: RcnnConfig): ResizedSize {
  const rule: ResizeRule = config.INPUT.RESIZE_RULE;
  const resize = rule === 'detectron' ? detectronResizedSize : rule === 'detectron2' ? detectron2ResizedSize : torchvisionResizedSize;
  return resize(height, width, config.TEST.SCALE, config.TEST.MAX_SIZE);
}
