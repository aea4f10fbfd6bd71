/** Input bounds from config (src/categories/limits.ts): enforced, bounded, documented. */
import { after, describe, it } from 'node:test';
import { CaseContext } from '../src/cases.js';
import { limitsCases } from '../src/categories/limits.js';

const ctx = new CaseContext();
after(() => ctx.close());

describe('limits', () => {
  for (const c of limitsCases()) it(c.name, () => c.run(ctx));
});
