/**
 * A synthetic shapes dataset: circles, squares and triangles of random colour, size, rotation
 * and position on textured backgrounds, overlapping, with COCO annotations (box, mask, area) and,
 * for triangles, three corner keypoints. Everything follows from one seed.
 *
 * Masks are exact by construction: each shape is painted with the very pixels pycocotools
 * rasterises its polygon to (`rleFromPolygon`), later shapes occlude earlier ones, and each
 * annotation is the visible part: the polygon when nothing covers the shape, otherwise the RLE of
 * what is left. A placement that would hide more than a set share of an earlier shape is redrawn,
 * so every painted shape is annotated and mostly visible.
 */
import { rleFromPolygon, rleToBox } from '@rcnn/coco';
import type { CocoAnnotationJson, CocoCategoryJson, CocoDatasetJson, CocoImageJson } from '@rcnn/coco';
import { compressRle, decodeRle, encodeRle, seededRandom } from '@rcnn/core';

/** The categories: 1 circle, 2 square, 3 triangle (with keypoints). */
export const SHAPE_CATEGORIES: readonly CocoCategoryJson[] = [
  { id: 1, name: 'circle', supercategory: 'shape' },
  { id: 2, name: 'square', supercategory: 'shape' },
  { id: 3, name: 'triangle', supercategory: 'shape', keypoints: ['top', 'left', 'right'], skeleton: [[1, 2], [2, 3], [3, 1]] },
];

/** OKS sigmas suggested for the triangle corners (`rcnn eval --oks-sigmas 0.05,0.05,0.05`). */
export const SHAPE_OKS_SIGMAS: readonly number[] = [0.05, 0.05, 0.05];

/** Options of {@link generateShapes}. */
export interface ShapesOptions {
  /** Number of images. */
  readonly count: number;
  readonly seed: number;
  /** Image size (default 128 x 128). */
  readonly width?: number;
  readonly height?: number;
  /** Shapes per image (default 1..4). */
  readonly minObjects?: number;
  readonly maxObjects?: number;
  /** Shape size (circle diameter, square side, triangle circumscribed diameter), default 16..56 px. */
  readonly minSize?: number;
  readonly maxSize?: number;
  /** Largest share of an earlier shape's visible pixels a new shape may cover (default 0.4). */
  readonly maxOcclusion?: number;
  /** Id of the first image (default 1); annotation ids follow the same numbering per call. */
  readonly firstImageId?: number;
  /** File name prefix (default `shape_`). */
  readonly prefix?: string;
}

/** One generated image: RGB pixels, row-major. */
export interface ShapesImage {
  readonly fileName: string;
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint8Array;
}

/** A generated split: the COCO dataset and its images. */
export interface ShapesSplit {
  readonly dataset: CocoDatasetJson;
  readonly images: readonly ShapesImage[];
}

interface Placed {
  readonly category: number;
  readonly polygon: number[];
  /** Full mask, row-major 0/1. */
  readonly mask: Uint8Array;
  readonly colour: readonly [number, number, number];
}

type Rand = () => number;
const uniform = (rand: Rand, lo: number, hi: number): number => lo + (hi - lo) * rand();
const round2 = (v: number): number => Math.round(v * 100) / 100;

/** A textured background: a base colour with stripes or a checkerboard and noise. */
function background(rand: Rand, w: number, h: number): { pixels: Uint8Array; mean: [number, number, number] } {
  const base = [uniform(rand, 30, 225), uniform(rand, 30, 225), uniform(rand, 30, 225)];
  const kind = Math.floor(rand() * 3);
  const period = uniform(rand, 6, 20);
  const angle = uniform(rand, 0, Math.PI);
  const amp = uniform(rand, 10, 35);
  const noise = uniform(rand, 4, 16);
  const pixels = new Uint8Array(w * h * 3);
  const mean: [number, number, number] = [0, 0, 0];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const u = x * Math.cos(angle) + y * Math.sin(angle);
      const pattern = kind === 0 ? Math.sin((2 * Math.PI * u) / period) : kind === 1 ? ((Math.floor(x / period) + Math.floor(y / period)) % 2) * 2 - 1 : 0;
      for (let c = 0; c < 3; c++) {
        const v = base[c]! + amp * pattern + noise * (rand() * 2 - 1);
        const b = Math.max(0, Math.min(255, Math.round(v)));
        pixels[(y * w + x) * 3 + c] = b;
        mean[c]! += b / (w * h);
      }
    }
  }
  return { pixels, mean };
}

/** A colour far enough from the background's mean to be seen. */
function shapeColour(rand: Rand, mean: readonly number[]): [number, number, number] {
  for (;;) {
    const c: [number, number, number] = [Math.floor(rand() * 256), Math.floor(rand() * 256), Math.floor(rand() * 256)];
    if (Math.hypot(c[0] - mean[0]!, c[1] - mean[1]!, c[2] - mean[2]!) > 110) return c;
  }
}

/** The polygon of a shape of `category` centred at (cx, cy) with size `size`. */
function shapePolygon(rand: Rand, category: number, cx: number, cy: number, size: number): number[] {
  const r = size / 2;
  const rot = uniform(rand, 0, 2 * Math.PI);
  const points: number[] = [];
  if (category === 1) {
    for (let i = 0; i < 32; i++) points.push(cx + r * Math.cos((2 * Math.PI * i) / 32), cy + r * Math.sin((2 * Math.PI * i) / 32));
  } else if (category === 2) {
    // A square of side 0.8 * size: its corners lie on a circle of radius side / sqrt(2).
    const corner = (0.8 * size) / Math.SQRT2;
    for (let i = 0; i < 4; i++) points.push(cx + corner * Math.cos(rot + (Math.PI * i) / 2), cy + corner * Math.sin(rot + (Math.PI * i) / 2));
  } else {
    for (let i = 0; i < 3; i++) {
      const a = rot + (2 * Math.PI * i) / 3 + uniform(rand, -0.35, 0.35);
      const rr = r * uniform(rand, 0.85, 1);
      points.push(cx + rr * Math.cos(a), cy + rr * Math.sin(a));
    }
  }
  return points.map(round2);
}

