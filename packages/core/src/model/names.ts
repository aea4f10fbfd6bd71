/**
 * Public names of every built model: graph inputs, outputs and the metadata entries of a serialised
 * model. A module of its own (no graph code) so that clients, browser pages included, can use them
 * without the graph builder.
 */

/** Names of the graph inputs of every built model. */
export const MODEL_INPUTS = {
  /** [N,3,Hp,Wp] float32 network input. */
  images: 'images',
  /** [N,2] int64 (h, w) after resizing. */
  imageSizes: 'image_sizes',
  /** [N,2] int64 (h, w) of the originals. */
  originalSizes: 'original_sizes',
} as const;

/** Names of the graph outputs of a detection model (flattened over the batch). */
export const DETECTION_OUTPUTS = {
  boxes: 'det.boxes',
  boxesResized: 'det.boxes_resized',
  scores: 'det.scores',
  labels: 'det.labels',
  batchIndex: 'det.batch_index',
  maskProbs: 'det.mask_probs',
  keypointHeatmaps: 'det.keypoint_heatmaps',
} as const;

/** Names of the graph outputs of an RPN-only model ([N,K,…] padded per image). */
export const PROPOSAL_OUTPUTS = {
  boxes: 'rpn.proposals_original',
  boxesResized: 'rpn.proposals',
  scores: 'rpn.proposal_scores',
  counts: 'rpn.proposal_counts',
} as const;

/** Keys of the ModelProto `metadata_props` every serialised rcnn-node model carries. */
export const MODEL_METADATA = {
  /** The resolved config as JSON. */
  config: 'rcnn.config',
  /** `detections`, `proposals` or `features`. */
  kind: 'rcnn.kind',
  /** Comma-separated registry names of the host post-processors a client applies, in order (`paste_masks`, `heatmaps_to_keypoints`). */
  hostPostprocessors: 'rcnn.host_postprocessors',
  /** `float16` when the conv stages run in float16 (absent for float32). */
  precision: 'rcnn.precision',
} as const;
