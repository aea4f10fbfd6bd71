/**
 * A memory estimate of the model a config builds, made before anything is built: the big buffers
 * of a two-stage detector are products of config keys (RoIs x channels x resolution², the
 * RoIAlign sampling grid, the padded masks a paste needs), so a config that would need tens of
 * gigabytes — and be killed, or fail deep inside onnxruntime with `std::bad_alloc` — is refused
 * with the estimate and the key to change. The figures are deliberately rough (float32, the
 * largest live buffers of each stage at the largest input the config allows); they are for
 * refusing absurd configs, not for sizing a machine.
 */
import { ConfigError, at } from '../errors.js';
import type { RcnnConfig } from './config.js';

/** One stage's share of a {@link MemoryEstimate}. */
export interface MemoryPart {
  /** What the buffer is, e.g. `mask head RoI features`. */
  readonly what: string;
  /** The config keys it grows with, the most decisive first. */
  readonly keys: readonly string[];
  readonly bytes: number;
}

/** The estimated peak memory of running a model built from a config. */
export interface MemoryEstimate {
  readonly bytes: number;
  /** Every part, largest first. */
  readonly parts: readonly MemoryPart[];
}

const F32 = 4;
/** Bytes onnxruntime's RoiAlign precomputes per sampling point (4 indices + 4 weights). */
const ROI_ALIGN_PRECALC_BYTES = 32;

/**
 * Estimates the memory of a forward pass of `batchSize` images through the model `config`
 * describes (float32; the image at its largest resized size TEST.SCALE x TEST.MAX_SIZE).
 */
export function estimateModelMemory(config: RcnnConfig, options: { batchSize?: number } = {}): MemoryEstimate {
  const b = Math.max(1, options.batchSize ?? 1);
  const { TEST, FPN, FAST_RCNN: box, MRCNN: mask, KRCNN: kp, MODEL, RESNETS } = config;
  const h = Math.min(TEST.SCALE, TEST.MAX_SIZE);
  const w = TEST.MAX_SIZE;
  const pixels = h * w;
  const parts: MemoryPart[] = [];
  const add = (what: string, keys: string[], bytes: number): void => {
    parts.push({ what, keys, bytes });
  };
  add('image batch', ['TEST.MAX_SIZE', 'TEST.SCALE'], b * 3 * pixels * F32);
  // Stem output (H/2) and the pyramid (P2 at H/4 and the coarser levels, ~4/3 of P2), twice for
  // the convs' inputs and outputs.
  const channels = Math.max(FPN.DIM, RESNETS.STEM_OUT_CHANNELS, 4 * (RESNETS.STAGE_PLANES[0] ?? 64));
  add('backbone and FPN feature maps', ['TEST.MAX_SIZE', 'FPN.DIM'], b * 2 * ((RESNETS.STEM_OUT_CHANNELS * pixels) / 4 + (4 / 3) * ((channels * pixels) / 16)) * F32);
  add('RPN candidate boxes', ['TEST.RPN_PRE_NMS_TOP_N'], b * TEST.RPN_PRE_NMS_TOP_N * 8 * 6 * F32);
  const rois = b * TEST.RPN_POST_NMS_TOP_N;
  // RoIAlign with sampling ratio 0 samples ceil(roi side / resolution) points per bin: at most
  // the whole image per RoI.
  const grid = (resolution: number, ratio: number): number => (ratio > 0 ? resolution * resolution * ratio * ratio : pixels);
  if (!MODEL.RPN_ONLY) {
    const r = box.ROI_XFORM_RESOLUTION;
    add('box head RoI features', ['FAST_RCNN.ROI_XFORM_RESOLUTION', 'TEST.RPN_POST_NMS_TOP_N', 'FPN.DIM'], rois * FPN.DIM * r * r * F32);
    add('box head RoIAlign sampling grid', ['FAST_RCNN.ROI_XFORM_SAMPLING_RATIO', 'FAST_RCNN.ROI_XFORM_RESOLUTION'], grid(r, box.ROI_XFORM_SAMPLING_RATIO) * ROI_ALIGN_PRECALC_BYTES);
    add('box head fc6 weights', ['FAST_RCNN.ROI_XFORM_RESOLUTION', 'FAST_RCNN.MLP_HEAD_DIM', 'FPN.DIM'], FPN.DIM * r * r * box.MLP_HEAD_DIM * F32);
    add('box head activations', ['FAST_RCNN.MLP_HEAD_DIM', 'TEST.RPN_POST_NMS_TOP_N'], rois * (2 * box.MLP_HEAD_DIM + 5 * MODEL.NUM_CLASSES) * F32);
  }
  const dets = b * TEST.DETECTIONS_PER_IM;
  if (MODEL.MASK_ON) {
    const r = mask.ROI_XFORM_RESOLUTION;
    const up = r * mask.UPSAMPLE_RATIO;
    const m = mask.RESOLUTION;
    const classes = mask.CLS_SPECIFIC_MASK ? MODEL.NUM_CLASSES : 1;
    add('mask head RoI features', ['MRCNN.ROI_XFORM_RESOLUTION', 'TEST.DETECTIONS_PER_IM'], dets * FPN.DIM * r * r * F32);
    add('mask head RoIAlign sampling grid', ['MRCNN.ROI_XFORM_SAMPLING_RATIO', 'MRCNN.ROI_XFORM_RESOLUTION'], grid(r, mask.ROI_XFORM_SAMPLING_RATIO) * ROI_ALIGN_PRECALC_BYTES);
    add('mask head convs', ['MRCNN.ROI_XFORM_RESOLUTION', 'MRCNN.CONV_HEAD_DIM', 'TEST.DETECTIONS_PER_IM'], 2 * dets * mask.CONV_HEAD_DIM * r * r * F32);
    add('mask head upsampled features', ['MRCNN.UPSAMPLE_RATIO', 'MRCNN.ROI_XFORM_RESOLUTION', 'MRCNN.DIM_REDUCED'], dets * mask.DIM_REDUCED * up * up * F32);
    add('mask logits', ['MRCNN.RESOLUTION', 'MODEL.NUM_CLASSES', 'TEST.DETECTIONS_PER_IM'], dets * classes * Math.max(m * m, up * up) * F32);
    const padded = m + 2 * mask.PASTE_PADDING;
    add('mask paste buffers', ['MRCNN.PASTE_PADDING', 'MRCNN.RESOLUTION'], dets * padded * padded * F32);
  }
  if (MODEL.KEYPOINTS_ON) {
    const r = kp.ROI_XFORM_RESOLUTION;
    const s = kp.HEATMAP_SIZE;
    add('keypoint head RoI features', ['KRCNN.ROI_XFORM_RESOLUTION', 'TEST.DETECTIONS_PER_IM'], dets * FPN.DIM * r * r * F32);
    add('keypoint head RoIAlign sampling grid', ['KRCNN.ROI_XFORM_SAMPLING_RATIO', 'KRCNN.ROI_XFORM_RESOLUTION'], grid(r, kp.ROI_XFORM_SAMPLING_RATIO) * ROI_ALIGN_PRECALC_BYTES);
    add('keypoint head convs', ['KRCNN.ROI_XFORM_RESOLUTION', 'KRCNN.CONV_HEAD_DIM'], 2 * dets * kp.CONV_HEAD_DIM * r * r * F32);
    add('keypoint heatmaps', ['KRCNN.HEATMAP_SIZE', 'KRCNN.NUM_KEYPOINTS', 'KRCNN.UP_SCALE'], 2 * dets * kp.NUM_KEYPOINTS * Math.max(s * s, (2 * r * kp.UP_SCALE) ** 2) * F32);
  }
  parts.sort((a, c) => c.bytes - a.bytes);
  return { bytes: parts.reduce((t, p) => t + p.bytes, 0), parts };
}

