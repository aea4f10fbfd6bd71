/** The packages `npm run parity` registers besides `--plugin` modules (runCase / compareCase live in @rcnn/testing). */
import type { DependencyContainer } from '@rcnn/core';
import { register as registerBackbone } from '@rcnn/backbone';
import { register as registerBoxHead } from '@rcnn/box-head';
import { register as registerFpn } from '@rcnn/fpn';
import { register as registerKeypointHead } from '@rcnn/keypoint-head';
import { register as registerMaskHead } from '@rcnn/mask-head';
import { register as registerRes5Head } from '@rcnn/res5-head';
import { register as registerRpn } from '@rcnn/rpn';

/** Every built-in model package's registration. */
export const BUILT_IN_PACKAGES: readonly ((container: DependencyContainer) => void)[] = [
  registerBackbone,
  registerFpn,
  registerRpn,
  registerBoxHead,
  registerMaskHead,
  registerKeypointHead,
  registerRes5Head,
];
