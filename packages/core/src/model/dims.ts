/**
 * The symbolic dimension names every rcnn-node model declares on its inputs and outputs (and that
 * docs/serving.md uses), so that a tool reading an exported model sees the same name wherever the
 * same run-time size appears.
 */
import type { Dim } from '../graph/builder.js';
import type { FeatureMap } from './contracts.js';

/** Symbolic sizes known only at run time. */
export const DIMS = {
  /** Images in the batch. */
  images: 'N',
  /** Height of the padded input batch. */
  height: 'H',
  /** Width of the padded input batch. */
  width: 'W',
  /** Proposal slots per image (`TEST.RPN_POST_NMS_TOP_N` or fewer). */
  proposals: 'P',
  /** RoI rows: one per proposal slot of every image (N*P). */
  rois: 'R',
  /** Detections of the whole batch. */
  detections: 'D',
  /** Anchors of all RPN levels together. */
  anchors: 'A',
  /** Side of a mask (`MRCNN.RESOLUTION`). */
  maskSize: 'M',
  /** Keypoints per instance (`KRCNN.NUM_KEYPOINTS`). */
  keypoints: 'K',
  /** Side of a keypoint heatmap (`KRCNN.HEATMAP_SIZE`). */
  heatmapSize: 'S',
} as const;

/** Height and width names of a feature level: `H_<level name>`, `W_<level name>` (e.g. `H_0`, `W_pool`). */
export function levelSizeDims(levelName: string): [Dim, Dim] {
  return [`H_${levelName}`, `W_${levelName}`];
}

/** [N, C, H_<name>, W_<name>]: the shape of a feature map. */
export function featureMapDims(feature: Pick<FeatureMap, 'name' | 'channels'>): Dim[] {
  return [DIMS.images, feature.channels, ...levelSizeDims(feature.name)];
}
