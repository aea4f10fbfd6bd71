/**
 * @rcnn/runtime/toy: a tiny detector made of real ONNX operators and random weights, for testing
 * applications and the runtime without the model packages (`rcnn predict --plugin @rcnn/runtime/toy`).
 * Its detections mean nothing; it runs in milliseconds and exercises every stage and output layout.
 */
export { register, toyConfig, type ToyConfigOptions } from './register.js';
export { toyTransform, toyResizedSize } from './transform.js';
export { toyWeights } from './weights.js';