/** Bytes in a human unit (`12.3 GB`). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return `${bytes} bytes`;
  if (bytes >= 1e12) return `${(bytes / 1e12).toPrecision(3)} TB`;
  if (bytes >= 1e9) return `${(bytes / 1e9).toPrecision(3)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toPrecision(3)} MB`;
  return `${Math.round(bytes / 1e3)} kB`;
}

/**
 * {@link estimateModelMemory}, refused with a {@link ConfigError} when it exceeds
 * `LIMITS.MAX_MODEL_MEMORY_MB`: the message gives the estimate and its largest part, the key is
 * the one that part grows with most.
 */
export function checkModelMemory(config: RcnnConfig, options: { batchSize?: number } = {}): MemoryEstimate {
  const estimate = estimateModelMemory(config, options);
  const limitMb = config.LIMITS.MAX_MODEL_MEMORY_MB;
  if (estimate.bytes > limitMb * 2 ** 20) {
    const top = at(estimate.parts, 0, 'estimate.parts');
    const key = at(top.keys, 0, 'top.keys');
    const [section, name] = key.split('.');
    if (section === undefined || name === undefined) throw new RangeError(`memory estimate key ${key} is not SECTION.KEY`);
    const value = (config[section] as Readonly<Record<string, unknown>>)[name];
    throw new ConfigError(
      `this config needs about ${formatBytes(estimate.bytes)} to run ${options.batchSize ?? 1} image(s) at a time, more than LIMITS.MAX_MODEL_MEMORY_MB (${limitMb} MB); ` +
        `the largest part is the ${top.what} (${formatBytes(top.bytes)}, from ${top.keys.join(', ')}; ${key} is ${JSON.stringify(value)})`,
      { key, hint: `lower ${key}${top.keys.length > 1 ? ` (or ${top.keys.slice(1).join(', ')})` : ''}, or raise LIMITS.MAX_MODEL_MEMORY_MB if the machine has the memory` },
    );
  }
  return estimate;
}
