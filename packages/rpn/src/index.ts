/** @rcnn/rpn: RPN: anchors, the RPN head and in-graph proposal generation (single-level and FPN). */
export { register } from './register.js';
export { GENERIC_RPN_OUTPUTS, RPN_TRAINING_INPUTS, RPN_WEIGHT_PREFIX, genericRpnOutputs, rpnTraining } from './rpn-head.js';
export {
  type GridAnchorOptions,
  type LevelAnchorSpec,
  detectronBaseAnchors,
  gridAnchors,
  levelAnchorSpecs,
  nominalStride,
  torchvisionBaseAnchors,
} from './anchors.js';
export { type LevelCandidates, type ProposalFilterOptions, filterProposals } from './proposals.js';
export { detectron2BaseAnchors } from './anchors.js';
export { keepNonEmptyBoxes } from './proposals.js';
