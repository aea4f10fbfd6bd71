import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { configSections, createContainer, encodeRle, loadConfig } from '@rcnn/core';
import sharp from 'sharp';
import { CategoryMap, type CocoDatasetJson, DATALOADER_SECTION, DatasetError, dataLoaderSettings, loadCocoDataset, loadTrainingImage, register } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'rcnn-coco-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function png(name: string, width: number, height: number, channels: 1 | 3 | 4 = 3): Promise<void> {
  const data = Buffer.alloc(width * height * channels, 90);
  await sharp(data, { raw: { width, height, channels } }).png().toFile(join(dir, name));
}
await png('a.png', 40, 30);
await png('b.png', 20, 50);
await png('grey.png', 16, 12, 1);
await png('small.png', 10, 10);

const KP = ['top', 'left', 'right'];
const rle = encodeRle(Uint8Array.from({ length: 30 * 40 }, (_, i) => (i % 40 < 10 && Math.floor(i / 40) < 5 ? 1 : 0)), 30, 40);

/** A dataset with one example of every problem the loader handles. */
function dataset(): CocoDatasetJson {
  return {
    images: [
      { id: 1, file_name: 'a.png', width: 40, height: 30 },
      { id: 2, file_name: 'b.png', width: 20, height: 50 },
      { id: 3, file_name: 'missing.png', width: 20, height: 20 },
      { id: 4, file_name: 'grey.png', width: 16, height: 12 },
      { id: 5, file_name: 'small.png', width: 0, height: 10 },
    ],
    categories: [
      { id: 9, name: 'tri', keypoints: KP },
      { id: 4, name: 'box' },
    ],
    annotations: [
      { id: 10, image_id: 1, category_id: 4, bbox: [2, 3, 10, 8], area: 80, iscrowd: 0, segmentation: [[2, 3, 12, 3, 12, 11, 2, 11]] },
      { id: 11, image_id: 1, category_id: 9, bbox: [30, 20, 20, 20], area: 100, iscrowd: 0, segmentation: { size: [30, 40], counts: [...rle.counts] }, keypoints: [31, 21, 2, 35, 25, 1, 39, 29, 0], num_keypoints: 2 },
      { id: 12, image_id: 1, category_id: 4, bbox: [0, 0, 40, 30], area: 1200, iscrowd: 1, segmentation: { size: [30, 40], counts: [...rle.counts] } },
      { id: 13, image_id: 77, category_id: 4, bbox: [0, 0, 5, 5], area: 25, iscrowd: 0, segmentation: [[0, 0, 5, 0, 5, 5]] },
      { id: 14, image_id: 2, category_id: 5, bbox: [0, 0, 5, 5], area: 25, iscrowd: 0, segmentation: [[0, 0, 5, 0, 5, 5]] },
      { id: 15, image_id: 2, category_id: 4, bbox: [3, 3, 0, 5], area: 0, iscrowd: 0, segmentation: [[3, 3, 3, 8, 3, 3]] },
      { id: 16, image_id: 2, category_id: 4, bbox: [3, 3, 5, 5], area: 25, iscrowd: 0, segmentation: [[3, 3, 8, 3]] },
      { id: 17, image_id: 2, category_id: 9, bbox: [3, 3, 5, 5], area: 25, iscrowd: 0, segmentation: [[3, 3, 8, 3, 8, 8]], keypoints: [1, 2, 2] },
      { id: 18, image_id: 2, category_id: 4, bbox: [1, 1, 6, 6], area: 36, iscrowd: 0, segmentation: [[1, 1, 7, 1], [1, 1, 7, 1, 7, 7, 1, 7]] },
      { id: 19, image_id: 4, category_id: 4, bbox: [1, 1, 4, 4], area: 16, iscrowd: 0, segmentation: { size: [5, 5], counts: [25] } },
    ],
  };
}

