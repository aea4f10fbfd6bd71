/** @rcnn/checkpoint: Reads PyTorch .pth checkpoints and Detectron/Detectron2 .pkl weights safely (restricted unpickler) and maps their names. */
export {};
