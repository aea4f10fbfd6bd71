/**
 * Moving between the per-image padded layout ([N,K,…] with a valid mask) and the flattened
 * layout ([R,…] with a batch index) that RoIAlign and the final outputs use.
 */
import type { Blob, GraphBuilder } from '../graph/builder.js';
import * as ops from '../graph/onnx-ops.js';
import type { Proposals, Rois } from '../model/contracts.js';

/** [N,K] int64 grid whose entry (n, k) is n, shaped like the first two axes of `like` [N,K,…]. */
export function batchIndexGrid(g: GraphBuilder, like: Blob): Blob {
  return g.withScope('batch_grid', () => {
    const nk = ops.shape(g, like, 0, 2, 'nk');
    const n = ops.squeeze(g, ops.slice(g, nk, [0], [1], [0]), [0], 'n');
    const idx = ops.range(g, g.constInt64(0), n, g.constInt64(1), 'range');
    return ops.expand(g, ops.unsqueeze(g, idx, [1], 'col'), nk, 'grid');
  });
}

/** Every proposal slot as a RoI: boxes [N*K,4] and batch index [N*K] (padding slots included). */
export function proposalsToRois(g: GraphBuilder, proposals: Proposals): Rois {
  return g.withScope('rois', () => ({
    boxes: ops.reshape(g, proposals.boxes, [-1, 4], 'boxes'),
    batchIndex: ops.reshape(g, batchIndexGrid(g, proposals.boxes), [-1], 'batch_index'),
  }));
}

/**
 * Keeps the entries of a padded [N,K,…] layout where `valid` [N,K] is true, flattened in image
 * order: returns the flat indices [M] into N*K (use with Gather on a [N*K,…] reshape) and the
 * batch index [M] int64.
 */
export function compactValid(g: GraphBuilder, valid: Blob): { readonly flatIndex: Blob; readonly batchIndex: Blob } {
  return g.withScope('compact', () => {
    const flatValid = ops.reshape(g, valid, [-1], 'flat_valid');
    const flatIndex = ops.reshape(g, ops.nonZero(g, flatValid), [-1], 'flat_index');
    const k = ops.shape(g, valid, 1, 2, 'k');
    const batchIndex = ops.div(g, flatIndex, k, 'batch_index');
    return { flatIndex, batchIndex };
  });
}

/**
 * Per-row (x, y, x, y) scale factors [R,4] from resized to original pixels:
 * f32(original) / f32(resized) per axis, as torchvision's `resize_boxes`.
 */
export function originalScaleFactors(g: GraphBuilder, imageSizes: Blob, originalSizes: Blob, batchIndex: Blob): Blob {
  return g.withScope('scale_back', () => {
    const ratio = ops.div(g, ops.cast(g, originalSizes, 'float32', 'orig'), ops.cast(g, imageSizes, 'float32', 'resized'), 'ratio'); // [N,2] (h,w)
    const [rh, rw] = ops.split(g, ratio, [1, 1], 1, 'hw');
    const xyxy = ops.concat(g, [rw, rh, rw, rh], 1, 'xyxy'); // [N,4]
    return ops.gather(g, xyxy, batchIndex, 0, 'per_row');
  });
}
