/** Registration of the mask head and the mask-pasting post-processor. */
import { type DependencyContainer, SLOTS, registerImplementation } from '@rcnn/core';
import { MASK_RCNN_FCN_HEAD } from './mask-rcnn-fcn-head.js';
import { PASTE_MASKS_POSTPROCESSOR } from './paste-masks.js';

/**
 * Registers the mask head (slot roi-mask-head) and the paster (slot host-postprocessor). The
 * entries are constant objects, so a repeated register() is a no-op instead of a name clash.
 */
export function register(container: DependencyContainer): void {
  registerImplementation(container, SLOTS.roiMaskHead, MASK_RCNN_FCN_HEAD);
  registerImplementation(container, SLOTS.hostPostprocessor, PASTE_MASKS_POSTPROCESSOR);
}
