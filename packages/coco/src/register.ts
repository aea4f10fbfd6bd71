/** Registration of @rcnn/coco (nothing registers on import). */
import { type DependencyContainer, registerConfigSection } from '@rcnn/core';
import { DATALOADER_SECTION } from './config.js';

/** Registers the `DATALOADER.*` config section. @rcnn/coco fills no model slot. */
export function register(container: DependencyContainer): void {
  registerConfigSection(container, DATALOADER_SECTION);
}
