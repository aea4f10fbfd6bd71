/**
 * The masks of one image's detections, as the `paste_masks` post-processor leaves them in
 * `ImageDetections.extras` (`getExtra(image, EXTRA_KEYS.masks)`): core's {@link MaskSet}.
 *
 * Each detection keeps only the pasted probabilities over the part of its box inside the image
 * (a full-image mask per detection would be D x H x W floats, 123 MB for 100 detections on a
 * 480 x 640 image); full-image masks, tensors in the fixtures' layout and COCO RLE are derived
 * from those crops on request.
 */
import { type CocoRle, type HostTensor, InputError, type MaskCrop, type MaskSet, type UncompressedRle, compressRle, hostTensor } from '@rcnn/core/web';
import { type PasteGeometry, type PasteOptions, pasteGeometry, pasteMask } from './paste.js';
import { detectron2PasteGeometry, inclusiveThreshold, pasteMaskDetectron2 } from './paste-detectron2.js';

/** One detection's pasted mask: its geometry plus probabilities over its part of the image. */
export interface PastedMask extends PasteGeometry, MaskCrop {
  /** Pasted probabilities, row-major `height` x `width`, for image pixels (x .. x+width-1, y .. y+height-1). */
  readonly probs: Float32Array;
}

/** Options of {@link InstanceMasks.paste}. */
export interface InstanceMasksOptions extends PasteOptions {
  /** A pasted probability strictly above this is foreground (MRCNN.THRESH_BINARIZE). */
  readonly threshold: number;
}

/** The number of detections of a paste, after checking that probabilities, boxes and image size agree. */
function checkedCount(maskProbs: Float32Array, boxes: ArrayLike<number>, o: InstanceMasksOptions): number {
  const m = o.resolution;
  const d = boxes.length / 4;
  if (!Number.isInteger(d)) throw new InputError(`mask paste: ${boxes.length} box coordinates is not a multiple of 4`);
  if (maskProbs.length !== d * m * m) {
    throw new InputError(`mask paste: ${maskProbs.length} mask values for ${d} boxes, expected ${d} x ${m} x ${m} = ${d * m * m}`);
  }
  if (!Number.isInteger(o.imageHeight) || !Number.isInteger(o.imageWidth) || o.imageHeight < 1 || o.imageWidth < 1) {
    throw new InputError(`mask paste: image size ${o.imageHeight} x ${o.imageWidth} is not a positive integer size`);
  }
  return d;
}

/** The pasted masks of one image (see module doc). */
export class InstanceMasks implements MaskSet {
  /** Number of detections. */
  readonly count: number;
  /** Original image height and width. */
  readonly height: number;
  readonly width: number;
  /** M of the M x M mask probabilities. */
  readonly resolution: number;
  /** Binarisation threshold (strict >). */
  readonly threshold: number;
  /** Per detection, in detection order. */
  readonly masks: readonly PastedMask[];
  private readonly probs: Float32Array;

  private constructor(probs: Float32Array, masks: PastedMask[], o: InstanceMasksOptions) {
    this.probs = probs;
    this.masks = masks;
    this.count = masks.length;
    this.height = o.imageHeight;
    this.width = o.imageWidth;
    this.resolution = o.resolution;
    this.threshold = o.threshold;
  }

  /**
   * Pastes D masks: `maskProbs` holds D x M x M probabilities (the [D,1,M,M] head output) and
   * `boxes` D x 4 boxes (x1, y1, x2, y2) in original-image pixels.
   */
  static paste(maskProbs: Float32Array, boxes: ArrayLike<number>, o: InstanceMasksOptions): InstanceMasks {
    const m = o.resolution;
    const d = checkedCount(maskProbs, boxes, o);
    const side = m + 2 * o.padding;
    const scratch = new Float32Array(side * side);
    const masks: PastedMask[] = [];
    for (let i = 0; i < d; i++) {
      const geometry = pasteGeometry(boxes, i, o);
      masks.push({ ...geometry, probs: pasteMask(maskProbs, i * m * m, geometry, o, scratch) });
    }
    return new InstanceMasks(maskProbs, masks, o);
  }

  /**
   * Pastes D masks as Detectron2's `paste_masks_in_image` does (grid_sample over each box, no
   * padding; see paste-detectron2.ts). Foreground is probability >= `o.threshold`, stored as the
   * equivalent strict threshold (the largest float32 below it).
   */
  static pasteDetectron2(maskProbs: Float32Array, boxes: ArrayLike<number>, o: InstanceMasksOptions): InstanceMasks {
    const m = o.resolution;
    const d = checkedCount(maskProbs, boxes, o);
    const masks: PastedMask[] = [];
    for (let i = 0; i < d; i++) {
      const geometry = detectron2PasteGeometry(boxes, i, o);
      masks.push({ ...geometry, probs: pasteMaskDetectron2(maskProbs, boxes, i, geometry, m) });
    }
    return new InstanceMasks(maskProbs, masks, { ...o, threshold: inclusiveThreshold(o.threshold) });
  }

