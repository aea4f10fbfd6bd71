/** The `CONV_FC_HEAD.*` config section of @rcnn/conv-fc-head (Detectron's FAST_RCNN.NUM_STACKED_CONVS / CONV_HEAD_DIM for `add_roi_Xconv1fc_head`). */
import { ConfigError, type RcnnConfig, type SectionValues, defineSection, field, sectionValues } from '@rcnn/core';

/** Norms a conv of the head may have (torchvision `norm_layer`; `none`: a conv with bias). */
export const CONV_FC_NORMS = ['BatchNorm2d', 'GroupNorm', 'none'] as const;

/** `CONV_FC_HEAD.*`: the conv stack of the head; the fc width is core's FAST_RCNN.MLP_HEAD_DIM. Registered by `register(container)`. */
export const CONV_FC_HEAD_SECTION = defineSection('CONV_FC_HEAD', 'Conv stack of the box head fast_rcnn_heads.add_roi_Xconv1fc_head (@rcnn/conv-fc-head).', '@rcnn/conv-fc-head', {
  NUM_STACKED_CONVS: field.int(4, 'Number of 3x3 conv + norm + ReLU layers before the fc (torchvision conv_layers length).', { min: 0, max: 16 }),
  CONV_HEAD_DIM: field.int(256, 'Channels of each conv layer.', { min: 1 }),
  NORM: field.oneOf(CONV_FC_NORMS, 'BatchNorm2d', 'Norm after each conv (fasterrcnn_resnet50_fpn_v2: BatchNorm2d, eval mode).'),
  NORM_EPS: field.float(1e-5, 'eps of the norm (BatchNorm2d / GroupNorm default 1e-5).', { min: 0 }),
  NUM_GROUPS: field.int(32, 'Groups of a GroupNorm (Detectron GROUP_NORM.NUM_GROUPS).', { min: 1 }),
});

/** The values of the section. */
export type ConvFcHeadSettings = SectionValues<typeof CONV_FC_HEAD_SECTION.fields>;

/** The section's values, checked against each other (a ConfigError names the key). */
export function convFcHeadSettings(config: RcnnConfig): ConvFcHeadSettings {
  const s = sectionValues(config, CONV_FC_HEAD_SECTION);
  if (s.NORM === 'GroupNorm' && s.CONV_HEAD_DIM % s.NUM_GROUPS !== 0) {
    throw new ConfigError(`CONV_FC_HEAD.NUM_GROUPS ${s.NUM_GROUPS} does not divide CONV_HEAD_DIM ${s.CONV_HEAD_DIM}`, { key: 'CONV_FC_HEAD.NUM_GROUPS' });
  }
  return s;
}
