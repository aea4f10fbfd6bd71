/**
 * `rcnn train-step --targets <train.json> --images <dir>`: a COCO dataset written from a public
 * training case (boxes as [x, y, w, h], category ids that are not the labels, masks as RLE,
 * keypoints with their category's names, one crowd region that must be ignored) gives the same
 * losses and gradients as the case directory with drawn sampling (same TRAIN.SEED); a bad
 * dataset fails with an error that names it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type HostTensor, decodeEntry, readSafetensorsFile } from '@rcnn/core';
import { findRepoRoot } from '@rcnn/testing';
import { errorLines, rcnn, tempDir } from './helpers.js';

const CASES = ['maskrcnn_tiny_train', 'keypointrcnn_tiny_train', 'fasterrcnn_tiny_train_batch2'] as const;

/** Category id of label l: not the label itself, so the id -> label map is exercised (ids sorted as the labels). */
const categoryId = (label: number): number => 10 * label + 3;

function readAll(path: string): Map<string, HostTensor> {
  const file = readSafetensorsFile(path);
  return new Map([...file.entries].map(([k, e]) => [k, decodeEntry(e, path)]));
}

/** COCO's uncompressed RLE of a row-major h x w bitmap: runs in column-major order, starting with zeros. */
function rle(mask: Uint8Array, h: number, w: number): { size: [number, number]; counts: number[] } {
  const counts: number[] = [];
  let value = 0;
  let run = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = mask[y * w + x] ? 1 : 0;
      if (v !== value) {
        counts.push(run);
        value = v;
        run = 0;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [h, w], counts };
}

/** The COCO dataset of a training case: its images (in the case directory) and targets. */
function cocoOfCase(dir: string): object {
  const caseJson = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as { images: { file: string; height: number; width: number }[]; model: { num_classes: number; num_keypoints?: number } };
  const ref = readAll(join(dir, 'reference.safetensors'));
  const images = caseJson.images.map((im, i) => ({ id: 100 + i, file_name: im.file, width: im.width, height: im.height }));
  const annotations: object[] = [];
  caseJson.images.forEach((im, i) => {
    const boxes = ref.get(`target.boxes.${i}`)!.data as Float32Array;
    const labels = ref.get(`target.labels.${i}`)!.data as BigInt64Array;
    const masks = ref.get(`target.masks.${i}`)?.data as Uint8Array | undefined;
    const keypoints = ref.get(`target.keypoints.${i}`);
    const hw = im.height * im.width;
    labels.forEach((label, g) => {
      const [x1, y1, x2, y2] = [boxes[4 * g]!, boxes[4 * g + 1]!, boxes[4 * g + 2]!, boxes[4 * g + 3]!];
      annotations.push({
        id: annotations.length + 1,
        image_id: 100 + i,
        category_id: categoryId(Number(label)),
        bbox: [x1, y1, x2 - x1, y2 - y1],
        iscrowd: 0,
        area: (x2 - x1) * (y2 - y1),
        ...(masks ? { segmentation: rle(masks.subarray(g * hw, (g + 1) * hw), im.height, im.width) } : {}),
        ...(keypoints ? { keypoints: Array.from((keypoints.data as Float32Array).subarray(g * keypoints.dims[1]! * 3, (g + 1) * keypoints.dims[1]! * 3)) } : {}),
      });
    });
    // A crowd region over the whole image: a training step ignores it (torchvision / Detectron drop crowds).
    annotations.push({ id: annotations.length + 1, image_id: 100 + i, category_id: categoryId(1), bbox: [0, 0, im.width, im.height], iscrowd: 1, area: hw, segmentation: rle(new Uint8Array(hw).fill(1), im.height, im.width) });
  });
  const k = caseJson.model.num_keypoints ?? 0;
  const categories = Array.from({ length: caseJson.model.num_classes - 1 }, (_, j) => ({
    id: categoryId(j + 1),
    name: `class_${j + 1}`,
    ...(k > 0 ? { keypoints: Array.from({ length: k }, (_, p) => `keypoint_${p}`) } : {}),
  }));
  return { images, annotations, categories };
}

