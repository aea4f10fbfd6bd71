/**
 * @rcnn/runtime/web: the part of the runtime that runs in a browser (and any bundler's output) —
 * no onnxruntime-node, sharp, fs or worker_threads. From a session's raw outputs to results:
 * split the flattened `det.*` tensors per image, read the typed masks / keypoints the host
 * post-processors add, format COCO annotations, and draw onto a canvas. Pair it with
 * `@rcnn/backbone/web` (the image transform), `@rcnn/mask-head/web` and `@rcnn/keypoint-head/web`
 * (the host post-processors) and onnxruntime-web (docs/browser.md).
 */
export * from './errors.js';
export * from './categories.js';
export * from './outputs.js';
export * from './extras.js';
export * from './coco-annotations.js';
export * from './draw-layers.js';
export * from './draw-canvas.js';
