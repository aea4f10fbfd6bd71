/**
 * @rcnn/mask-head/web: mask pasting for browser pages and bundlers — no graph code, no Node API.
 * `PasteMasks` is the host post-processor an exported Mask R-CNN's `det.mask_probs` need
 * (registry name `paste_masks`, listed in the model's `rcnn.host_postprocessors` metadata);
 * `InstanceMasks.paste` does the same for one image's arrays.
 */
export { PASTE_MASKS, PasteMasks } from './paste-masks.js';
export { InstanceMasks, type InstanceMasksOptions, type PastedMask } from './instance-masks.js';
export { type PasteGeometry, type PasteOptions, expandBox, pasteGeometry, pasteMask } from './paste.js';
