/** @rcnn/rpn: RPN: anchors, the RPN head and in-graph proposal generation (single-level and FPN). */
export {};
