/** @rcnn/res5-head: Detectron's C4 res5 RoI box head (`ResNet.add_ResNet_roi_conv5_head`), a plugin over the public APIs of @rcnn/core and @rcnn/backbone. */
export { register } from './register.js';
export { RES5_HEAD, RES5_HEAD_NAME, RES5_HEAD_PREFIX, RES5_HEAD_PROVIDER, type Res5Architecture, res5Architecture, res5Head } from './res5-head.js';
