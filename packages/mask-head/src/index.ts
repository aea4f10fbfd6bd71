/** @rcnn/mask-head: Mask R-CNN mask head, mask pasting into the image and COCO RLE encoding. */
export {};
