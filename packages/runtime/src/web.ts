/**
 * @rcnn/runtime/web: the part of the runtime that runs in a browser (and any bundler's output) —
 * no onnxruntime-node, sharp, fs or worker_threads. From a session's raw outputs to results:
 * split the flattened `det.*` tensors per image, read the typed masks / keypoints the host
 * post-processors add, format COCO annotations, and draw onto a canvas. Pair it with
 * `@rcnn/backbone/web` (the image transform), `@rcnn/mask-head/web` and `@rcnn/keypoint-head/web`
 * (the host post-processors) and onnxruntime-web (docs/browser.md).
 */
export { type ImageProposals, type RowRange, splitDetections, splitProposals } from './outputs.js';
export { DeviceError, InferenceError, ShutdownError } from './errors.js';
export {
  COCO_KEYPOINT_NAMES,
  COCO_KEYPOINT_SKELETON,
  defaultLabels,
  DETECTRON_COCO_CATEGORIES,
  DETECTRON_COCO_CATEGORY_IDS,
  type ModelLabels,
  TORCHVISION_COCO_CATEGORIES,
} from './categories.js';
export { readKeypoints, readMasks } from './extras.js';
export { type CocoAnnotation, cocoAnnotations } from './coco-annotations.js';
export { classColour } from './draw-layers.js';
export { type Canvas2DLike, type CanvasDrawOptions, type CanvasImageDataLike, drawDetectionsOnCanvas } from './draw-canvas.js';
