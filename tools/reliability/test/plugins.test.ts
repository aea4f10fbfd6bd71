/** Round-2 reliability cases (issue 18): src/categories/plugins.ts. */
import { after, describe, it } from 'node:test';
import { CaseContext } from '../src/cases.js';
import { pluginCases } from '../src/categories/plugins.js';

const ctx = new CaseContext();
after(() => ctx.close());

describe('plugins', () => {
  for (const c of pluginCases()) it(`[${c.category}] ${c.name}`, () => c.run(ctx));
});
