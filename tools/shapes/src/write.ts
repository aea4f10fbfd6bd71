/** Writing generated splits to disk: `<out>/<split>.json` and `<out>/<split>/*.png`. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { type ShapesOptions, generateShapes } from './shapes.js';

/** Where a written split lies. */
export interface WrittenSplit {
  readonly name: string;
  /** The COCO JSON. */
  readonly dataset: string;
  /** The folder its file names are relative to. */
  readonly images: string;
  readonly imageCount: number;
  readonly annotationCount: number;
}

/** Generates one split and writes its PNGs and COCO JSON under `out`. */
export async function writeShapesSplit(out: string, name: string, options: ShapesOptions): Promise<WrittenSplit> {
  const { dataset, images } = generateShapes(options);
  const dir = join(out, name);
  await mkdir(dir, { recursive: true });
  for (const img of images) {
    await sharp(Buffer.from(img.pixels.buffer, img.pixels.byteOffset, img.pixels.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
      .png()
      .toFile(join(dir, img.fileName));
  }
  const json = join(out, `${name}.json`);
  await writeFile(json, `${JSON.stringify(dataset)}\n`);
  return { name, dataset: json, images: dir, imageCount: images.length, annotationCount: dataset.annotations.length };
}

/** Options of {@link writeShapesDataset}. */
export interface ShapesDatasetOptions extends Omit<ShapesOptions, 'count' | 'seed' | 'firstImageId' | 'prefix'> {
  readonly seed: number;
  readonly train: number;
  readonly val: number;
}

/**
 * A train and a val split from one seed: the val split is drawn from a derived seed and numbered
 * after the train images, so the two never share an image.
 */
export async function writeShapesDataset(out: string, options: ShapesDatasetOptions): Promise<WrittenSplit[]> {
  const { train, val, seed, ...rest } = options;
  const splits: WrittenSplit[] = [];
  if (train > 0) splits.push(await writeShapesSplit(out, 'train', { ...rest, count: train, seed, firstImageId: 1, prefix: 'train_' }));
  if (val > 0) splits.push(await writeShapesSplit(out, 'val', { ...rest, count: val, seed: seed + 1_000_003, firstImageId: train + 1, prefix: 'val_' }));
  return splits;
}
