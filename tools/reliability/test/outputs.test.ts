/** Round-2 reliability cases (issue 18): src/categories/outputs.ts. */
import { after, describe, it } from 'node:test';
import { CaseContext } from '../src/cases.js';
import { outputCases } from '../src/categories/outputs.js';

const ctx = new CaseContext();
after(() => ctx.close());

describe('outputs', () => {
  for (const c of outputCases()) it(`[${c.category}] ${c.name}`, () => c.run(ctx));
});
