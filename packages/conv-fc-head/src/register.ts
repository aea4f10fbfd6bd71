/** Registration of @rcnn/conv-fc-head (nothing registers on import). */
import { type DependencyContainer, SLOTS, registerConfigSection, registerImplementation } from '@rcnn/core';
import { CONV_FC_HEAD_SECTION } from './config.js';
import { CONV_FC_HEAD } from './conv-fc-head.js';

/**
 * Registers `fast_rcnn_heads.add_roi_Xconv1fc_head` (alias `FastRCNNConvFCHead`) in slot
 * roi-box-head, with its parity-case mapping, and the `CONV_FC_HEAD` config section. Idempotent.
 */
export function register(container: DependencyContainer): void {
  registerImplementation(container, SLOTS.roiBoxHead, CONV_FC_HEAD);
  registerConfigSection(container, CONV_FC_HEAD_SECTION);
}
