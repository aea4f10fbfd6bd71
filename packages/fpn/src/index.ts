/** @rcnn/fpn: Feature pyramid network over the conv bodies; registers the FPN.* conv bodies. */
export {};
