/** Round-2 reliability cases (issue 18): src/categories/memory.ts. */
import { after, describe, it } from 'node:test';
import { CaseContext } from '../src/cases.js';
import { memoryCases } from '../src/categories/memory.js';

const ctx = new CaseContext();
after(() => ctx.close());

describe('memory', () => {
  for (const c of memoryCases()) it(`[${c.category}] ${c.name}`, () => c.run(ctx));
});
