import { gaussian, seededRandom } from '@rcnn/core';
/**
 * Synthetic inputs of the conformance kit: image batches of several sizes, feature maps, RoIs,
 * proposals and detections in core's layouts, drawn from a seeded generator so a failing run can
 * be repeated exactly.
 */
import type { HostTensor, RcnnConfig } from '@rcnn/core';

/** A feature map the kit feeds to a stage that consumes features (FPN, RPN, RoI heads). */
export interface FeatureSpec {
  /** torchvision level name (`'0'`..`'3'`, `'pool'`). */
  readonly name: string;
  readonly channels: number;
  /** Pyramid level log2(stride). */
  readonly level: number;
  /** 1 / stride (default 2^-level). */
  readonly spatialScale?: number;
}

/** One batch the stage is run on. */
export interface ConformanceCase {
  /** Number of images N. */
  readonly batch: number;
  /** Padded input size (Hp, Wp) of the batch. */
  readonly padded: readonly [number, number];
  /** (h, w) of each image after resizing, before padding. */
  readonly imageSizes: readonly (readonly [number, number])[];
  /** (h, w) of each original image. */
  readonly originalSizes: readonly (readonly [number, number])[];
  /** RoIs / proposals / detections of each image (RoI-level slots). */
  readonly rowsPerImage: readonly number[];
  /** Label of the case in the report (`N=2 224x320`). */
  readonly label: string;
}

// The seeded generators are core's (the random weights use the same ones).
export { gaussian, seededRandom };

/**
 * The cases of a run: every batch size with every padded size. In a batch of several images the
 * later ones are smaller than the padded size (as a real batch of mixed sizes is) and, for the RoI
 * slots, have fewer rows, so per-image bookkeeping is exercised.
 */
export function conformanceCases(sizes: readonly (readonly [number, number])[], batchSizes: readonly number[], rowsPerImage: number): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  for (const padded of sizes) {
    for (const batch of batchSizes) {
      const imageSizes: [number, number][] = [];
      const rows: number[] = [];
      for (let i = 0; i < batch; i++) {
        // Image 0 fills the padded size; later images are up to half as large on one side.
        const h = i === 0 ? padded[0] : Math.max(8, Math.round(padded[0] * (1 - 0.2 * i)));
        const w = i === 0 ? padded[1] : Math.max(8, Math.round(padded[1] * (1 - 0.35 * i)));
        imageSizes.push([h, w]);
        rows.push(Math.max(1, rowsPerImage - 2 * i));
      }
      const originalSizes = imageSizes.map(([h, w]) => [Math.round(h * 1.5), Math.round(w * 1.25)] as const);
      cases.push({ batch, padded, imageSizes, originalSizes, rowsPerImage: rows, label: `N=${batch} ${padded[0]}x${padded[1]}` });
    }
  }
  return cases;
}

/** The case with no RoIs at all (K = 0 proposals, D = 0 detections) for the RoI-level slots. */
export function emptyCase(padded: readonly [number, number], batch: number): ConformanceCase {
  const imageSizes = Array.from({ length: batch }, () => padded);
  return { batch, padded, imageSizes, originalSizes: imageSizes, rowsPerImage: Array.from({ length: batch }, () => 0), label: `N=${batch} ${padded[0]}x${padded[1]} no RoIs` };
}

/** Size of a level of a padded input: ceil(H · scale), as strided convolutions with 'same' padding give. */
export function levelSize(padded: readonly [number, number], spatialScale: number): [number, number] {
  return [Math.max(1, Math.ceil(padded[0] * spatialScale)), Math.max(1, Math.ceil(padded[1] * spatialScale))];
}

/** Name of pyramid level `level` in torchvision's convention: P2..P5 → '0'..'3', P6 → 'pool'. */
export function levelName(level: number): string {
  if (level >= 2 && level <= 5) return String(level - 2);
  return level === 6 ? 'pool' : `p${level}`;
}

/** Width of the C4 feature map (layer3 of the configured ResNet: 4 x RESNETS.STAGE_PLANES[2]). */
function c4Channels(config: RcnnConfig): number {
  return 4 * (config.RESNETS.STAGE_PLANES[2] ?? 256);
}

/** Default bottom-up maps of an FPN: ResNet layer1..layer4, levels 2..5, 4 x RESNETS.STAGE_PLANES. */
export function defaultBottomUp(config: RcnnConfig): FeatureSpec[] {
  const planes = config.RESNETS.STAGE_PLANES.length >= 4 ? config.RESNETS.STAGE_PLANES.slice(0, 4) : [64, 128, 256, 512];
  return planes.map((p, i) => ({ name: String(i), channels: 4 * p, level: i + 2 }));
}

/**
 * Default features of the RPN (`which` = 'rpn') or the RoI heads ('roi'): with FPN.FPN_ON the
 * levels buildModel hands them (FPN.RPN_* / FPN.ROI_*, FPN.DIM channels), else the single C4 map
 * (level 4, 4 x RESNETS.STAGE_PLANES[2] channels).
 */