test('every kind of bad item is skipped with its reason, naming the id; the rest becomes targets', async () => {
  const ds = await loadCocoDataset({ annotations: dataset(), imagesDir: dir, masks: true, keypoints: true, minKeypointsPerImage: 0 });
  const reasons = ds.skipped.map((s) => `${s.reason}:${s.annotationId ?? `image ${s.imageId}`}`).sort();
  assert.deepEqual(reasons, [
    'crowd:12',
    'degenerate-box:15',
    'invalid-image:image 5',
    'invalid-keypoints:17',
    'invalid-segmentation:16',
    'invalid-segmentation:19',
    'missing-image:image 3',
    'no-annotations:image 4',
    'unknown-category:14',
    'unknown-image:13',
  ]);
  for (const s of ds.skipped) assert.ok(s.message.length > 10);
  assert.match(ds.skipped.find((s) => s.reason === 'invalid-keypoints')!.message, /3 values, expected 9/);
  assert.match(ds.skipped.find((s) => s.annotationId === 19)!.message, /5 x 5, but the image is 12 x 16/);
  assert.deepEqual(ds.items.map((i) => i.imageId), [1, 2]);
  assert.equal(ds.keypointNames, KP);
  assert.match(ds.summary(), /^2 images, 3 annotations, 2 categories; skipped: /);

  // Labels: categories sorted by id (4 -> 1, 9 -> 2).
  assert.deepEqual(ds.categories.categoryIds, [0, 4, 9]);
  const t = ds.targets(0);
  assert.deepEqual([...t.labels], [1, 2]);
  // x1y1x2y2, clipped to the 40 x 30 image.
  assert.deepEqual([...t.boxes], [2, 3, 12, 11, 30, 20, 40, 30]);
  assert.equal(t.masks!.length, 2 * 30 * 40);
  const mask0 = t.masks!.subarray(0, 1200);
  assert.equal(mask0.reduce((a, v) => a + v, 0), 10 * 8);
  assert.equal(mask0[3 * 40 + 2], 1);
  assert.equal(mask0[11 * 40 + 12], 0);
  const mask1 = t.masks!.subarray(1200);
  assert.equal(mask1.reduce((a, v) => a + v, 0), 50);
  assert.deepEqual([...t.keypoints!], [0, 0, 0, 0, 0, 0, 0, 0, 0, 31, 21, 2, 35, 25, 1, 39, 29, 0]);
  // Image 2 keeps annotation 18: its 2-point polygon is dropped, the square kept.
  const t2 = ds.targets(1);
  assert.deepEqual([...t2.labels], [1]);
  assert.equal(t2.masks!.reduce((a, v) => a + v, 0), 36);
});

test('strict: one DatasetError listing every problem', async () => {
  await assert.rejects(loadCocoDataset({ annotations: dataset(), imagesDir: dir, masks: true, keypoints: true, strict: true }), (e: unknown) => {
    assert.ok(e instanceof DatasetError);
    assert.equal(e.code, 'E_DATASET');
    assert.equal(e.problems.length, 8);
    assert.match(e.message, /has 8 problems: /);
    return true;
  });
});

test('without masks / keypoints, segmentation and keypoint problems do not matter; FILTER_EMPTY_ANNOTATIONS off keeps empty images', async () => {
  const ds = await loadCocoDataset({ annotations: dataset(), imagesDir: dir, filterEmptyAnnotations: false });
  assert.deepEqual(ds.items.map((i) => i.imageId), [1, 2, 4]);
  assert.deepEqual(ds.items.map((i) => i.annotations.length), [2, 3, 1]);
  const t = ds.targets(1);
  assert.equal(t.masks, undefined);
  assert.equal(t.keypoints, undefined);
  assert.deepEqual([...t.labels], [1, 2, 1]);
});

test('keypoint datasets: images with fewer visible keypoints than the minimum are skipped', async () => {
  const ds = await loadCocoDataset({ annotations: dataset(), imagesDir: dir, keypoints: true, minKeypointsPerImage: 2 });
  assert.deepEqual(ds.items.map((i) => i.imageId), [1]);
  assert.match(ds.skipped.find((s) => s.reason === 'few-keypoints' && s.imageId === 2)!.message, /0 visible keypoints, fewer than DATALOADER.MIN_KEYPOINTS_PER_IMAGE 2/);
});

test('a given category map (from a checkpoint) is used as is: other categories are unknown', async () => {
  const ds = await loadCocoDataset({ annotations: dataset(), imagesDir: dir, categoryMap: CategoryMap.fromJSON({ categoryIds: [4], names: ['box'] }) });
  assert.deepEqual(ds.skipped.filter((s) => s.reason === 'unknown-category').map((s) => s.annotationId), [11, 14, 17]);
  assert.equal(ds.categories.numClasses, 2);
});