/** Triangle corners as keypoints: top (smallest y), then the other two by x (left, right). */
function triangleKeypoints(polygon: readonly number[]): [number, number][] {
  const pts: [number, number][] = [
    [polygon[0]!, polygon[1]!],
    [polygon[2]!, polygon[3]!],
    [polygon[4]!, polygon[5]!],
  ];
  pts.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  const [top, ...rest] = pts;
  rest.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return [top!, rest[0]!, rest[1]!];
}

/** Generates `count` images with their COCO dataset. */
export function generateShapes(options: ShapesOptions): ShapesSplit {
  const w = options.width ?? 128;
  const h = options.height ?? 128;
  const minObjects = options.minObjects ?? 1;
  const maxObjects = options.maxObjects ?? 4;
  const minSize = options.minSize ?? 16;
  const maxSize = Math.min(options.maxSize ?? 56, w - 2, h - 2);
  const maxOcclusion = options.maxOcclusion ?? 0.4;
  const firstId = options.firstImageId ?? 1;
  const prefix = options.prefix ?? 'shape_';
  if (!(minObjects >= 1 && maxObjects >= minObjects && minSize >= 4 && maxSize >= minSize)) {
    throw new Error(`shapes: need 1 <= minObjects <= maxObjects and 4 <= minSize <= maxSize (< image size), got objects ${minObjects}..${maxObjects}, sizes ${minSize}..${maxSize}`);
  }
  const rand = seededRandom(options.seed);
  const images: ShapesImage[] = [];
  const cocoImages: CocoImageJson[] = [];
  const annotations: CocoAnnotationJson[] = [];
  for (let n = 0; n < options.count; n++) {
    const imageId = firstId + n;
    const fileName = `${prefix}${String(imageId).padStart(6, '0')}.png`;
    const { pixels, mean } = background(rand, w, h);
    const owner = new Int16Array(w * h).fill(-1);
    const placed: Placed[] = [];
    const wanted = minObjects + Math.floor(rand() * (maxObjects - minObjects + 1));
    for (let attempt = 0; placed.length < wanted && attempt < wanted * 20; attempt++) {
      const category = 1 + Math.floor(rand() * 3);
      const size = uniform(rand, minSize, maxSize);
      const cx = uniform(rand, size / 2 + 1, w - size / 2 - 1);
      const cy = uniform(rand, size / 2 + 1, h - size / 2 - 1);
      const polygon = shapePolygon(rand, category, cx, cy, size);
      const mask = decodeRle(rleFromPolygon(polygon, h, w));
      // Would it hide too much of a shape already there?
      const covered = new Array<number>(placed.length).fill(0);
      const visible = new Array<number>(placed.length).fill(0);
      for (let p = 0; p < mask.length; p++) {
        const o = owner[p]!;
        if (o < 0) continue;
        visible[o]!++;
        if (mask[p]) covered[o]!++;
      }
      if (covered.some((c, i) => c > maxOcclusion * visible[i]!)) continue;
      const colour = shapeColour(rand, mean);
      const shade = uniform(rand, 0.85, 1.15);
      for (let p = 0; p < mask.length; p++) {
        if (!mask[p]) continue;
        owner[p] = placed.length;
        // A gentle gradient across the shape so it is not perfectly flat.
        const g = shade + (0.15 * ((p % w) - cx)) / size;
        for (let c = 0; c < 3; c++) pixels[p * 3 + c] = Math.max(0, Math.min(255, Math.round(colour[c]! * g)));
      }
      placed.push({ category, polygon, mask, colour });
    }
    placed.forEach((shape, i) => {
      const visibleMask = Uint8Array.from(owner, (o) => (o === i ? 1 : 0));
      const rle = encodeRle(visibleMask, h, w);
      const area = visibleMask.reduce((a, v) => a + v, 0);
      const occluded = shape.mask.some((v, p) => v === 1 && owner[p] !== i);
      const ann: Record<string, unknown> = {
        id: annotations.length + 1,
        image_id: imageId,
        category_id: shape.category,
        bbox: rleToBox(rle),
        area,
        iscrowd: 0,
        segmentation: occluded ? compressRle(rle) : [shape.polygon],
      };
      if (shape.category === 3) {
        const kps = triangleKeypoints(shape.polygon);
        const flat: number[] = [];
        for (const [x, y] of kps) {
          // Hidden by a later shape: labelled (1) but not visible.
          const px = Math.min(w - 1, Math.max(0, Math.floor(x)));
          const py = Math.min(h - 1, Math.max(0, Math.floor(y)));
          const o = owner[py * w + px]!;
          flat.push(x, y, o > i ? 1 : 2);
        }
        ann.keypoints = flat;
        ann.num_keypoints = 3;
      } else {
        ann.keypoints = [0, 0, 0, 0, 0, 0, 0, 0, 0];
        ann.num_keypoints = 0;
      }
      annotations.push(ann as unknown as CocoAnnotationJson);
    });
    images.push({ fileName, width: w, height: h, pixels });
    cocoImages.push({ id: imageId, file_name: fileName, width: w, height: h });
  }
  return {
    dataset: {
      info: { description: `rcnn-node synthetic shapes (seed ${options.seed})`, oks_sigmas: SHAPE_OKS_SIGMAS },
      images: cocoImages,
      categories: SHAPE_CATEGORIES,
      annotations,
    },
    images,
  };
}
