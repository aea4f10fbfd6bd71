/**
 * Brute-force reference for the keypoint decoder's tests and benchmark: the whole bicubic resize,
 * written independently of src/ after PyTorch 1.13's CPU kernel (compute_indices_weights for
 * each axis, then for every output pixel the 4 horizontal interpolations of 4 rows combined
 * vertically, all in float32), followed by a first-max argmax.
 */
const f32 = Math.fround;

/** Per-axis indices and weights as PyTorch's HelperInterpCubic computes them. */
function indicesWeights(inSize: number, outSize: number): { idx: Int32Array; wts: Float32Array } {
  const A = f32(-0.75);
  const conv1 = (x: number): number => f32(f32(f32(f32(f32(f32(A + 2) * x) - f32(A + 3)) * x) * x) + 1);
  const conv2 = (x: number): number => f32(f32(f32(f32(f32(f32(A * x) - f32(5 * A)) * x) + f32(8 * A)) * x) - f32(4 * A));
  const scale = f32(inSize / outSize);
  const idx = new Int32Array(outSize * 4);
  const wts = new Float32Array(outSize * 4);
  for (let i = 0; i < outSize; i++) {
    const real = f32(f32(scale * f32(i + 0.5)) - 0.5);
    const index = Math.floor(real);
    const t = f32(real - index);
    const coeffs = [conv2(f32(t + 1)), conv1(t), conv1(f32(1 - t)), conv2(f32(f32(1 - t) + 1))];
    for (let j = 0; j < 4; j++) {
      idx[4 * i + j] = Math.max(Math.min(index + j - 1, inSize - 1), 0);
      wts[4 * i + j] = coeffs[j]!;
    }
  }
  return { idx, wts };
}

/** F.interpolate(mode='bicubic', align_corners=False) of one map, materialised. */
export function resizeBicubicReference(map: ArrayLike<number>, offset: number, inH: number, inW: number, outH: number, outW: number): Float32Array {
  const ys = indicesWeights(inH, outH);
  const xs = indicesWeights(inW, outW);
  const out = new Float32Array(outH * outW);
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      let acc = 0;
      for (let j = 0; j < 4; j++) {
        const row = offset + ys.idx[4 * oy + j]! * inW;
        let t = 0;
        for (let l = 0; l < 4; l++) {
          const p = f32(map[row + xs.idx[4 * ox + l]!]! * xs.wts[4 * ox + l]!);
          t = l === 0 ? p : f32(t + p);
        }
        const p = f32(t * ys.wts[4 * oy + j]!);
        acc = j === 0 ? p : f32(acc + p);
      }
      out[oy * outW + ox] = acc;
    }
  }
  return out;
}

/** torch.argmax of a flat array: the first maximum, or the first NaN if there is one. */
export function argmaxReference(values: Float32Array): number {
  let best = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) return i;
    if (values[i]! > values[best]!) best = i;
  }
  return best;
}

/** Resize-then-argmax of one map: (x, y, value). */
export function bicubicArgmaxReference(map: ArrayLike<number>, offset: number, inH: number, inW: number, outH: number, outW: number): { x: number; y: number; value: number } {
  const resized = resizeBicubicReference(map, offset, inH, inW, outH, outW);
  const pos = argmaxReference(resized);
  return { x: pos % outW, y: Math.floor(pos / outW), value: resized[pos]! };
}

/** torchvision heatmaps_to_keypoints by brute force: keypoints [n*K*3] and scores [n*K] in the boxes' coordinates. */
export function heatmapsToKeypointsReference(
  heatmaps: Float32Array,
  dims: readonly number[],
  start: number,
  boxes: ArrayLike<number>,
  n: number,
  minBoxSize = 1,
): { keypoints: Float32Array; scores: Float32Array } {
  const [, k, inH, inW] = dims as [unknown, number, number, number];
  const keypoints = new Float32Array(n * k * 3);
  const scores = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const [x1, y1, x2, y2] = [0, 1, 2, 3].map((c) => f32(boxes[4 * i + c]!)) as [number, number, number, number];
    const w = Math.max(f32(x2 - x1), minBoxSize);
    const h = Math.max(f32(y2 - y1), minBoxSize);
    const outW = Math.ceil(w);
    const outH = Math.ceil(h);
    for (let q = 0; q < k; q++) {
      const r = bicubicArgmaxReference(heatmaps, ((start + i) * k + q) * inH * inW, inH, inW, outH, outW);
      keypoints[(i * k + q) * 3] = f32(f32(f32(r.x + 0.5) * f32(w / outW)) + x1);
      keypoints[(i * k + q) * 3 + 1] = f32(f32(f32(r.y + 0.5) * f32(h / outH)) + y1);
      keypoints[(i * k + q) * 3 + 2] = 1;
      scores[i * k + q] = r.value;
    }
  }
  return { keypoints, scores };
}
