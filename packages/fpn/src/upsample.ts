/**
 * PyTorch's `F.interpolate(x, size=like.shape[-2:], mode="nearest")` as an ONNX subgraph that is
 * exact for any pair of sizes.
 *
 * PyTorch picks source index `min(floor(o * s), in - 1)` with `s = float32(in) / float32(out)` and
 * the product rounded to float32. ONNX Resize (asymmetric, floor) divides by `float32(out / in)`
 * instead, and the two roundings disagree for some sizes: ORT 1.30 picks another source row for
 * 14 → 2 (o = 1: 6 instead of 7) and 6 → 74 (o = 37). So in general the indices are computed here
 * with PyTorch's float32 steps and applied with two Gathers. When both axes grow exactly 2x (every
 * level of a batch padded to a multiple of 32) `o / 2` is exact and Resize picks `o >> 1` like
 * PyTorch; an If node takes that branch, because the Gathers cost ~2.6% of an R-50-FPN forward
 * at 800x1088 (2 threads) and the If with its Resize ~0.5% (ORT profile, see the package README).
 */
import { type Blob, DIMS, type Dim, type GraphBuilder, attr, ops } from '@rcnn/core';

/**
 * Source indices [out] int64 of PyTorch's nearest mode along one axis, from `inSize` and
 * `outSize` given as int64 [1] blobs.
 */
export function nearestSourceIndices(g: GraphBuilder, inSize: Blob, outSize: Blob, name = 'nearest_index'): Blob {
  return g.withScope(name, () => {
    const scale = ops.div(g, ops.cast(g, inSize, 'float32', 'in_f'), ops.cast(g, outSize, 'float32', 'out_f'), 'scale');
    const count = ops.squeeze(g, outSize, [0], 'count');
    const dst = ops.cast(g, ops.range(g, g.constInt64(0, []), count, g.constInt64(1, []), 'dst'), 'float32', 'dst_f');
    const src = ops.cast(g, ops.floor(g, ops.mul(g, dst, scale, 'src_f'), 'src_floor'), 'int64', 'src');
    return ops.min(g, [src, ops.sub(g, inSize, g.constInt64([1]), 'last')], 'index');
  });
}

/** The PyTorch-exact upsample for any sizes: the column Gather first, on the smaller input, then rows. */
function gatherUpsample(g: GraphBuilder, x: Blob, like: Blob): Blob {
  const cols = nearestSourceIndices(g, ops.dim(g, x, 3, 'in_w'), ops.dim(g, like, 3, 'out_w'), 'cols');
  const rows = nearestSourceIndices(g, ops.dim(g, x, 2, 'in_h'), ops.dim(g, like, 2, 'out_h'), 'rows');
  return ops.gather(g, ops.gather(g, x, cols, 3, 'gather_cols'), rows, 2, 'gather_rows');
}

/**
 * `x` [N,C,h,w] → [N,C,2h,2w] by nearest neighbour, for FPN levels whose sizes are known to be
 * exactly 2x apart (inputs padded to a multiple of the top level's stride): PyTorch's source index
 * is then o >> 1, which Resize with constant scales 2 (asymmetric, floor) computes exactly. A
 * constant-scale Resize is what onnxruntime's NCHWc layout pass turns into its blocked upsample,
 * so the top-down sum stays in the conv kernels' layout (no reorders, no If): ~20 ms less per
 * R-50-FPN forward at 800x1088 (docs/performance.md). The caller must know the sizes are 2x apart:
 * the FPN uses it only when INPUT.SIZE_DIVISIBILITY is a multiple of the top level's stride, which
 * the image transform guarantees (a hand-fed exported model must pad the same way).
 */
export function nearestUpsample2x(g: GraphBuilder, x: Blob, name = 'upsample'): Blob {
  // Exactly three inputs (X, roi, scales): the layout pass skips a Resize with a `sizes` slot.
  return g.op('Resize', [x, null, g.constFloat32([1, 1, 2, 2])], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }, name);
}

/**
 * `x` [N,C,h,w] resized by PyTorch's nearest rule to the spatial size of `like` [N,?,H,W]. `dims`
 * is the result's shape as the `If` that picks the method declares it (default: `[N, C, H, W]` with
 * names of its own, `<name>_C` …, which say nothing about other tensors).
 */
export function nearestUpsampleLike(g: GraphBuilder, x: Blob, like: Blob, name = 'upsample', dims?: readonly Dim[]): Blob {
  const outDims = dims ?? [DIMS.images, `${name}_C`, `${name}_H`, `${name}_W`];
  return g.withScope(name, () => {
    // Exactly 2x on both axes (every level of a batch padded to a multiple of 32): Resize,
    // whose o / 2 is exact, so it picks o >> 1 as PyTorch does; it is ~2x faster than Gathers.
    const inHW = ops.shape(g, x, 2, 4, 'in_hw');
    const outHW = ops.shape(g, like, 2, 4, 'out_hw');
    const doubled = ops.cast(g, ops.equal(g, ops.mul(g, inHW, g.constInt64([2]), 'in_x2'), outHW, 'is_2x'), 'int64', 'is_2x_i');
    const both = ops.cast(g, g.op('ReduceMin', [doubled], { axes: [0], keepdims: 0 }, 'both_2x'), 'bool', 'cond');
    const sizes = ops.shape(g, like, undefined, undefined, 'sizes');
    const resize = g.subgraph('resize_2x', [], (body) => [
      { blob: ops.resize(body, x, ops.concat(body, [ops.shape(body, x, 0, 2, 'nc'), ops.slice(body, sizes, [2], [4], [0], undefined, 'hw')], 0, 'sizes'), { mode: 'nearest', coordinateTransformationMode: 'asymmetric', nearestMode: 'floor' }), dtype: 'float32', dims: outDims },
    ]);
    const gather = g.subgraph('gather_any', [], (body) => [{ blob: gatherUpsample(body, x, like), dtype: 'float32', dims: outDims }]);
    const [out] = g.node('If', [both], { then_branch: attr.graph(resize), else_branch: attr.graph(gather) }, { name: 'if_2x' });
    return out;
  });
}
