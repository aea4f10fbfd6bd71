/** Round-2 reliability cases (issue 18): src/categories/streams.ts. */
import { after, describe, it } from 'node:test';
import { CaseContext } from '../src/cases.js';
import { streamCases } from '../src/categories/streams.js';

const ctx = new CaseContext();
after(() => ctx.close());

describe('streams', () => {
  for (const c of streamCases()) it(`[${c.category}] ${c.name}`, () => c.run(ctx));
});
