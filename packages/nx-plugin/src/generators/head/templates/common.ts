/** The files every generated head package has, whatever its slot. */
import type { TemplateVars } from '../vars.js';
import type { SlotTemplate } from './slot-template.js';

/** `package.json`: ESM, exports map with types, only the built code in the tarball, peer dependency on @rcnn/core. */
export function packageJson(v: TemplateVars, t: SlotTemplate): string {
  const peers: Record<string, string> = { [v.core.name]: v.core.range };
  const dev: Record<string, string> = { [v.core.name]: v.core.range, [v.testing.name]: v.testing.range, 'onnxruntime-node': v.ortVersion };
  if (v.host) {
    peers[v.host.name] = v.host.range;
    dev[v.host.name] = v.host.range;
  }
  const pkg = {
    name: v.importPath,
    version: '0.0.0',
    description: `${t.title} plugin for rcnn-node: ${t.summary}`,
    license: 'Apache-2.0',
    type: 'module',
    exports: { '.': { types: './build/src/index.d.ts', default: './build/src/index.js' }, './package.json': './package.json' },
    types: './build/src/index.d.ts',
    files: ['build/src', '!build/src/**/*.map', 'README.md'],
    keywords: ['rcnn-node', 'rcnn-node-plugin', v.slot],
    engines: { node: '>=20.9' },
    scripts: { build: 'tsc -b', test: 'node --test build/test/', lint: 'eslint src test' },
    peerDependencies: peers,
    devDependencies: dev,
    publishConfig: { access: 'public' },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

/** `tsconfig.json`: the workspace base config, references to the packages it builds against. */
export function tsconfigJson(v: TemplateVars): string {
  const refs = [v.core, v.testing, ...(v.host ? [v.host] : [])].map((r) => ({ path: r.path }));
  const config = {
    extends: `${v.rootPath}/tsconfig.base.json`,
    compilerOptions: { rootDir: '.', outDir: 'build', tsBuildInfoFile: 'build/.tsbuildinfo' },
    include: ['src/**/*.ts', 'test/**/*.ts'],
    references: refs,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** `src/config.ts`: the plugin's config section (defaults, bounds) and its cross-key checks. */
export function configTs(v: TemplateVars, t: SlotTemplate): string {
  const C = v.constantName;
  const fields = t.fields.map((f) => `  ${f.key}: ${f.source},`).join('\n');
  return `/**
 * The \`${C}.*\` config section of ${v.importPath}: keys, defaults and bounds (checked by core's
 * loadConfig, which also rejects unknown keys), plus the checks between keys that bounds cannot
 * express.
 */
import { ConfigError, type RcnnConfig, type SectionValues, defineSection, field, sectionValues } from '@rcnn/core';

/** \`${C}.*\`: settings of the ${t.title} \`${v.registryName}\`. \`register(container)\` registers it. */
export const ${C}_SECTION = defineSection('${C}', 'Settings of the ${t.title} ${v.registryName} (${v.importPath}).', '${v.importPath}', {
${fields}
});

/** The values of the section. */
export type ${v.className}Settings = SectionValues<typeof ${C}_SECTION.fields>;

/**
 * The section's values, checked against each other and against the core keys the implementation
 * depends on; fails with a ConfigError naming the key. Loading the config without the section
 * registered fails here too, naming the section.
 */
export function ${v.propertyName}Settings(config: RcnnConfig): ${v.className}Settings {
  const s = sectionValues(config, ${C}_SECTION);
${t.checks(v)}
  return s;
}
`;
}

/** `src/register.ts`. */
export function registerTs(v: TemplateVars, t: SlotTemplate): string {
  const C = v.constantName;
  return `/** Registration of ${v.importPath} (nothing registers on import). */
import { type DependencyContainer, SLOTS, registerConfigSection, registerImplementation } from '@rcnn/core';
import { ${C}_SECTION } from './config.js';
import { ${C}_IMPLEMENTATION } from './${v.fileName}.js';

/**
 * Registers the ${t.title} \`${v.registryName}\` in slot ${v.slot} (selected by ${t.configKey}) and the
 * \`${C}\` config section. Idempotent for the same container.${t.host ? ` The head's outputs are decoded by \`${t.host.postprocessor}\` of ${t.host.packageName}: register that package too.` : ''}
 */
export function register(container: DependencyContainer): void {
  registerImplementation(container, SLOTS.${t.slotConst}, ${C}_IMPLEMENTATION);
  registerConfigSection(container, ${C}_SECTION);
}
`;
}

/** `src/index.ts`. */
export function indexTs(v: TemplateVars, t: SlotTemplate): string {
  const C = v.constantName;
  const extra = t.host ? `${C}_POSTPROCESSOR, ` : '';
  return `/** ${v.importPath}: ${t.title} plugin for rcnn-node (${t.summary}). */
export { register } from './register.js';
export { ${C}_SECTION, type ${v.className}Settings, ${v.propertyName}Settings } from './config.js';
export { ${C}_IMPLEMENTATION, ${C}_NAME, ${extra}${C}_WEIGHT_PREFIXES, ${v.propertyName}, ${v.propertyName}Layers, ${v.propertyName}WeightKeys } from './${v.fileName}.js';
`;
}

/** `test/conformance.test.ts`: the conformance kit of @rcnn/testing on the implementation. */
export function conformanceTest(v: TemplateVars, t: SlotTemplate): string {
  const C = v.constantName;
  const testing = ['assertConformance', ...t.keysImports, 'runConformance', ...(t.training ? ['runTrainingConformance'] : [])].sort((a, b) => a.localeCompare(b));
  const trainingTest = t.training
    ? `

  it('trains: its loss, host targets and gradients (finite differences)', async () => {
    const { container, config } = setup();
    assertConformance(await runTrainingConformance({ slot: '${v.slot}', name: ${C}_NAME, container, config }));
  });`
    : '';
  const hostImport = t.host ? `import { register as register${t.host.dir === 'mask-head' ? 'MaskHead' : 'KeypointHead'} } from '${t.host.packageName}';\n` : '';
  const hostCall = t.host
    ? `  // The head's outputs go to ${t.host.postprocessor}, which ${t.host.packageName} registers.\n  register${t.host.dir === 'mask-head' ? 'MaskHead' : 'KeypointHead'}(container);\n`
    : '';
  return `/**
 * The conformance kit of @rcnn/testing on ${v.registryName}: registration, the ${v.slot} contract
 * for batches of 1 and 2 images of two sizes${t.host ? ' (and no detections)' : t.slotConst === 'roiBoxHead' ? ' (and no RoIs)' : ''}, replica scopes, the weights it
 * reads and determinism. \`formatConformanceReport(report)\` prints the full report.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ConfigOverrides, type DependencyContainer, type RcnnConfig, configSections, createContainer, loadConfig } from '@rcnn/core';
${hostImport}import { ${testing.join(', ')} } from '@rcnn/testing';
import { ${C}_NAME, ${C}_WEIGHT_PREFIXES, ${v.propertyName}WeightKeys, register } from '../src/index.js';

/** Config of the tests: selects the ${t.title}, with small sizes so the checks run fast. */
const LAYER: ConfigOverrides = ${t.testLayer(v)};

function setup(): { container: DependencyContainer; config: RcnnConfig } {
  const container = createContainer();
  register(container);
${hostCall}  return { container, config: loadConfig({ sections: configSections(container), layers: [LAYER] }) };
}

describe('${v.registryName} conformance', () => {
  it('keeps the ${v.slot} contract', async () => {
    const { container, config } = setup();
    const report = await runConformance({
      slot: '${v.slot}',
      name: ${C}_NAME,
      container,
      config,
      register,
      declaredKeys: ${v.propertyName}WeightKeys(config, ${t.keysArgs}),
    });
    assertConformance(report);
    assert.deepEqual(report.weights.prefixes, [...${C}_WEIGHT_PREFIXES]);
  });${trainingTest}
});
`;
}

/** `test/config.test.ts`: defaults, a rejected value and a rejected combination. */
export function configTest(v: TemplateVars, t: SlotTemplate): string {
  const C = v.constantName;
  return `/** The \`${C}\` config section: documented defaults, values loadConfig rejects, combinations the settings check rejects. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, type ConfigOverrides, type RcnnConfig, configSections, createContainer, loadConfig } from '@rcnn/core';
import { ${C}_SECTION, ${v.propertyName}Settings, register } from '../src/index.js';

function load(...layers: ConfigOverrides[]): RcnnConfig {
  const container = createContainer();
  register(container);
  return loadConfig({ sections: configSections(container), layers });
}

const namesKey = (key: string) => (e: unknown): boolean => e instanceof ConfigError && e.key === key;

describe('${C} config section', () => {
  it('has the documented defaults, which pass the settings check', () => {
    const settings = ${v.propertyName}Settings(load());
    for (const [key, f] of Object.entries(${C}_SECTION.fields)) assert.deepEqual(settings[key as keyof typeof settings], f.default, key);
  });

  it('rejects ${t.badValue.what}, naming the key', () => {
    assert.throws(() => load(${t.badValue.layer(v)}), namesKey('${t.badValue.key(v)}'));
  });

  it('rejects ${t.badCombination.what}, naming the key', () => {
    assert.throws(() => ${v.propertyName}Settings(load(${t.badCombination.layer(v)})), namesKey('${t.badCombination.key(v)}'));
  });

  it('is unknown to loadConfig unless registered', () => {
    assert.throws(() => loadConfig({ layers: [{ ${C}: {} }] }), namesKey('${C}'));
  });
});
`;
}

/** `README.md`. */
export function readme(v: TemplateVars, t: SlotTemplate): string {
  const C = v.constantName;
  const fieldRows = t.fields.map((f) => `| \`${C}.${f.key}\` | \`${f.shown}\` | ${f.meaning} |`).join('\n');
  const hostNote = t.host
    ? `\nIts outputs are decoded on the host by \`${t.host.postprocessor}\`, which \`${t.host.packageName}\` registers: register that package in the same container (it is a peer dependency).\n`
    : '';
  const hostRegister = t.host ? `import { register as registerHost } from '${t.host.packageName}';\n` : '';
  return `# ${v.importPath}

A ${t.title} plugin for rcnn-node: ${t.summary}. It fills the
\`${v.slot}\` slot under the registry name \`${v.registryName}\` (config key \`${t.configKey}\`).
${hostNote}
## Usage

\`\`\`ts
import { WeightStore, buildModel, configSections, createContainer, loadConfig } from '@rcnn/core';
import { register } from '${v.importPath}';
${hostRegister}
const container = createContainer();
register(container); // plus the packages of the other stages (@rcnn/backbone, @rcnn/rpn, …)${t.host ? '\nregisterHost(container);' : ''}
const config = loadConfig({ sections: configSections(container), set: ['${t.configKey}=${v.registryName}'] });
const model = buildModel(config, container, WeightStore.random(0));
\`\`\`

Nothing registers on import; \`register(container)\` is idempotent. An unknown name fails with the list
of registered names.

## Config

Section \`${C}\` (registered by \`register\`, so pass \`configSections(container)\` to \`loadConfig\`):

| key | default | meaning |
| --- | --- | --- |
${fieldRows}

Core keys read: ${t.coreKeys.map((k) => `\`${k}\``).join(', ')}. Contradictory values fail with a \`ConfigError\`
naming the key (\`${v.propertyName}Settings(config)\`).

## Weights

Read by state-dict key with the exact shape from the build's \`WeightStore\`, under
${t.prefixes.map((p) => `\`${p}\``).join(' and ')} (\`${C}_WEIGHT_PREFIXES\`). \`${v.propertyName}WeightKeys(config, …)\` lists the
keys for a config and \`${v.propertyName}Layers\` the layers (core's \`Conv2dSpec\` / \`LinearSpec\` /
\`ConvTransposeSpec\`: key, shape, random init), which core's \`conv2d\` / \`linear\` / \`convTranspose\` build.

## Tests

\`npx tsc -b && node --test build/test/\` runs the conformance kit of \`@rcnn/testing\` (the slot
contract for two batch sizes and two image sizes, replica scopes, weights, determinism) and the config
checks. Generated by \`nx g @rcnn/nx-plugin:head ${v.name} --slot ${v.slot}\`.
`;
}

/** `.changeset/<name>-initial.md`. */
export function changeset(v: TemplateVars, t: SlotTemplate): string {
  return `---
"${v.importPath}": minor
---

First release of \`${v.importPath}\`: a ${t.title} (${t.summary}) registered as \`${v.registryName}\` in slot
\`${v.slot}\`, with its \`${v.constantName}\` config section, declared weights under ${t.prefixes.map((p) => `\`${p}\``).join(', ')} and
the conformance tests of \`@rcnn/testing\`.
`;
}
