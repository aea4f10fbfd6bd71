/**
 * @rcnn/coco: COCO evaluation that equals pycocotools (bbox, segm and keypoints AP/AR, per-category
 * AP), pycocotools' mask geometry (polygon rasterisation, RLE merge / IoU / boxes) and COCO dataset
 * loading for training (targets, label maps, aspect-ratio batches, a prefetching image loader).
 */
export {
  type CocoAnnotationJson,
  type CocoCategoryJson,
  type CocoDatasetJson,
  type CocoImageJson,
  type CocoResultJson,
  type CocoSegmentationJson,
  IOU_TYPES,
  type IouType,
} from './types.js';
export {
  type AreaRange,
  COCO_PERSON_OKS_SIGMAS,
  type CocoEvalOptions,
  type CocoEvalParams,
  type CocoEvalResult,
  DETECTION_SUMMARY,
  KEYPOINT_SUMMARY,
  type SummaryStat,
  defaultEvalParams,
  detectionSummary,
  evaluateCoco,
  formatSummary,
  pythonFixed,
} from './cocoeval.js';
export {
  type CocoSegmentation,
  type XywhBox,
  boxIou,
  intersectionAndUnion,
  maskIou,
  mergeRles,
  rleFromBox,
  rleFromPolygon,
  rleToBox,
  segmentationToRle,
} from './mask.js';
export { CategoryMap, type CategoryMapJson } from './labels.js';
export { type CocoResultsDocumentJson, alignResults } from './results.js';
export { DATALOADER_SECTION, type DataLoaderSettings, dataLoaderSettings } from './config.js';
export {
  type CocoDatasetOptions,
  CocoTrainingDataset,
  type DatasetAnnotation,
  DatasetError,
  type DatasetItem,
  type DatasetSkip,
  type DatasetSkipReason,
  EXPECTED_SKIPS,
  type TrainingTargets,
  loadCocoDataset,
} from './dataset.js';
export { type TrainingImage, aspectRatioBatches, loadTrainingImage, prefetch, trainingBatches, trainingOrder } from './loader.js';
export { register } from './register.js';
