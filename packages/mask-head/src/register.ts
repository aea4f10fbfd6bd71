/** Registration of the mask head and the mask-pasting post-processor. */
import { type DependencyContainer, SLOTS, registerImplementation } from '@rcnn/core';
import { MaskRcnnFcnHead } from './mask-rcnn-fcn-head.js';
import { PASTE_MASKS, PasteMasks } from './paste-masks.js';

const PROVIDER = '@rcnn/mask-head';

// Stateless, so one instance serves every container; the same object also makes a repeated
// register() a no-op instead of a name clash.
const MASK_HEAD = new MaskRcnnFcnHead();
const PASTE = new PasteMasks();

/** Registry name of the FCN mask head (slot roi-mask-head), Detectron's default for FPN models. */
export const MASK_RCNN_FCN_HEAD = 'mask_rcnn_heads.mask_rcnn_fcn_head_v1up4convs';

/**
 * Registers the mask head (`mask_rcnn_heads.mask_rcnn_fcn_head_v1up4convs`, aliases `MaskRCNNHeads`,
 * `mask_rcnn_heads.mask_rcnn_fcn_head_v1upXconvs`) and the `paste_masks` host post-processor.
 */
export function register(container: DependencyContainer): void {
  registerImplementation(container, SLOTS.roiMaskHead, {
    name: MASK_RCNN_FCN_HEAD,
    // The number of convs is MRCNN.NUM_STACKED_CONVS, so the v1upXconvs name is the same head.
    aliases: ['MaskRCNNHeads', 'mask_rcnn_heads.mask_rcnn_fcn_head_v1upXconvs'],
    provider: PROVIDER,
    description: 'Mask R-CNN FCN mask head: RoIAlign, NUM_STACKED_CONVS x (3x3 conv + ReLU), 2x deconv, per-class 1x1 logits, sigmoid',
    value: MASK_HEAD,
  });
  registerImplementation(container, SLOTS.hostPostprocessor, {
    name: PASTE_MASKS,
    provider: PROVIDER,
    description: "Pastes mask probabilities into the original image (torchvision paste_masks_in_image) as InstanceMasks in extras EXTRA_KEYS.masks",
    value: PASTE,
  });
}
