/**
 * torchvision `roi_align` (CPU kernel, aligned = false, spatial scale 1, adaptive sampling) of one
 * 0/1 bitmap into one box, on the host: the mask head's training targets (`project_masks_on_boxes`).
 * float32 arithmetic as the kernel's.
 */
const f = Math.fround;

/** Bilinear value of `plane` [h, w] at (y, x) with torchvision's border rules (0 outside [-1, size]). */
function bilinear(plane: Uint8Array, h: number, w: number, y0: number, x0: number): number {
  if (y0 < -1 || y0 > h || x0 < -1 || x0 > w) return 0;
  let y = Math.max(y0, 0);
  let x = Math.max(x0, 0);
  let yLow = Math.trunc(y);
  let xLow = Math.trunc(x);
  let yHigh: number;
  let xHigh: number;
  if (yLow >= h - 1) {
    yHigh = yLow = h - 1;
    y = yLow;
  } else yHigh = yLow + 1;
  if (xLow >= w - 1) {
    xHigh = xLow = w - 1;
    x = xLow;
  } else xHigh = xLow + 1;
  const ly = f(y - yLow);
  const lx = f(x - xLow);
  const hy = f(1 - ly);
  const hx = f(1 - lx);
  const v = (yy: number, xx: number): number => plane[yy * w + xx]!;
  return f(f(f(f(f(hy * hx) * v(yLow, xLow)) + f(f(hy * lx) * v(yLow, xHigh))) + f(f(ly * hx) * v(yHigh, xLow))) + f(f(ly * lx) * v(yHigh, xHigh)));
}

/** RoIAligns `plane` [h, w] into `box` (x1, y1, x2, y2) at `size` x `size`, writing `out` [size * size]. */
export function roiAlignBitmap(plane: Uint8Array, h: number, w: number, box: ArrayLike<number>, size: number, out: Float32Array): void {
  const startW = f(box[0]!);
  const startH = f(box[1]!);
  const roiW = Math.max(f(f(box[2]!) - startW), 1);
  const roiH = Math.max(f(f(box[3]!) - startH), 1);
  const binH = f(roiH / size);
  const binW = f(roiW / size);
  const gridH = Math.ceil(f(roiH / size));
  const gridW = Math.ceil(f(roiW / size));
  const count = Math.max(gridH * gridW, 1);
  for (let ph = 0; ph < size; ph++) {
    for (let pw = 0; pw < size; pw++) {
      let sum = 0;
      for (let iy = 0; iy < gridH; iy++) {
        const y = f(f(startH + f(ph * binH)) + f(f(f(iy + 0.5) * binH) / gridH));
        for (let ix = 0; ix < gridW; ix++) {
          const x = f(f(startW + f(pw * binW)) + f(f(f(ix + 0.5) * binW) / gridW));
          sum = f(sum + bilinear(plane, h, w, y, x));
        }
      }
      out[ph * size + pw] = f(sum / count);
    }
  }
}