describe('rcnn train-step on a COCO dataset', () => {
  for (const name of CASES) {
    it(`gives the case directory's losses and gradients: ${name}`, async () => {
      const dir = join(findRepoRoot(), 'fixtures', 'train', name);
      const tmp = tempDir();
      const dataset = join(tmp, 'train.json');
      writeFileSync(dataset, JSON.stringify(cocoOfCase(dir)));
      const fromCase = join(tmp, 'case.safetensors');
      const fromCoco = join(tmp, 'coco.safetensors');
      const a = await rcnn(['train-step', '--targets', dir, '--no-inject', '--dump', fromCase]);
      assert.equal(a.status, 0, a.stderr);
      const b = await rcnn(['train-step', '--config', join(dir, 'case.json'), '--weights', join(dir, 'weights.safetensors'), '--targets', dataset, '--images', dir, '--dump', fromCoco]);
      assert.equal(b.status, 0, b.stderr);
      // Every annotation kept but the crowd regions.
      assert.match(b.stderr, /skipped: \d+ crowd\n/);
      assert.doesNotMatch(b.stderr, /skipped: .*(degenerate|invalid|unknown|missing|no-annotations|few-keypoints)/);
      const caseDump = readAll(fromCase);
      const cocoDump = readAll(fromCoco);
      assert.deepEqual([...cocoDump.keys()].sort(), [...caseDump.keys()].sort());
      assert.ok([...caseDump.keys()].some((k) => k.startsWith('grad.')), 'the dump has gradients');
      // Same pixels, same targets, same seed, one thread: the same float32 numbers.
      for (const [key, want] of caseDump) {
        const got = cocoDump.get(key)!;
        assert.deepEqual(got.dims, want.dims, key);
        assert.deepEqual(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength), Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength), key);
      }
      assert.equal(b.stdout, a.stdout.replace(fromCase, fromCoco));
    });
  }

  it('refuses a bad dataset with an error naming the file', async () => {
    const dir = join(findRepoRoot(), 'fixtures', 'train', 'maskrcnn_tiny_train');
    const model = ['--config', join(dir, 'case.json'), '--weights', join(dir, 'weights.safetensors')];
    const tmp = tempDir();
    const dump = join(tmp, 'out.safetensors');
    const notJson = join(tmp, 'broken.json');
    writeFileSync(notJson, '{"images": [');
    const r1 = await rcnn(['train-step', ...model, '--targets', notJson, '--images', dir, '--dump', dump]);
    assert.equal(r1.status, 1);
    assert.match(errorLines(r1)[0], /^rcnn train-step: error: dataset .*broken\.json is not valid JSON/);
    const notCoco = join(tmp, 'not-coco.json');
    writeFileSync(notCoco, '{"images": []}');
    const r2 = await rcnn(['train-step', ...model, '--targets', notCoco, '--images', dir, '--dump', dump]);
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /dataset .*not-coco\.json is not a COCO dataset: it needs "images", "annotations" and "categories" arrays/);
    // One category too many for the model: the MODEL.NUM_CLASSES it would need.
    const coco = cocoOfCase(dir) as { categories: object[] };
    coco.categories.push({ id: 999, name: 'extra' });
    const extra = join(tmp, 'extra.json');
    writeFileSync(extra, JSON.stringify(coco));
    const r3 = await rcnn(['train-step', ...model, '--targets', extra, '--images', dir, '--dump', dump]);
    assert.equal(r3.status, 1);
    assert.match(r3.stderr, /extra\.json has \d+ categories, so the model needs MODEL\.NUM_CLASSES \d+/);
    // A JSON without --images, and --no-inject (which only a case directory has), are usage errors.
    const r4 = await rcnn(['train-step', ...model, '--targets', extra, '--dump', dump]);
    assert.equal(r4.status, 2);
    assert.match(r4.stderr, /is a file \(COCO annotations\), so --images <dir> is required/);
    const r5 = await rcnn(['train-step', ...model, '--targets', extra, '--images', dir, '--no-inject', '--dump', dump]);
    assert.equal(r5.status, 2);
    const r6 = await rcnn(['train-step', '--targets', join(tmp, 'nothing.json'), '--images', dir, '--dump', dump]);
    assert.equal(r6.status, 2);
    assert.match(r6.stderr, /--targets .*nothing\.json does not exist/);
  });
});
