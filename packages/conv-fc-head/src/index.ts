/** @rcnn/conv-fc-head: torchvision's FastRCNNConvFCHead as `fast_rcnn_heads.add_roi_Xconv1fc_head`, a plugin on rcnn-node's public APIs. */
export { register } from './register.js';
export { CONV_FC_HEAD_SECTION, CONV_FC_NORMS, type ConvFcHeadSettings, convFcHeadSettings } from './config.js';
export {
  CONV_FC_HEAD,
  CONV_FC_HEAD_NAME,
  CONV_FC_HEAD_PREFIX,
  type ConvFcHeadLayers,
  convFcHead,
  convFcHeadFromCase,
  convFcHeadLayers,
  convFcHeadWeightKeys,
} from './conv-fc-head.js';
