import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { evalCommand } from '../src/commands/eval.js';
import { errorLines, rcnn, tempDir, writePhoto, writeToyConfig, writeToyWeights } from './helpers.js';

const FIXTURES = fileURLToPath(new URL('../../../../fixtures/eval/', import.meta.url));
const TOLERANCE = 1e-9;
const dir = tempDir();

type Stats = Record<string, unknown> & { per_category: Record<string, Record<string, number | null>> };

describe('rcnn eval --dataset gt.json --results results.json --json out.json', () => {
  const cases = readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  it('covers the five fixture cases', () => assert.equal(cases.length, 5));
  for (const name of cases) {
    it(`${name}: every number of stats.json (pycocotools) within ${TOLERANCE}`, async () => {
      const out = join(dir, `${name}.json`);
      const r = await rcnn(['eval', '--dataset', join(FIXTURES, name, 'gt.json'), '--results', join(FIXTURES, name, 'results.json'), '--json', out]);
      assert.equal(r.status, 0, r.stderr);
      const want = JSON.parse(readFileSync(join(FIXTURES, name, 'stats.json'), 'utf8')) as Stats;
      const got = JSON.parse(readFileSync(out, 'utf8')) as Stats;
      // The iou types the results support are exactly those pycocotools was run with.
      assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
      for (const iouType of Object.keys(want).filter((k) => k !== 'per_category')) {
        const w = want[iouType] as number[];
        const g = got[iouType] as number[];
        assert.equal(g.length, w.length);
        w.forEach((v, i) => assert.ok(Math.abs(g[i]! - v) <= TOLERANCE, `${iouType}[${i}]: ${g[i]} vs ${v}`));
        assert.match(r.stdout, new RegExp(`Evaluate annotation type \\*${iouType}\\*`));
        assert.deepEqual(Object.keys(got.per_category[iouType]!).sort(), Object.keys(want.per_category[iouType]!).sort());
        for (const [cat, v] of Object.entries(want.per_category[iouType]!)) {
          const gv = got.per_category[iouType]![cat];
          if (v === null) assert.equal(gv, null);
          else assert.ok(typeof gv === 'number' && Math.abs(gv - v) <= TOLERANCE, `${iouType} category ${cat}: ${gv} vs ${v}`);
        }
      }
      assert.match(r.stdout, / Average Precision {2}\(AP\) @\[ IoU=0\.50:0\.95 \| area= {3}all \| maxDets=(100|20) \] = \d\.\d{3}/);
    });
  }

  it('--json - writes the numbers to stdout and the table to stderr', async () => {
    const r = await rcnn(['eval', '--dataset', join(FIXTURES, 'bbox_basic', 'gt.json'), '--results', join(FIXTURES, 'bbox_basic', 'results.json'), '--json', '-']);
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as Stats;
    assert.equal((got.bbox as number[]).length, 12);
    assert.match(r.stderr, /Average Recall/);
  });
});

