import { type DependencyContainer, registerWeightsReader } from '@rcnn/core';
import { openCheckpoint } from './checkpoint.js';

/** Format name of the reader this package registers. */
export const CHECKPOINT_READER_FORMAT = 'PyTorch / Detectron2 / Detectron checkpoint';

/**
 * Registers @rcnn/checkpoint's reader for `.pth`, `.pt` and `.pkl` weights (core's weights-reader
 * token): the runtime and the CLI then load those files through `--weights` directly, names mapped
 * to torchvision's. It fills no model slot.
 */
export function register(container: DependencyContainer): void {
  registerWeightsReader(container, {
    format: CHECKPOINT_READER_FORMAT,
    extensions: ['.pth', '.pt', '.pkl'],
    provider: '@rcnn/checkpoint',
    read: (path, options) => openCheckpoint(path, options).store,
  });
}
