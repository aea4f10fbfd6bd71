/** @rcnn/runtime: Assembles rcnn-node models per device and runs them on onnxruntime-node (CUDA per GPU, CPU fallback). */
export {};
