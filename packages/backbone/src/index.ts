/** @rcnn/backbone: ResNet / ResNeXt conv bodies (torchvision and Detectron conventions), the host-side image transform and the features-only net. */
export {};