test('a dataset with nothing to train on, or that cannot be read, fails clearly', async () => {
  await assert.rejects(loadCocoDataset({ annotations: { images: [], annotations: [], categories: [] }, imagesDir: dir }), /has no image to train on/);
  await assert.rejects(loadCocoDataset({ annotations: join(dir, 'nope.json'), imagesDir: dir }), /cannot read the dataset/);
  writeFileSync(join(dir, 'bad.json'), '{"images": [');
  await assert.rejects(loadCocoDataset({ annotations: join(dir, 'bad.json'), imagesDir: dir }), /not valid JSON/);
  await assert.rejects(loadCocoDataset({ annotations: { images: [] } as unknown as CocoDatasetJson, imagesDir: dir }), /not a COCO dataset/);
  await assert.rejects(loadCocoDataset({ annotations: { ...dataset(), categories: [{ id: 4, name: 'box' }] }, imagesDir: dir, keypoints: true }), /no category with "keypoints" names/);
});

test('images decode to RGB of the dataset size with their targets; a size mismatch is an error naming the file', async () => {
  const ds = await loadCocoDataset({ annotations: dataset(), imagesDir: dir, filterEmptyAnnotations: false, masks: false });
  const img = await loadTrainingImage(ds, 2);
  assert.equal(img.imageId, 4);
  assert.equal(img.data.length, 16 * 12 * 3, 'a grey PNG becomes 3 channels');
  assert.equal(img.targets.labels.length, 1);
  const lying = dataset();
  (lying.images[0] as { width: number }).width = 41;
  const bad = await loadCocoDataset({ annotations: lying, imagesDir: dir });
  await assert.rejects(loadTrainingImage(bad, 0), /a\.png is 40 x 30, but the dataset says 41 x 30/);
});

test('DATALOADER.* is a registered config section with Detectron2 defaults', () => {
  const container = createContainer();
  register(container);
  assert.ok(configSections(container).includes(DATALOADER_SECTION));
  const config = loadConfig({ sections: configSections(container), layers: [{ DATALOADER: { FILTER_EMPTY_ANNOTATIONS: false } }] });
  const s = dataLoaderSettings(config);
  assert.equal(s.FILTER_EMPTY_ANNOTATIONS, false);
  assert.equal(s.ASPECT_RATIO_GROUPING, true);
  assert.equal(s.MIN_KEYPOINTS_PER_IMAGE, 1);
  assert.throws(() => dataLoaderSettings(loadConfig({})), /no section DATALOADER/);
});

test("legacyPlusOne (MODEL.LEGACY_PLUS_ONE): Detectron's xywh_to_xyxy and clip_xyxy_to_image", async () => {
  const boxes = async (legacyPlusOne: boolean): Promise<number[][]> => {
    const ds = await loadCocoDataset({ annotations: dataset(), imagesDir: dir, filterEmptyAnnotations: false, legacyPlusOne });
    const item = ds.items.find((i) => i.imageId === 1)!;
    return item.annotations.map((a) => [...a.box]);
  };
  // [2, 3, 10, 8]: pixels 2..11 x 3..10 -> x2 = 2 + 10 - 1; [30, 20, 20, 20] runs past the 40 x 30
  // image: clipped to the last pixel (39, 29) instead of the border (40, 30).
  assert.deepEqual(await boxes(true), [
    [2, 3, 11, 10],
    [30, 20, 39, 29],
  ]);
  assert.deepEqual(await boxes(false), [
    [2, 3, 12, 11],
    [30, 20, 40, 30],
  ]);
  // A 1-pixel-wide box is x2 = x1 under +1: no area, skipped as Detectron skips it.
  const one = { ...dataset(), annotations: [{ id: 1, image_id: 1, category_id: 4, bbox: [5, 5, 1, 4], area: 4, iscrowd: 0 }] };
  await assert.rejects(loadCocoDataset({ annotations: one, imagesDir: dir, legacyPlusOne: true }), /has no image to train on/);
  assert.equal((await loadCocoDataset({ annotations: one, imagesDir: dir })).items.length, 1);
});
