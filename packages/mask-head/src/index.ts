/** @rcnn/mask-head: Mask R-CNN mask head and mask pasting into the image (core's `MaskSet`, with COCO RLE). */
export { MASK_HEAD_PREFIX, MASK_PREDICTOR_PREFIX, MASK_TRAINING_INPUTS, MaskRcnnFcnHead, projectMaskTargets } from './mask-rcnn-fcn-head.js';
export { MASKS_EXTRA, PASTE_MASKS, PasteMasks } from './paste-masks.js';
export { InstanceMasks, type InstanceMasksOptions, type PastedMask } from './instance-masks.js';
export { type PasteGeometry, type PasteOptions, expandBox, pasteGeometry, pasteMask } from './paste.js';
// COCO RLE moved to @rcnn/core (the runtime needs it too); re-exported for existing imports.
export {
  type CocoRle,
  RleBuilder,
  type UncompressedRle,
  compressRle,
  decodeRle,
  decompressRle,
  encodeRle,
  rleArea,
  rleCountsFromString,
  rleCountsToString,
} from '@rcnn/core';
export { MASK_RCNN_FCN_HEAD, register } from './register.js';
export { roiAlignBitmap } from './mask-targets.js';
export { type Detectron2PasteOptions, detectron2PasteGeometry, inclusiveThreshold, pasteMaskDetectron2 } from './paste-detectron2.js';
