/**
 * Host post-processor `paste_masks`: pastes each detection's M x M mask probabilities into its
 * original image (torchvision `paste_masks_in_image`, or Detectron2's with `MRCNN.PASTE_METHOD: detectron2`) and stores an {@link InstanceMasks} (core's
 * `MaskSet`) in `ImageDetections.extras` under core's `EXTRA_KEYS.masks`.
 *
 * Pasting runs here, on the host, rather than in the ONNX graph: measured on 100 detections on a
 * 480 x 640 image it takes ~20-30 ms against ~400 ms for an exact graph formulation, which must
 * materialise D x H x W planes (bench/paste-bench.ts; numbers in the README).
 */
import {
  DETECTION_OUTPUTS,
  EXTRA_KEYS,
  type HostPostprocessor,
  type HostTensor,
  type ImageDetections,
  InputError,
  type RawOutputs,
  type RcnnConfig,
  setExtra,
} from '@rcnn/core/web';
import type { Implementation } from '@rcnn/core';
import { InstanceMasks } from './instance-masks.js';

/** Registry name of the mask-pasting post-processor (slot host-postprocessor). */
export const PASTE_MASKS = 'paste_masks';

/** Reads the [D,1,M,M] mask probabilities and checks them against the config. */
function maskProbsOf(outputs: RawOutputs, config: RcnnConfig): HostTensor<'float32'> {
  const name = DETECTION_OUTPUTS.maskProbs;
  const t = outputs.get(name);
  if (!t) throw new InputError(`paste_masks: the model outputs have no "${name}" (is MODEL.MASK_ON set?); outputs: ${[...outputs.keys()].join(', ')}`);
  const m = config.MRCNN.RESOLUTION;
  if (t.dtype !== 'float32' || t.dims.length !== 4 || t.dims[1] !== 1 || t.dims[2] !== m || t.dims[3] !== m) {
    throw new InputError(`paste_masks: "${name}" is ${t.dtype} [${t.dims.join(', ')}], expected float32 [D, 1, ${m}, ${m}] (MRCNN.RESOLUTION = ${m})`);
  }
  return t as HostTensor<'float32'>;
}

/** The `paste_masks` post-processor (see module doc). */
export class PasteMasks implements HostPostprocessor {
  apply(outputs: RawOutputs, images: readonly ImageDetections[], rows: readonly (readonly [number, number])[], config: RcnnConfig): void {
    const probs = maskProbsOf(outputs, config);
    const total = probs.dims[0]!;
    const m = config.MRCNN.RESOLUTION;
    if (rows.length !== images.length) throw new InputError(`paste_masks: ${rows.length} row ranges for ${images.length} images`);
    images.forEach((image, i) => {
      const [start, end] = rows[i]!;
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > total) {
        throw new InputError(`paste_masks: rows [${start}, ${end}) of image ${image.imageIndex} are outside the ${total} mask rows`);
      }
      if (image.boxes.length !== 4 * (end - start)) {
        throw new InputError(`paste_masks: image ${image.imageIndex} has ${image.boxes.length / 4} boxes but ${end - start} mask rows`);
      }
      const [imageHeight, imageWidth] = image.originalSize;
      // A copy: the masks outlive the session's output buffers.
      const options = { resolution: m, padding: config.MRCNN.PASTE_PADDING, threshold: config.MRCNN.THRESH_BINARIZE, imageHeight, imageWidth };
      const crop = probs.data.slice(start * m * m, end * m * m);
      const masks = config.MRCNN.PASTE_METHOD === 'detectron2' ? InstanceMasks.pasteDetectron2(crop, image.boxes, options) : InstanceMasks.paste(crop, image.boxes, options);
      setExtra(image, EXTRA_KEYS.masks, masks);
    });
  }
}

/** Registry entry of the mask paster (slot host-postprocessor); stateless, so one value serves every container. */
export const PASTE_MASKS_POSTPROCESSOR: Implementation<HostPostprocessor> = {
  name: PASTE_MASKS,
  provider: '@rcnn/mask-head',
  description: 'Pastes mask probabilities into the original image (torchvision paste_masks_in_image) as InstanceMasks in extras EXTRA_KEYS.masks',
  value: new PasteMasks(),
};
