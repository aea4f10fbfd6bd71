/**
 * @rcnn/backbone/web: the image transform alone (torchvision's GeneralizedRCNNTransform, or
 * Detectron's variant by config) for browser pages and bundlers — no graph code, no Node API.
 * It turns decoded RGB images into the `images` / `image_sizes` / `original_sizes` inputs of an
 * exported model, to the pixel as rcnn-node's runtime does.
 */
export { GeneralizedRCNNTransform, padToMultiple } from './image-transform.js';
export { type ResizeRule, type ResizedSize, detectronResizedSize, resizedSize, torchvisionResizedSize } from './resize-rule.js';
