/**
 * Category and keypoint names of COCO as the published models use them, for results and drawings.
 */

/** torchvision's COCO category list (91 entries: index = COCO category id, 'N/A' where COCO has a gap, 0 = background). */
export const TORCHVISION_COCO_CATEGORIES: readonly string[] = [
  '__background__', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
  'fire hydrant', 'N/A', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant',
  'bear', 'zebra', 'giraffe', 'N/A', 'backpack', 'umbrella', 'N/A', 'N/A', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis',
  'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
  'N/A', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
  'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed', 'N/A', 'dining table', 'N/A', 'N/A', 'toilet',
  'N/A', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator',
  'N/A', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush',
];

/** Detectron's 81 contiguous COCO classes (0 = background) and the COCO category id of each. */
export const DETECTRON_COCO_CATEGORIES: readonly string[] = TORCHVISION_COCO_CATEGORIES.filter((n) => n !== 'N/A');

/** COCO category id of each Detectron contiguous class index (0 = background → 0). */
export const DETECTRON_COCO_CATEGORY_IDS: readonly number[] = TORCHVISION_COCO_CATEGORIES.flatMap((n, id) => (n === 'N/A' ? [] : [id]));

/** The 17 COCO person keypoints, in the order of the keypoint head's outputs. */
export const COCO_KEYPOINT_NAMES: readonly string[] = [
  'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
  'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle',
];

/** COCO's person skeleton as pairs of 0-based keypoint indices (for drawing). */
export const COCO_KEYPOINT_SKELETON: readonly (readonly [number, number])[] = [
  [15, 13], [13, 11], [16, 14], [14, 12], [11, 12], [5, 11], [6, 12], [5, 6], [5, 7], [6, 8], [7, 9], [8, 10],
  [1, 2], [0, 1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 6],
];

/** What results and drawings call the model's classes and keypoints. */
export interface ModelLabels {
  /** Name of each class index (index 0 = background). */
  readonly categories: readonly string[];
  /** COCO category id written to results for each class index (identity unless the classes are contiguous). */
  readonly categoryIds: readonly number[];
  /** Names of the keypoints, when the model has a keypoint head. */
  readonly keypointNames?: readonly string[];
  /** Pairs of keypoint indices joined when drawing. */
  readonly skeleton?: readonly (readonly [number, number])[];
}

/**
 * Labels for a model of `numClasses` classes: COCO (torchvision's 91 or Detectron's 81), person
 * (2 classes with keypoints), else `class_<i>`. Keypoint names: COCO's 17 when there are 17, else
 * `kp_<i>`.
 */
export function defaultLabels(numClasses: number, keypoints: number | undefined): ModelLabels {
  let categories: readonly string[];
  let categoryIds: readonly number[];
  if (numClasses === TORCHVISION_COCO_CATEGORIES.length) {
    categories = TORCHVISION_COCO_CATEGORIES;
    categoryIds = categories.map((_, i) => i);
  } else if (numClasses === DETECTRON_COCO_CATEGORIES.length) {
    categories = DETECTRON_COCO_CATEGORIES;
    categoryIds = DETECTRON_COCO_CATEGORY_IDS;
  } else if (numClasses === 2 && keypoints !== undefined) {
    categories = ['__background__', 'person'];
    categoryIds = [0, 1];
  } else {
    categories = Array.from({ length: numClasses }, (_, i) => (i === 0 ? '__background__' : `class_${i}`));
    categoryIds = categories.map((_, i) => i);
  }
  if (keypoints === undefined) return { categories, categoryIds };
  const coco = keypoints === COCO_KEYPOINT_NAMES.length;
  return {
    categories,
    categoryIds,
    keypointNames: coco ? COCO_KEYPOINT_NAMES : Array.from({ length: keypoints }, (_, i) => `kp_${i}`),
    skeleton: coco ? COCO_KEYPOINT_SKELETON : [],
  };
}
