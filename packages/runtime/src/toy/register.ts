/** Registration of the toy model's stages. */
import { type ConfigOverrides, type DependencyContainer, SLOTS, registerImplementation } from '@rcnn/core';
import { toyBody } from './body.js';
import { toyBoxHead } from './box-head.js';
import { toyBoxOutputs } from './box-outputs.js';
import { toyKeypointHead } from './keypoint-head.js';
import { toyMaskHead } from './mask-head.js';
import { toyHeatmapsToKeypoints, toyPasteMasks } from './postprocessors.js';
import { toyRpn } from './rpn.js';
import { toyTransform } from './transform.js';

const PROVIDER = '@rcnn/runtime/toy';

/** Registers every toy stage under `Toy.*` names (they never clash with the real packages). */
export function register(container: DependencyContainer): void {
  const add = <T>(slot: Parameters<typeof registerImplementation<T>>[1], name: string, value: T, description: string): void =>
    registerImplementation(container, slot, { name, provider: PROVIDER, description, value });
  add(SLOTS.imageTransform, 'Toy.transform', toyTransform, 'nearest resize, normalise, pad');
  add(SLOTS.convBody, 'Toy.fpn_body', toyBody, 'one strided conv and max-pool levels');
  add(SLOTS.rpnHead, 'Toy.rpn', toyRpn, '1x1 objectness over square anchors');
  add(SLOTS.roiBoxHead, 'Toy.box_head', toyBoxHead, 'RoIAlign + one fc');
  add(SLOTS.roiBoxOutputs, 'Toy.box_outputs', toyBoxOutputs, 'best class per proposal');
  add(SLOTS.roiMaskHead, 'Toy.mask_head', toyMaskHead, 'RoIAlign + 1x1 conv');
  add(SLOTS.roiKeypointHead, 'Toy.keypoint_head', toyKeypointHead, 'RoIAlign + 1x1 conv');
  add(SLOTS.hostPostprocessor, 'Toy.paste_masks', toyPasteMasks, 'nearest-neighbour paste');
  add(SLOTS.hostPostprocessor, 'Toy.heatmaps_to_keypoints', toyHeatmapsToKeypoints, 'argmax keypoints');
}

/** Options of {@link toyConfig}. */
export interface ToyConfigOptions {
  readonly mask?: boolean;
  readonly keypoints?: boolean;
  readonly rpnOnly?: boolean;
  readonly numClasses?: number;
}

/** A config layer for the toy model: tiny sizes so a forward pass takes milliseconds. */
export function toyConfig(options: ToyConfigOptions = {}): ConfigOverrides {
  return {
    MODEL: {
      CONV_BODY: 'Toy.fpn_body',
      NUM_CLASSES: options.numClasses ?? 4,
      MASK_ON: options.mask ?? false,
      KEYPOINTS_ON: options.keypoints ?? false,
      RPN_ONLY: options.rpnOnly ?? false,
    },
    INPUT: { TRANSFORM: 'Toy.transform' },
    TEST: { SCALE: 64, MAX_SIZE: 96, RPN_POST_NMS_TOP_N: 40, DETECTIONS_PER_IM: 8 },
    RPN: { HEAD: 'Toy.rpn' },
    FPN: { DIM: 4 },
    FAST_RCNN: { ROI_BOX_HEAD: 'Toy.box_head', OUTPUTS: 'Toy.box_outputs', MLP_HEAD_DIM: 8, ROI_XFORM_RESOLUTION: 3 },
    MRCNN: { ROI_MASK_HEAD: 'Toy.mask_head', RESOLUTION: 6 },
    KRCNN: { ROI_KEYPOINTS_HEAD: 'Toy.keypoint_head', NUM_KEYPOINTS: 5, HEATMAP_SIZE: 6 },
  };
}
