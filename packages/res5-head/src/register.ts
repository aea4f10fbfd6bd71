/** Registration of the res5 head (nothing registers on import). */
import { type DependencyContainer, SLOTS, registerImplementation } from '@rcnn/core';
import { RES5_HEAD } from './res5-head.js';

/**
 * Registers `ResNet.add_ResNet_roi_conv5_head` (alias `ResNetRes5Head`) in slot roi-box-head.
 * Idempotent for the same container. Register @rcnn/backbone too: the head reads the conv body's
 * conventions from the registry.
 */
export function register(container: DependencyContainer): void {
  registerImplementation(container, SLOTS.roiBoxHead, RES5_HEAD);
}
