/** @rcnn/nx-plugin. */
export {};
