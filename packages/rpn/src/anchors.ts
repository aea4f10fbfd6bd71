/**
 * Anchors of the RPN: torchvision's `AnchorGenerator` (default) or Detectron's `generate_anchors`
 * (MODEL.LEGACY_PLUS_ONE). Base anchors (one set per level, centred on the origin) are computed on
 * the host and stored as initializers; the per-location shifts are computed in the graph from the
 * actual feature and padded-image shapes, so anchors are right for every input size.
 */
import { ConfigError, type Blob, type FeatureMap, type FeatureMaps, type GraphBuilder, type RcnnConfig, ops, roundHalfEven } from '@rcnn/core';

/** Anchor sizes and aspect ratios of one RPN level. */
export interface LevelAnchorSpec {
  /** Anchor sizes (sqrt of area, pixels of the padded input). */
  readonly sizes: readonly number[];
  /** Aspect ratios h / w. */
  readonly aspectRatios: readonly number[];
}

/**
 * torchvision `AnchorGenerator.generate_anchors` in float32: `h = sqrt(r)`, `w = 1 / h`,
 * `ws = (w[:, None] * sizes[None, :]).view(-1)` (ratio-major: anchor a = ratio_index * n_sizes +
 * size_index), base = round([-ws, -hs, ws, hs] / 2). Returns [A * 4] (x1, y1, x2, y2).
 */
export function torchvisionBaseAnchors(spec: LevelAnchorSpec): Float32Array {
  const f = Math.fround;
  const out: number[] = [];
  for (const ratio of spec.aspectRatios) {
    // float32 sqrt and division: rounding the float64 result once is exact for these operations.
    const hRatio = f(Math.sqrt(f(ratio)));
    const wRatio = f(1 / hRatio);
    for (const size of spec.sizes) {
      const ws = f(wRatio * f(size));
      const hs = f(hRatio * f(size));
      out.push(roundHalfEven(-ws / 2), roundHalfEven(-hs / 2), roundHalfEven(ws / 2), roundHalfEven(hs / 2));
    }
  }
  return Float32Array.from(out);
}

/**
 * Detectron's `generate_anchors(stride, sizes, aspect_ratios)` (float64, as numpy): a reference
 * box [0, 0, stride - 1, stride - 1], enumerated over ratios (widths rounded), then over scales
 * sizes / stride, with the `+1` width convention; anchors are centred at (stride - 1) / 2.
 * Same ratio-major order as torchvision. Returns [A * 4].
 */
export function detectronBaseAnchors(spec: LevelAnchorSpec, stride: number): Float32Array {
  const ctr = 0.5 * (stride - 1);
  const out: number[] = [];
  const size = stride * stride;
  for (const ratio of spec.aspectRatios) {
    const ws = roundHalfEven(Math.sqrt(size / ratio));
    const hs = roundHalfEven(ws * ratio);
    for (const s of spec.sizes) {
      const scale = s / stride;
      const w = ws * scale;
      const h = hs * scale;
      out.push(ctr - 0.5 * (w - 1), ctr - 0.5 * (h - 1), ctr + 0.5 * (w - 1), ctr + 0.5 * (h - 1));
    }
  }
  return Float32Array.from(out);
}

/**
 * Detectron2's `DefaultAnchorGenerator.generate_cell_anchors` in float64, rounded once to float32:
 * `w = sqrt(size^2 / ratio)`, `h = ratio * w`, anchor `[-w/2, -h/2, w/2, h/2]`, NOT rounded to
 * integers (±22.627 x ±11.314 for size 32, ratio 0.5). Detectron2 enumerates size-major; this
 * returns torchvision's ratio-major order, which is the order the Detectron2 checkpoint reader
 * permutes the RPN's outputs into (identical when a level has one size). Returns [A * 4].
 */
export function detectron2BaseAnchors(spec: LevelAnchorSpec): Float32Array {
  const out: number[] = [];
  for (const ratio of spec.aspectRatios) {
    for (const size of spec.sizes) {
      const w = Math.sqrt((size * size) / ratio);
      const h = ratio * w;
      out.push(-w / 2, -h / 2, w / 2, h / 2);
    }
  }
  return Float32Array.from(out);
}

/**
 * The anchor sizes/ratios of each RPN level from the config: FPN levels use FPN.RPN_ANCHOR_SIZES
 * (explicit, one list per level from FPN.RPN_MIN_LEVEL) or FPN.RPN_ANCHOR_START_SIZE * 2^(level -
 * RPN_MIN_LEVEL), with FPN.RPN_ASPECT_RATIOS; a single level uses RPN.SIZES x RPN.ASPECT_RATIOS.
 */