  private check(i: number): PastedMask {
    if (!Number.isInteger(i) || i < 0 || i >= this.count) throw new RangeError(`detection ${i} out of range [0, ${this.count})`);
    return this.masks[i]!;
  }

  /** The pasted mask of detection `i`: its geometry and its box-local probabilities (no copy). */
  crop(i: number): PastedMask {
    return this.check(i);
  }

  /** The M x M probabilities the head produced, as [D,1,M,M] (the fixtures' `det.mask_probs.<i>`). */
  maskProbsTensor(): HostTensor<'float32'> {
    return hostTensor('float32', [this.count, 1, this.resolution, this.resolution], this.probs);
  }

  /** Full-image pasted probabilities of detection `i` (row-major H x W; zero outside its box). */
  probability(i: number): Float32Array {
    const m = this.check(i);
    const out = new Float32Array(this.height * this.width);
    for (let r = 0; r < m.height; r++) out.set(m.probs.subarray(r * m.width, (r + 1) * m.width), (m.y + r) * this.width + m.x);
    return out;
  }

  /** Full-image binary mask of detection `i` (row-major H x W, 1 where probability > threshold). */
  binary(i: number, threshold = this.threshold): Uint8Array {
    const out = new Uint8Array(this.height * this.width);
    this.writeBinary(i, threshold, out, 0);
    return out;
  }

  private writeBinary(i: number, threshold: number, out: Uint8Array, offset: number): void {
    const { probs, x, y, width, height } = this.check(i);
    for (let r = 0; r < height; r++) {
      const row = offset + (y + r) * this.width + x;
      const src = r * width;
      for (let c = 0; c < width; c++) out[row + c] = probs[src + c]! > threshold ? 1 : 0;
    }
  }

  /** All binary masks as [D,1,H,W] uint8 (the fixtures' `det.masks.<i>`). */
  binaryTensor(threshold = this.threshold): HostTensor<'uint8'> {
    const plane = this.height * this.width;
    const out = new Uint8Array(this.count * plane);
    for (let i = 0; i < this.count; i++) this.writeBinary(i, threshold, out, i * plane);
    return hostTensor('uint8', [this.count, 1, this.height, this.width], out);
  }

  /** All pasted probabilities as [D,1,H,W] float32 (torchvision's `masks` output). */
  probabilityTensor(): HostTensor<'float32'> {
    const plane = this.height * this.width;
    const out = new Float32Array(this.count * plane);
    for (let i = 0; i < this.count; i++) out.set(this.probability(i), i * plane);
    return hostTensor('float32', [this.count, 1, this.height, this.width], out);
  }

  /** Number of foreground pixels of detection `i`. */
  area(i: number, threshold = this.threshold): number {
    const { probs } = this.check(i);
    let n = 0;
    for (let k = 0; k < probs.length; k++) if (probs[k]! > threshold) n++;
    return n;
  }

  /** COCO RLE of detection `i` with uncompressed counts, computed from its crop (no full-image mask). */
  uncompressedRle(i: number, threshold = this.threshold): UncompressedRle {
    const m = this.check(i);
    const h = this.height;
    const counts: number[] = [];
    // Runs alternate 0/1 starting with 0; `run` is the length of the current run of `value`.
    let value = 0;
    let run = m.x * h; // the columns left of the crop
    const below = h - m.y - m.height;
    const { probs, width: stride } = m;
    const end = probs.length;
    for (let c = 0; c < stride; c++) {
      // Zeros above the crop (continuing the zeros below the previous column, if any).
      if (m.y > 0) {
        if (value === 1) {
          counts.push(run);
          run = 0;
          value = 0;
        }
        run += m.y;
      }
      for (let q = c; q < end; q += stride) {
        const v = probs[q]! > threshold ? 1 : 0;
        if (v !== value) {
          counts.push(run);
          run = 0;
          value = v;
        }
        run++;
      }
      if (below > 0) {
        if (value === 1) {
          counts.push(run);
          run = 0;
          value = 0;
        }
        run += below;
      }
    }
    const right = (this.width - m.x - m.width) * h;
    if (right > 0) {
      if (value === 1) {
        counts.push(run);
        run = 0;
      }
      run += right;
    }
    counts.push(run);
    return { size: [h, this.width], counts };
  }

  /** COCO RLE of detection `i` in pycocotools' compressed form (a COCO result's `segmentation`). */
  rle(i: number, threshold = this.threshold): CocoRle {
    return compressRle(this.uncompressedRle(i, threshold));
  }

  /** COCO RLEs of every detection, in detection order. */
  toRles(threshold = this.threshold): CocoRle[] {
    return this.masks.map((_, i) => this.rle(i, threshold));
  }
}
