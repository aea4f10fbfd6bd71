/** Registration of the box-head package's implementations into a DI container. */
import { type DependencyContainer, SLOTS, registerImplementation } from '@rcnn/core';
import { FAST_RCNN_OUTPUTS } from './fast-rcnn-outputs.js';
import { TWO_MLP_HEAD } from './two-mlp-head.js';

/**
 * Registers `fast_rcnn_heads.add_roi_2mlp_head` (TwoMLPHead) in slot roi-box-head and
 * `fast_rcnn_heads.add_fast_rcnn_outputs` (FastRCNNPredictor) in slot roi-box-outputs.
 * Idempotent for the same container.
 */
export function register(container: DependencyContainer): void {
  registerImplementation(container, SLOTS.roiBoxHead, TWO_MLP_HEAD);
  registerImplementation(container, SLOTS.roiBoxOutputs, FAST_RCNN_OUTPUTS);
}
