/** Registration of the keypoint-head package's implementations into a DI container. */
import { type DependencyContainer, SLOTS, registerImplementation } from '@rcnn/core';
import { HEATMAPS_TO_KEYPOINTS } from './heatmaps-to-keypoints.js';
import { KEYPOINT_RCNN_HEADS } from './keypoint-rcnn-heads.js';

/**
 * Registers `keypoint_rcnn_heads.add_roi_pose_head_v1convX` (alias `KeypointRCNNHeads`) in slot
 * roi-keypoint-head and `heatmaps_to_keypoints` in slot host-postprocessor. Idempotent for the
 * same container.
 */
export function register(container: DependencyContainer): void {
  registerImplementation(container, SLOTS.roiKeypointHead, KEYPOINT_RCNN_HEADS);
  registerImplementation(container, SLOTS.hostPostprocessor, HEATMAPS_TO_KEYPOINTS);
}
