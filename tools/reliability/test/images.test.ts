/** Hostile and unusual images (src/categories/images.ts): a typed error naming the input, alone, or a correct result. */
import { after, describe, it } from 'node:test';
import { CaseContext } from '../src/cases.js';
import { imageCases } from '../src/categories/images.js';

const ctx = new CaseContext();
after(() => ctx.close());

describe('images', () => {
  for (const c of imageCases()) it(c.name, () => c.run(ctx));
});
