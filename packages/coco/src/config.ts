/**
 * The `DATALOADER.*` config section of @rcnn/coco (Detectron2's key names and defaults): how a
 * COCO dataset becomes training batches. `register(container)` registers it, so a config loaded
 * with the container's sections accepts and checks these keys.
 */
import { type RcnnConfig, type SectionValues, defineSection, field, sectionValues } from '@rcnn/core';

/** `DATALOADER.*`: COCO training data loading. */
export const DATALOADER_SECTION = defineSection('DATALOADER', 'COCO training data: which images are used, how batches are formed and how far loading runs ahead (@rcnn/coco).', '@rcnn/coco', {
  FILTER_EMPTY_ANNOTATIONS: field.bool(
    true,
    'Skip training images that keep no annotation (none, only crowd regions, or only unusable ones), as Detectron2 DATALOADER.FILTER_EMPTY_ANNOTATIONS and torchvision\'s _has_valid_annotation.',
  ),
  ASPECT_RATIO_GROUPING: field.bool(true, 'Batch landscape (w > h) and portrait images separately, so a batch pads little (Detectron2 DATALOADER.ASPECT_RATIO_GROUPING).'),
  PREFETCH: field.int(4, 'Batches loaded (decoded) ahead of the training step, the prefetch queue depth; 0 loads each batch when its step starts (Detectron2 runs DATALOADER.NUM_WORKERS=4 loaders).', { min: 0, max: 256 }),
  MIN_KEYPOINTS_PER_IMAGE: field.int(1, 'Keypoint datasets: skip images with fewer visible keypoints in all their annotations (Detectron2 MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE).', { min: 0 }),
});

/** The values of `DATALOADER.*`. */
export type DataLoaderSettings = SectionValues<typeof DATALOADER_SECTION.fields>;

/** `DATALOADER.*` of a config loaded with the section registered (a ConfigError names it otherwise). */
export function dataLoaderSettings(config: RcnnConfig): DataLoaderSettings {
  return sectionValues(config, DATALOADER_SECTION);
}
