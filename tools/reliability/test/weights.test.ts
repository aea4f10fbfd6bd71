/** Hostile weights through the public path (src/categories/weights.ts): a WeightsError naming file and key, or the right detections. */
import { after, describe, it } from 'node:test';
import { CaseContext } from '../src/cases.js';
import { weightsCases } from '../src/categories/weights.js';

const ctx = new CaseContext();
after(() => ctx.close());

describe('weights', () => {
  for (const c of weightsCases()) it(c.name, () => c.run(ctx));
});
