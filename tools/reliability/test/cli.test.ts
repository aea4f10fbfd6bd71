/** Hostile inputs through the `rcnn` command (src/categories/cli.ts): one error line, one hint, a non-zero status. */
import { after, describe, it } from 'node:test';
import { CaseContext } from '../src/cases.js';
import { cliCases } from '../src/categories/cli.js';

const ctx = new CaseContext();
after(() => ctx.close());

describe('cli', () => {
  for (const c of cliCases()) it(c.name, () => c.run(ctx));
});
