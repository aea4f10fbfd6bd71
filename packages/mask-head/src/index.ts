/** @rcnn/mask-head: Mask R-CNN mask head and mask pasting into the image (core's `MaskSet`, with COCO RLE). */
export {
  MASK_HEAD_PREFIX,
  MASK_PREDICTOR_PREFIX,
  MASK_RCNN_FCN_HEAD,
  MASK_TRAINING_INPUTS,
  maskRcnnFcnHead,
  buildMaskTargets,
  projectMaskTargets,
} from './mask-rcnn-fcn-head.js';
export { PASTE_MASKS, PASTE_MASKS_POSTPROCESSOR, PasteMasks } from './paste-masks.js';
export { InstanceMasks, type InstanceMasksOptions, type PastedMask } from './instance-masks.js';
export { type PasteGeometry, type PasteOptions, expandBox, pasteGeometry, pasteMask } from './paste.js';
export { type Detectron2PasteOptions, pasteMaskDetectron2 } from './paste-detectron2.js';
export { roiAlignBitmap } from './mask-targets.js';
export { register } from './register.js';
