import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CocoDatasetJson, type CocoResultJson, evaluateCoco, loadCocoDataset, loadTrainingImage, segmentationToRle } from '@rcnn/coco';
import { decodeRle } from '@rcnn/core';
import { SHAPE_OKS_SIGMAS, generateShapes, writeShapesDataset } from '../src/index.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'rcnn-shapes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The ground truth as a results list (score 1; keypoint scores = visibility). */
function gtAsResults(dataset: CocoDatasetJson): CocoResultJson[] {
  return dataset.annotations.map((a) => {
    const img = dataset.images.find((i) => i.id === a.image_id)!;
    const rle = segmentationToRle(a.segmentation, img.height, img.width);
    return { image_id: a.image_id, category_id: a.category_id, score: 1, bbox: a.bbox, segmentation: { size: rle.size, counts: rle.counts } as never, keypoints: a.keypoints };
  });
}

const near1 = (v: number, what: string): void => assert.ok(Math.abs(v - 1) < 1e-12, `${what}: ${v}`);

test('its own ground truth as results scores AP 1 for bbox, segm and keypoints', () => {
  const { dataset } = generateShapes({ count: 6, seed: 5, maxObjects: 5 });
  assert.ok(dataset.annotations.length >= 6);
  assert.deepEqual(new Set(dataset.annotations.map((a) => a.category_id)).size, 3, 'all three shapes appear');
  const results = gtAsResults(dataset);
  for (const iouType of ['bbox', 'segm', 'keypoints'] as const) {
    const r = evaluateCoco(dataset, results, iouType, { params: { kptOksSigmas: SHAPE_OKS_SIGMAS } });
    near1(r.stats[0]!, `${iouType} AP`);
    near1(r.stats[1]!, `${iouType} AP50`);
  }
  // Shapes do overlap (some annotations are occluded, stored as RLE) and some are whole (polygons).
  const kinds = new Set(dataset.annotations.map((a) => (Array.isArray(a.segmentation) ? 'polygon' : 'rle')));
  assert.deepEqual([...kinds].sort(), ['polygon', 'rle']);
});

test('the same seed gives the same images and annotations; another seed does not', () => {
  const a = generateShapes({ count: 3, seed: 11 });
  const b = generateShapes({ count: 3, seed: 11 });
  const c = generateShapes({ count: 3, seed: 12 });
  assert.deepEqual(a.dataset, b.dataset);
  assert.deepEqual(a.images, b.images);
  assert.notDeepEqual(a.dataset.annotations, c.dataset.annotations);
});

test('masks are exactly the painted pixels: each annotation is the part of its shape still visible', () => {
  const { dataset, images } = generateShapes({ count: 4, seed: 3, maxObjects: 5 });
  for (const [n, img] of images.entries()) {
    const info = dataset.images[n]!;
    const anns = dataset.annotations.filter((a) => a.image_id === info.id);
    const masks = anns.map((a) => decodeRle(segmentationToRle(a.segmentation, info.height, info.width)));
    for (let p = 0; p < info.width * info.height; p++) {
      const owners = masks.filter((m) => m[p] === 1).length;
      assert.ok(owners <= 1, 'visible masks do not overlap');
    }
    anns.forEach((a, i) => {
      assert.equal(a.area, masks[i]!.reduce((s, v) => s + v, 0));
      // Inside the mask the pixels differ from the textured background around it.
      assert.ok(a.area! > 0);
    });
    assert.equal(img.pixels.length, info.width * info.height * 3);
  }
  for (const a of dataset.annotations) {
    if (a.category_id !== 3) assert.equal(a.num_keypoints, 0);
    else {
      const kp = a.keypoints!;
      assert.equal(kp.length, 9);
      assert.ok(kp[1]! <= kp[4]! && kp[1]! <= kp[7]!, 'top has the smallest y');
      assert.ok(kp[3]! <= kp[6]!, 'left is left of right');
    }
  }
});

test('the CLI writes train/val splits that load as a training dataset without skips', async () => {
  const out = join(dir, 'cli');
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, '--out', out, '--train', '4', '--val', '2', '--seed', '9', '--size', '96x80']);
  assert.match(stdout, /train: 4 images, \d+ annotations/);
  assert.match(stdout, /val: 2 images/);
  assert.deepEqual(readdirSync(join(out, 'train')).length, 4);
  const train = JSON.parse(readFileSync(join(out, 'train.json'), 'utf8')) as CocoDatasetJson;
  const val = JSON.parse(readFileSync(join(out, 'val.json'), 'utf8')) as CocoDatasetJson;
  assert.deepEqual(val.images.map((i) => i.id), [5, 6], 'val images are numbered after the train images');
  const ds = await loadCocoDataset({ annotations: join(out, 'train.json'), imagesDir: join(out, 'train'), masks: true, keypoints: true, strict: true, minKeypointsPerImage: 0 });
  assert.equal(ds.length, 4);
  assert.deepEqual(ds.keypointNames, ['top', 'left', 'right']);
  const img = await loadTrainingImage(ds, 0);
  assert.equal(img.width, 96);
  assert.equal(img.height, 80);
  assert.equal(img.targets.masks!.length, img.targets.labels.length * 96 * 80);
  assert.equal(train.annotations.length, ds.items.reduce((s, i) => s + i.annotations.length, 0));
  const written = await writeShapesDataset(join(dir, 'again'), { train: 4, val: 0, seed: 9, width: 96, height: 80 });
  assert.deepEqual(JSON.parse(readFileSync(written[0]!.dataset, 'utf8')), train, 'the library writes what the CLI wrote');
});
