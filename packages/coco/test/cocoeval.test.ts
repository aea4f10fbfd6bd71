import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CocoDatasetJson, type CocoResultJson, type IouType, evaluateCoco, formatSummary } from '../src/index.js';
import { EVAL_FIXTURES, evalCases, readJson } from './helpers.js';

/** pycocotools' numbers of one case (README of fixtures/eval). */
interface Stats {
  readonly bbox?: number[];
  readonly segm?: number[];
  readonly keypoints?: number[];
  readonly per_category: Partial<Record<IouType, Record<string, number | null>>>;
}

const TOLERANCE = 1e-9;

test('the fixtures hold the five documented cases', () => {
  assert.deepEqual(evalCases(), ['bbox_basic', 'bbox_crowded_maxdets', 'keypoints_person', 'mask_rcnn_like', 'segm_polygons']);
});

for (const name of evalCases()) {
  const dir = join(EVAL_FIXTURES, name);
  const expected = readJson<Stats>(join(dir, 'stats.json'));
  const types = (['bbox', 'segm', 'keypoints'] as const).filter((t) => expected[t] !== undefined);
  for (const iouType of types) {
    test(`${name} ${iouType}: every summary number and per-category AP equals pycocotools within ${TOLERANCE}`, () => {
      const gt = readJson<CocoDatasetJson>(join(dir, 'gt.json'));
      const results = readJson<CocoResultJson[]>(join(dir, 'results.json'));
      const r = evaluateCoco(gt, results, iouType);
      const want = expected[iouType]!;
      assert.equal(r.stats.length, want.length);
      let worst = 0;
      for (const [i, v] of want.entries()) {
        const err = Math.abs(r.stats[i]! - v);
        worst = Math.max(worst, err);
        assert.ok(err <= TOLERANCE, `stats[${i}]: ${r.stats[i]} vs pycocotools ${v}\n${formatSummary(r)}`);
      }
      const perCat = expected.per_category[iouType]!;
      assert.deepEqual([...r.perCategory.keys()].map(String).sort(), Object.keys(perCat).sort());
      for (const [cat, v] of Object.entries(perCat)) {
        const got = r.perCategory.get(Number(cat));
        if (v === null) assert.equal(got, null, `category ${cat}`);
        else {
          assert.equal(typeof got, 'number', `category ${cat}`);
          const err = Math.abs((got as number) - v);
          worst = Math.max(worst, err);
          assert.ok(err <= TOLERANCE, `category ${cat}: ${got} vs pycocotools ${v}`);
        }
      }
      console.log(`# ${name} ${iouType}: worst |error| ${worst.toExponential(2)}`);
    });
  }
}
