/**
 * Reading the results host post-processors add to {@link ImageDetections.extras}, through core's
 * typed keys: a `MaskSet` under `EXTRA_KEYS.masks`, a `KeypointSet` under `EXTRA_KEYS.keypoints`.
 * The readers check that a result belongs to its image (one entry per detection, the original
 * size), so a post-processor's bug is an error naming it rather than wrong COCO JSON, dumps or
 * drawings.
 */
import { EXTRA_KEYS, type ImageDetections, type KeypointSet, type MaskSet, getExtra } from '@rcnn/core/web';
import { InferenceError } from './errors.js';

// What the runtime calls on a MaskSet; checked so that a value stored under the key without
// setExtra (the map itself is untyped) fails here, by name.
const MASK_SET_METHODS = ['maskProbsTensor', 'binaryTensor', 'binary', 'crop', 'rle', 'area'] as const;

function broken(det: ImageDetections, key: keyof typeof EXTRA_KEYS, what: string): InferenceError {
  return new InferenceError(`image ${det.imageIndex}: the host post-processor's "${EXTRA_KEYS[key]}" result ${what}`, {
    hint: `a host post-processor stores it with setExtra(image, EXTRA_KEYS.${key}, …), one entry per detection of the image`,
  });
}

/** The masks of `det` (a `MaskSet` of its detections at its original size), or undefined when no post-processor added masks. */
export function readMasks(det: ImageDetections): MaskSet | undefined {
  const masks = getExtra(det, EXTRA_KEYS.masks);
  if (masks === undefined) return undefined;
  const key = 'masks' satisfies keyof typeof EXTRA_KEYS;
  if (typeof masks !== 'object' || masks === null) throw broken(det, key, `is a ${typeof masks}, not a MaskSet`);
  const missing = MASK_SET_METHODS.filter((m) => typeof masks[m] !== 'function');
  if (missing.length > 0) throw broken(det, key, `is not a MaskSet (no ${missing.join(', ')})`);
  const [height, width] = det.originalSize;
  const count = det.scores.length;
  if (masks.count !== count || masks.height !== height || masks.width !== width) {
    throw broken(det, key, `has ${masks.count} masks of ${masks.height} x ${masks.width}, expected ${count} of ${height} x ${width} (detections x original size)`);
  }
  return masks;
}

/** The keypoints of `det` (a `KeypointSet` of its detections), or undefined when no post-processor added keypoints. */
export function readKeypoints(det: ImageDetections): KeypointSet | undefined {
  const kp = getExtra(det, EXTRA_KEYS.keypoints);
  if (kp === undefined) return undefined;
  const key = 'keypoints' satisfies keyof typeof EXTRA_KEYS;
  if (typeof kp !== 'object' || kp === null || typeof kp.count !== 'number' || typeof kp.numKeypoints !== 'number') {
    throw broken(det, key, 'is not a KeypointSet (no count and numKeypoints)');
  }
  const count = det.scores.length;
  const k = kp.numKeypoints;
  if (kp.count !== count || !Number.isInteger(k) || k < 0) throw broken(det, key, `has ${kp.count} detections x ${k} keypoints, expected ${count} detections`);
  for (const [name, per] of [['keypoints', 3], ['keypointsResized', 3], ['scores', 1]] as const) {
    const a: unknown = kp[name];
    if (!(a instanceof Float32Array) || a.length !== count * k * per) {
      const got = a instanceof Float32Array ? `${a.length} values` : 'not a Float32Array';
      throw broken(det, key, `field ${name} is ${got}, expected a Float32Array of ${count} x ${k} x ${per}`);
    }
  }
  return kp;
}
