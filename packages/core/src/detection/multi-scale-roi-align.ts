/**
 * RoI feature extraction (Detectron's `RoIFeatureTransform`, torchvision's `MultiScaleRoIAlign`),
 * shared by the box, mask and keypoint heads.
 */
import type { Blob, GraphBuilder } from '../graph/builder.js';
import * as ops from '../graph/onnx-ops.js';
import type { FeatureMaps, Rois } from '../model/contracts.js';
import { at } from '../errors.js';

/** Options of {@link multiScaleRoiAlign}. */
export interface RoiPoolerOptions {
  /** Output height = width. */
  readonly outputSize: number;
  readonly samplingRatio: number;
  /** torchvision `aligned` (false = legacy, the torchvision/Detectron default). */
  readonly aligned: boolean;
  /** Level mapping: a box with sqrt(area) = canonicalScale goes to canonicalLevel (224, 4). */
  readonly canonicalScale: number;
  readonly canonicalLevel: number;
  /** Added before the floor in the level mapping (torchvision 1e-6). */
  readonly eps: number;
}

/** Image index weight in the raster key: rows (image pixels) stay far below 2^31. */
const IMAGE_KEY_STRIDE = 2 ** 31;

/**
 * `idx` (RoI indices into `rois`) reordered by (image, top edge). onnxruntime's CPU RoiAlign loops
 * over every channel plane of the map for each RoI in turn; in arbitrary (score) order consecutive
 * RoIs touch unrelated rows of a map far larger than the caches, so every RoI misses. In raster
 * order consecutive RoIs share rows, which stay cached: the box head's level-P2 RoiAlign of an
 * R-50-FPN at 800x1088 (1000 RoIs, 256x200x272) runs ~1.7x faster (docs/performance.md). The
 * pooled values do not depend on the order, and the caller restores the RoIs' order as before.
 */
function rasterOrder(g: GraphBuilder, rois: Rois, idx: Blob): Blob {
  return g.withScope('raster', () => {
    const boxes = ops.gather(g, rois.boxes, idx, 0, 'boxes');
    const [, y1] = ops.split(g, boxes, [1, 1, 2], 1, 'y1');
    const row = ops.cast(g, ops.reshape(g, ops.max(g, [y1, g.constFloat32(0)], 'y1_pos'), [-1], 'y1_flat'), 'int64', 'row');
    const image = ops.gather(g, rois.batchIndex, idx, 0, 'image');
    const key = ops.add(g, ops.mul(g, image, g.constInt64(IMAGE_KEY_STRIDE), 'image_key'), row, 'key');
    const [, order] = g.node('TopK', [key, ops.shape(g, key, 0, 1, 'count')], { axis: 0, largest: 0, sorted: 1 }, { outputs: 2, name: 'order' });
    return ops.gather(g, idx, order, 0, 'idx');
  });
}

/** RoI features pooled in level-grouped order, and how to put rows back in the RoIs' order. */
export interface GroupedRoiFeatures {
  /** [R, C, S, S]: the RoIs of the finest level first (each level in raster order), then the next level's… */
  readonly pooled: Blob;
  /** Reorders any [R, …] tensor whose rows follow {@link pooled}'s order into the RoIs' order. */
  restore(rows: Blob, name?: string): Blob;
}

/**
 * {@link multiScaleRoiAlign} without its final reordering: a head whose next layers work row by
 * row (fully connected layers) runs them on the level-grouped rows and restores the order of its
 * much smaller output instead of the pooled features (1000 x 256 x 7 x 7 floats for the box head).
 */
export function multiScaleRoiAlignGrouped(g: GraphBuilder, features: FeatureMaps, rois: Rois, o: RoiPoolerOptions): GroupedRoiFeatures {
  return g.withScope('roi_pool', () => {
    const align = (f: FeatureMaps[number], boxes: Blob, batchIndex: Blob, name: string): Blob =>
      ops.roiAlign(g, f.blob, boxes, batchIndex, {
        outputSize: o.outputSize,
        samplingRatio: o.samplingRatio,
        spatialScale: f.spatialScale,
        aligned: o.aligned,
        name,
      });
    if (features.length === 1) return { pooled: align(at(features, 0, 'features'), rois.boxes, rois.batchIndex, 'roi_align'), restore: (rows) => rows };

    const levels = features.map((f) => f.level);
    const minLevel = Math.min(...levels);
    const maxLevel = Math.max(...levels);
    const level = g.withScope('level', () => {
      const [x1, y1, x2, y2] = ops.split(g, rois.boxes, [1, 1, 1, 1], 1, 'c');
      const area = ops.mul(g, ops.sub(g, x2, x1), ops.sub(g, y2, y1), 'area');
      const s = ops.sqrt(g, area, 's');
      const log2 = ops.div(g, ops.log(g, ops.div(g, s, g.constFloat32(o.canonicalScale))), g.constFloat32(Math.LN2), 'log2');
      const lvl = ops.floor(g, ops.add(g, ops.add(g, g.constFloat32(o.canonicalLevel), log2), g.constFloat32(o.eps)), 'floor');
      const clamped = ops.clip(g, lvl, g.constFloat32(minLevel), g.constFloat32(maxLevel), 'clamp');
      return ops.squeeze(g, ops.cast(g, clamped, 'int64'), [1], 'level');
    });
    const pooled: Blob[] = [];
    const order: Blob[] = [];
    features.forEach((f, i) => {
      g.withScope(`l${f.level}`, () => {
        const idx = rasterOrder(g, rois, ops.reshape(g, ops.nonZero(g, ops.equal(g, level, g.constInt64(f.level))), [-1], 'unsorted_idx'));
        const boxes = ops.gather(g, rois.boxes, idx, 0, 'boxes');
        const bi = ops.gather(g, rois.batchIndex, idx, 0, 'batch_index');
        pooled.push(align(f, boxes, bi, `roi_align_${i}`));
        order.push(idx);
      });
    });
    // Concatenated outputs are grouped by level; the inverse permutation puts rows back.
    const all = ops.concat(g, pooled, 0, 'by_level');
    const perm = ops.concat(g, order, 0, 'perm');
    const count = ops.shape(g, perm, 0, 1, 'count');
    const positions = ops.range(g, g.constInt64(0), ops.squeeze(g, count, [0]), g.constInt64(1), 'positions');
    const inverse = ops.scatterND(g, ops.constantOfShape(g, count, 0, 'int64'), ops.unsqueeze(g, perm, [1]), positions, 'inverse');
    return { pooled: all, restore: (rows, name = 'restored') => ops.gather(g, rows, inverse, 0, name) };
  });
}

/**
 * RoIAlign over one or several feature levels. With one level it is plain RoIAlign at that
 * level's scale. With several, each RoI goes to level
 * `clamp(floor(canonicalLevel + log2(sqrt(area) / canonicalScale) + eps), minLevel, maxLevel)`,
 * is pooled there, and the results are put back in the RoIs' order. Returns [R, C, S, S].
 */
export function multiScaleRoiAlign(g: GraphBuilder, features: FeatureMaps, rois: Rois, o: RoiPoolerOptions): Blob {
  const grouped = multiScaleRoiAlignGrouped(g, features, rois, o);
  return g.withScope('roi_pool', () => grouped.restore(grouped.pooled));
}
