/** Bad configurations (src/categories/config.ts): a ConfigError naming the key and what it accepts. */
import { after, describe, it } from 'node:test';
import { CaseContext } from '../src/cases.js';
import { configCases } from '../src/categories/config.js';

const ctx = new CaseContext();
after(() => ctx.close());

describe('config', () => {
  for (const c of configCases()) it(c.name, () => c.run(ctx));
});