export function levelAnchorSpecs(config: RcnnConfig, features: FeatureMaps): LevelAnchorSpec[] {
  if (!config.FPN.FPN_ON) {
    if (features.length !== 1) {
      throw new ConfigError(`the single-level RPN (FPN.FPN_ON false) got ${features.length} feature maps (${features.map((f) => f.name).join(', ')}); it needs exactly one`, {
        key: 'FPN.FPN_ON',
      });
    }
    return [{ sizes: config.RPN.SIZES, aspectRatios: config.RPN.ASPECT_RATIOS }];
  }
  const explicit = config.FPN.RPN_ANCHOR_SIZES;
  if (explicit.length > 0 && explicit.length !== features.length) {
    throw new ConfigError(`FPN.RPN_ANCHOR_SIZES has ${explicit.length} level(s) but the RPN runs on ${features.length} (${features.map((f) => f.name).join(', ')})`, {
      key: 'FPN.RPN_ANCHOR_SIZES',
    });
  }
  const specs = features.map((f: FeatureMap): LevelAnchorSpec => {
    const index = f.level - config.FPN.RPN_MIN_LEVEL;
    if (explicit.length === 0) return { sizes: [config.FPN.RPN_ANCHOR_START_SIZE * 2 ** index], aspectRatios: config.FPN.RPN_ASPECT_RATIOS };
    const sizes = explicit[index];
    if (index < 0 || sizes === undefined || sizes.length === 0) {
      throw new ConfigError(
        `FPN.RPN_ANCHOR_SIZES has ${explicit.length} level(s) from FPN.RPN_MIN_LEVEL ${config.FPN.RPN_MIN_LEVEL}, but feature map "${f.name}" is level ${f.level}`,
        { key: 'FPN.RPN_ANCHOR_SIZES', hint: 'give one non-empty list of sizes per RPN level (FPN.RPN_MIN_LEVEL..FPN.RPN_MAX_LEVEL)' },
      );
    }
    if (sizes.some((s) => !(s > 0))) throw new ConfigError(`FPN.RPN_ANCHOR_SIZES[${index}] must hold positive sizes, got ${JSON.stringify(sizes)}`, { key: 'FPN.RPN_ANCHOR_SIZES' });
    return { sizes, aspectRatios: config.FPN.RPN_ASPECT_RATIOS };
  });
  const counts = new Set(specs.map((s) => s.sizes.length * s.aspectRatios.length));
  if (counts.size > 1) {
    throw new ConfigError(`the RPN head is shared across levels, so every level needs the same number of anchors; FPN.RPN_ANCHOR_SIZES gives ${[...counts].join(', ')}`, {
      key: 'FPN.RPN_ANCHOR_SIZES',
    });
  }
  return specs;
}

/** Nominal stride of a feature map (1 / spatialScale), used by Detectron's anchors. */
export function nominalStride(f: FeatureMap): number {
  return Math.round(1 / f.spatialScale);
}

/** Options of {@link gridAnchors}. */
export interface GridAnchorOptions {
  /** [A, 4] base anchors centred on the origin (torchvision) or on (stride - 1) / 2 (Detectron). */
  readonly base: Float32Array;
  /**
   * Fixed stride (Detectron: the level's nominal stride); undefined = torchvision's
   * `padded_size // feature_size` per axis, computed in the graph.
   */
  readonly fixedStride?: number;
  /**
   * Shift of every anchor centre as a fraction of the stride (Detectron2 `ANCHOR_GENERATOR.OFFSET`,
   * `RPN.ANCHOR_OFFSET`): shifts are `offset * stride + arange(0, size) * stride`. Default 0.
   */
  readonly offset?: number;
}

/**
 * Anchors of one level over its feature grid, [h * w * A, 4] float32, in torchvision's order: for
 * each location (row-major y, x), for each base anchor. `shift = arange(0, size) * stride`, no
 * half-pixel offset.
 */
export function gridAnchors(g: GraphBuilder, feature: Blob, images: Blob, o: GridAnchorOptions): Blob {
  const a = o.base.length / 4;
  const hw = ops.shape(g, feature, 2, 4, 'hw'); // [2] int64 (h, w)
  const [h, w] = ops.split(g, hw, [1, 1], 0, 'hw_split');
  let strideY: Blob;
  let strideX: Blob;
  if (o.fixedStride === undefined) {
    // Integer division of the padded input size by the feature size, per axis (ONNX Div on
    // positive int64 truncates = floors), as torchvision's AnchorGenerator.
    const padded = ops.shape(g, images, 2, 4, 'padded_hw');
    const stride = ops.div(g, padded, hw, 'stride');
    [strideY, strideX] = ops.split(g, stride, [1, 1], 0, 'stride_split');
  } else {
    strideY = strideX = g.constInt64([o.fixedStride]);
  }
  const zero = g.constInt64(0);
  const one = g.constInt64(1);
  const offset = o.offset ?? 0;
  const shiftsOf = (size: Blob, stride: Blob, tag: string): Blob => {
    const idx = ops.range(g, zero, ops.squeeze(g, size, [0], `${tag}_n`), one, `${tag}_range`);
    const shift = ops.cast(g, ops.mul(g, idx, stride, `${tag}_int`), 'float32', `${tag}_shift`);
    if (offset === 0) return shift;
    // offset * stride + i * stride, each exact in float32 for image-sized values (torch.arange from offset * stride).
    const start = ops.mul(g, ops.cast(g, stride, 'float32', `${tag}_stride_f`), g.constFloat32(offset), `${tag}_start`);
    return ops.add(g, shift, start, `${tag}_shift_offset`);
  };
  const sy = ops.unsqueeze(g, shiftsOf(h, strideY, 'y'), [1], 'sy_col'); // [h,1]
  const sx = ops.unsqueeze(g, shiftsOf(w, strideX, 'x'), [0], 'sx_row'); // [1,w]
  const zeroGrid = ops.constantOfShape(g, hw, 0, 'float32', 'zero_grid'); // [h,w]
  const gx = ops.unsqueeze(g, ops.add(g, zeroGrid, sx, 'gx'), [2], 'gx3');
  const gy = ops.unsqueeze(g, ops.add(g, zeroGrid, sy, 'gy'), [2], 'gy3');
  const shifts = ops.reshape(g, ops.concat(g, [gx, gy, gx, gy], 2, 'shifts_hw4'), [-1, 1, 4], 'shifts'); // [h*w,1,4]
  const base = g.initializer('base_anchors', { dtype: 'float32', dims: [1, a, 4], data: o.base });
  return ops.reshape(g, ops.add(g, shifts, base, 'grid'), [-1, 4], 'anchors');
}
