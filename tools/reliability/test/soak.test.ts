/**
 * Memory (src/soak.ts), CI size. Run with `node --expose-gc` (the package's test script does).
 * - soak: consecutive predictions after a warm-up that lasts until RSS settles; RSS must grow < 5%
 *   and the main thread's JS heap < 5 MB (the long script runs 1,000 Mask R-CNN predictions);
 * - churn: detectors created, used once and closed; RSS must come back to its warmed-up baseline
 *   within one live detector's footprint, measured in the same run. A leak of 1/cycles of a
 *   detector per cycle would exceed that; the observed growth is about 1-2 MB.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runChurn, runSoak } from '../src/soak.js';

const round = (v: number): string => v.toFixed(1);

describe('soak', () => {
  it('400 toy predictions after warm-up: RSS grows < 5%, the JS heap < 5 MB', async () => {
    const r = await runSoak({ model: 'toy', predictions: 400, warmup: 200 });
    assert.ok(r.growthPct < 5, `RSS ${round(r.baselineMb)} -> ${round(r.finalMb)} MB (${round(r.growthPct)}%); samples ${r.samplesMb.map(round).join(' ')}`);
    assert.ok(r.heapGrowthMb < 5, `JS heap grew ${round(r.heapGrowthMb)} MB`);
  });

  it('15 detectors created and closed: RSS back within one detector of the baseline, no handle left', async () => {
    const r = await runChurn({ model: 'toy', cycles: 15, replicas: 1 });
    assert.ok(r.detectorMb > 1, `a live detector is measurable (${round(r.detectorMb)} MB)`);
    assert.ok(r.growthMb < r.toleranceMb, `RSS ${round(r.baselineMb)} -> ${round(r.finalMb)} MB (+${round(r.growthMb)}), tolerance ${round(r.toleranceMb)} MB; samples ${r.samplesMb.map(round).join(' ')}`);
    assert.ok(r.handlesAfter <= r.handlesBefore, `active handles ${r.handlesBefore} -> ${r.handlesAfter}`);
  });
});
