/** Round-2 reliability cases (issue 18): src/categories/api.ts. */
import { after, describe, it } from 'node:test';
import { CaseContext } from '../src/cases.js';
import { apiCases } from '../src/categories/api.js';

const ctx = new CaseContext();
after(() => ctx.close());

describe('api', () => {
  for (const c of apiCases()) it(`[${c.category}] ${c.name}`, () => c.run(ctx));
});