describe('rcnn eval --help and errors', () => {
  it('--help lists every option', async () => {
    const r = await rcnn(['eval', '--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^Usage: rcnn eval/);
    for (const option of Object.keys(evalCommand.options)) assert.match(r.stdout, new RegExp(`--${option}\\b`), `--${option} is in the help`);
    assert.match((await rcnn(['--help'])).stdout, /\n {2}eval /);
  });

  it('usage errors: no dataset, both or neither of --results / --images, an unknown iou type', async () => {
    const gt = join(FIXTURES, 'bbox_basic', 'gt.json');
    const res = join(FIXTURES, 'bbox_basic', 'results.json');
    for (const args of [['--results', res], ['--dataset', gt], ['--dataset', gt, '--results', res, '--images', dir], ['--dataset', gt, '--results', res, '--iou-type', 'mask']]) {
      const r = await rcnn(['eval', ...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(errorLines(r)[0], /^rcnn eval: error: /);
    }
    const segm = await rcnn(['eval', '--dataset', gt, '--results', res, '--iou-type', 'segm']);
    assert.equal(segm.status, 2);
    assert.match(segm.stderr, /results have no segmentation/);
  });

  it('results for images the dataset does not have fail naming the entry', async () => {
    const bad = join(dir, 'bad-results.json');
    writeFileSync(bad, JSON.stringify([{ image_id: 123456789, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }]));
    const r = await rcnn(['eval', '--dataset', join(FIXTURES, 'bbox_basic', 'gt.json'), '--results', bad]);
    assert.equal(r.status, 1);
    assert.match(errorLines(r)[0], /results\[0\]: image_id 123456789 is not an image of the ground truth/);
  });
});

describe('rcnn eval --images (the model on the dataset)', () => {
  it('runs the model on the dataset images; its saved results evaluate to the same numbers; rcnn predict --out documents are matched by file name', async () => {
    const config = writeToyConfig(dir);
    const weights = writeToyWeights(dir);
    const images = join(dir, 'images');
    mkdirSync(images);
    await writePhoto(images, 'a.png');
    await writePhoto(images, 'b.png', 80, 60);
    const dataset = {
      images: [
        { id: 11, file_name: 'a.png', width: 64, height: 48 },
        { id: 12, file_name: 'b.png', width: 80, height: 60 },
      ],
      categories: [1, 2, 3].map((id) => ({ id, name: `class_${id}` })),
      annotations: [
        { id: 1, image_id: 11, category_id: 1, bbox: [16, 16, 16, 32], area: 512, iscrowd: 0, segmentation: [[16, 16, 32, 16, 32, 48, 16, 48]] },
        { id: 2, image_id: 12, category_id: 2, bbox: [20, 20, 20, 40], area: 800, iscrowd: 0, segmentation: [[20, 20, 40, 20, 40, 60, 20, 60]] },
      ],
    };
    const gt = join(dir, 'toy-gt.json');
    writeFileSync(gt, JSON.stringify(dataset));
    const saved = join(dir, 'toy-results.json');
    const out1 = join(dir, 'toy-stats.json');
    const TOY = ['--plugin', '@rcnn/runtime/toy', '--config', config, '--weights', weights];
    const r = await rcnn(['eval', ...TOY, '--dataset', gt, '--images', images, '--save-results', saved, '--json', out1]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /model classes -> dataset categories by name/);
    const stats = JSON.parse(readFileSync(out1, 'utf8')) as Stats;
    assert.deepEqual(Object.keys(stats).sort(), ['bbox', 'per_category', 'segm']);
    const results = JSON.parse(readFileSync(saved, 'utf8')) as { image_id: number; category_id: number }[];
    assert.ok(results.length > 0, 'the toy model detects something');
    assert.ok(results.every((d) => [11, 12].includes(d.image_id) && [1, 2, 3].includes(d.category_id)));
    const out2 = join(dir, 'toy-stats-2.json');
    const again = await rcnn(['eval', '--dataset', gt, '--results', saved, '--json', out2]);
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(JSON.parse(readFileSync(out2, 'utf8')), stats);

    const predicted = join(dir, 'predicted.json');
    const p = await rcnn(['predict', ...TOY, '--out', predicted, join(images, 'b.png'), join(images, 'a.png')]);
    assert.equal(p.status, 0, p.stderr);
    const fromPredict = await rcnn(['eval', '--dataset', gt, '--results', predicted]);
    assert.equal(fromPredict.status, 0, fromPredict.stderr);
    assert.match(fromPredict.stdout, new RegExp(`\\(2 images, ${results.length} detections\\)`));

    const missing = await rcnn(['eval', ...TOY, '--dataset', gt, '--images', join(dir, 'nowhere')]);
    assert.equal(missing.status, 1);
    assert.match(errorLines(missing)[0], /2 of the dataset's 2 images are missing/);
  });
});