export function defaultFeatures(config: RcnnConfig, which: 'rpn' | 'roi'): FeatureSpec[] {
  if (!config.FPN.FPN_ON) return [{ name: '0', channels: c4Channels(config), level: 4 }];
  const [min, max] = which === 'rpn' ? [config.FPN.RPN_MIN_LEVEL, config.FPN.RPN_MAX_LEVEL] : [config.FPN.ROI_MIN_LEVEL, config.FPN.ROI_MAX_LEVEL];
  const specs: FeatureSpec[] = [];
  for (let level = min; level <= max; level++) specs.push({ name: levelName(level), channels: config.FPN.DIM, level });
  return specs;
}

/** A float32 tensor of standard-normal values (times `scale`). */
export function randomFloat(dims: readonly number[], rand: () => number, scale = 1): HostTensor<'float32'> {
  const normal = gaussian(rand);
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = scale * normal();
  return { dtype: 'float32', dims: [...dims], data };
}

/** The batch inputs (`images`, `image_sizes`, `original_sizes`) of a case. */
export function batchFeeds(c: ConformanceCase, rand: () => number): Record<string, HostTensor> {
  const images = randomFloat([c.batch, 3, c.padded[0], c.padded[1]], rand);
  // Pixels past an image's own size are padding: zero, as the image transform leaves them.
  const [hp, wp] = c.padded;
  const data = images.data;
  c.imageSizes.forEach(([h, w], n) => {
    for (let ch = 0; ch < 3; ch++) {
      for (let y = 0; y < hp; y++) {
        for (let x = 0; x < wp; x++) if (y >= h || x >= w) data[((n * 3 + ch) * hp + y) * wp + x] = 0;
      }
    }
  });
  const sizes = (list: ConformanceCase['imageSizes']): HostTensor<'int64'> => ({
    dtype: 'int64',
    dims: [list.length, 2],
    data: BigInt64Array.from(list.flatMap(([h, w]) => [BigInt(h), BigInt(w)])),
  });
  return { images, image_sizes: sizes(c.imageSizes), original_sizes: sizes(c.originalSizes) };
}

/**
 * Boxes inside image (h, w): a spread of sizes from a few pixels to the whole image, so that RoIs
 * land on every pyramid level and touch the borders. Returns [count * 4] (x1, y1, x2, y2).
 */
export function randomBoxes(count: number, h: number, w: number, rand: () => number): Float32Array {
  const out = new Float32Array(count * 4);
  for (let i = 0; i < count; i++) {
    let bw: number;
    let bh: number;
    if (i === 0) {
      bw = w;
      bh = h;
    } else if (i === 1) {
      bw = Math.min(w, 2.5);
      bh = Math.min(h, 3);
    } else {
      bw = Math.max(1, w * (0.1 + 0.8 * rand()));
      bh = Math.max(1, h * (0.1 + 0.8 * rand()));
    }
    const x1 = (w - bw) * rand();
    const y1 = (h - bh) * rand();
    out.set([x1, y1, x1 + bw, y1 + bh], 4 * i);
  }
  return out;
}

/** Flattened rows of a case (RoIs or detections): boxes [R,4], batch index [R] (non-decreasing). */
export function flatRows(c: ConformanceCase, rand: () => number): { boxes: HostTensor<'float32'>; batchIndex: HostTensor<'int64'>; total: number } {
  const total = c.rowsPerImage.reduce((a, b) => a + b, 0);
  const boxes = new Float32Array(total * 4);
  const batchIndex = new BigInt64Array(total);
  let at = 0;
  c.rowsPerImage.forEach((count, n) => {
    const [h, w] = c.imageSizes[n]!;
    boxes.set(randomBoxes(count, h, w, rand), at * 4);
    batchIndex.fill(BigInt(n), at, at + count);
    at += count;
  });
  return { boxes: { dtype: 'float32', dims: [total, 4], data: boxes }, batchIndex: { dtype: 'int64', dims: [total], data: batchIndex }, total };
}

/**
 * Proposals in core's padded layout: K = max rows per image slots, image i's first rows[i] slots
 * valid and sorted by score, padding slots with zero boxes and -inf scores.
 */
export function paddedProposals(c: ConformanceCase, rand: () => number): { feeds: Record<string, HostTensor>; k: number } {
  const k = Math.max(0, ...c.rowsPerImage);
  const n = c.batch;
  const boxes = new Float32Array(n * k * 4);
  const scores = new Float32Array(n * k).fill(-Infinity);
  const valid = new Uint8Array(n * k);
  c.rowsPerImage.forEach((count, i) => {
    const [h, w] = c.imageSizes[i]!;
    boxes.set(randomBoxes(count, h, w, rand), i * k * 4);
    const s = Array.from({ length: count }, () => rand()).sort((a, b) => b - a);
    scores.set(s, i * k);
    valid.fill(1, i * k, i * k + count);
  });
  return {
    k,
    feeds: {
      'conformance.proposals.boxes': { dtype: 'float32', dims: [n, k, 4], data: boxes },
      'conformance.proposals.scores': { dtype: 'float32', dims: [n, k], data: scores },
      'conformance.proposals.valid': { dtype: 'bool', dims: [n, k], data: valid },
      'conformance.proposals.counts': { dtype: 'int64', dims: [n], data: BigInt64Array.from(c.rowsPerImage, (v) => BigInt(v)) },
    },
  };
}
