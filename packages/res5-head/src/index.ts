/** @rcnn/res5-head. */
export {};
