/**
 * `nx g @rcnn/nx-plugin:head <name> --slot <slot>`: scaffolds a head plugin package that builds,
 * lints and passes its tests (the conformance kit of @rcnn/testing) as generated. The package
 * has a real, small implementation of the slot's contract, its own config section, declared
 * weights, a README and a changeset.
 */
import { posix } from 'node:path';
import { type GeneratorCallback, type Tree, joinPathFragments, logger, names } from '@nx/devkit';
import { CORE_SECTION_NAMES, HEAD_SLOTS, type HeadGeneratorSchema, type HeadSlot } from './schema.js';
import { changeset, configTest, configTs, conformanceTest, indexTs, packageJson, readme, registerTs, tsconfigJson } from './templates/common.js';
import { CONV_BODY_TEMPLATE } from './templates/conv-body.js';
import { FPN_TEMPLATE } from './templates/fpn.js';
import { ROI_BOX_HEAD_TEMPLATE } from './templates/roi-box-head.js';
import { ROI_KEYPOINT_HEAD_TEMPLATE } from './templates/roi-keypoint-head.js';
import { ROI_MASK_HEAD_TEMPLATE } from './templates/roi-mask-head.js';
import { RPN_HEAD_TEMPLATE } from './templates/rpn-head.js';
import type { SlotTemplate } from './templates/slot-template.js';
import type { PackageRef, TemplateVars } from './vars.js';

/** The template of each slot. */
export const SLOT_TEMPLATES: Readonly<Record<HeadSlot, SlotTemplate>> = {
  'conv-body': CONV_BODY_TEMPLATE,
  fpn: FPN_TEMPLATE,
  'rpn-head': RPN_HEAD_TEMPLATE,
  'roi-box-head': ROI_BOX_HEAD_TEMPLATE,
  'roi-mask-head': ROI_MASK_HEAD_TEMPLATE,
  'roi-keypoint-head': ROI_KEYPOINT_HEAD_TEMPLATE,
};

const KEBAB = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const NPM_NAME = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;
// File names the package uses itself, and words that cannot name the implementation's value.
const TAKEN = new Set(['config', 'register', 'index', 'weights']);
const RESERVED = new Set(
  'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package private protected public await'.split(
    ' ',
  ),
);

/** A workspace package found by its npm name in the first level of `dirs`. */
function findPackage(tree: Tree, npmName: string, dirs: readonly string[]): { dir: string; version: string; json: Record<string, unknown> } | undefined {
  for (const dir of dirs) {
    if (!tree.exists(dir) || tree.isFile(dir)) continue;
    for (const child of tree.children(dir)) {
      const path = joinPathFragments(dir, child, 'package.json');
      if (!tree.exists(path)) continue;
      const json = JSON.parse(tree.read(path, 'utf-8') ?? '{}') as Record<string, unknown>;
      if (json.name === npmName) return { dir: joinPathFragments(dir, child), version: String(json.version ?? '0.0.0'), json };
    }
  }
  return undefined;
}

/** Checks the options and derives every name, path and version the templates use. */
export function normalizeOptions(tree: Tree, schema: HeadGeneratorSchema): TemplateVars & { readonly projectRoot: string; readonly template: SlotTemplate } {
  const name = schema.name;
  if (typeof name !== 'string' || !KEBAB.test(name)) {
    throw new Error(`head name "${String(name)}" must be kebab-case: lower-case letters and digits in words joined by "-" (e.g. my-box-head)`);
  }
  const n = names(name);
  if (TAKEN.has(n.fileName) || RESERVED.has(n.propertyName)) throw new Error(`head name "${name}" would clash with a file or keyword of the package; choose another name`);
  if ((CORE_SECTION_NAMES as readonly string[]).includes(n.constantName)) {
    throw new Error(`head name "${name}" would make the config section ${n.constantName}, which @rcnn/core already defines; choose another name`);
  }
  const slot = schema.slot;
  if (!(HEAD_SLOTS as readonly string[]).includes(slot)) throw new Error(`unknown slot "${String(slot)}"; the head generator supports: ${HEAD_SLOTS.join(', ')}`);
  const template = SLOT_TEMPLATES[slot];
  const directory = schema.directory ?? 'packages';
  const projectRoot = joinPathFragments(directory, name);
  if (tree.exists(projectRoot)) throw new Error(`${projectRoot} already exists; choose another name or directory`);
  const importPath = schema.importPath ?? `@rcnn/${name}`;
  if (!NPM_NAME.test(importPath)) throw new Error(`"${importPath}" is not a valid npm package name`);
  const registryName = schema.registryName ?? name;
  if (registryName.trim().length === 0 || /['\\\n]/.test(registryName)) throw new Error(`registry name "${registryName}" must be non-empty, without quotes, backslashes or newlines`);

  const searched = [...new Set([directory, 'packages'])];
  const ref = (npmName: string): PackageRef & { json: Record<string, unknown> } => {
    const found = findPackage(tree, npmName, searched);
    if (!found) throw new Error(`${npmName} is not in this workspace (looked in ${searched.join(', ')}): the head generator runs in an rcnn-node workspace`);
    return { name: npmName, range: `^${found.version}`, path: posix.relative(projectRoot, found.dir), json: found.json };
  };
  const core = ref('@rcnn/core');
  const testing = ref('@rcnn/testing');
  const host = template.host ? ref(template.host.packageName) : undefined;
  const testingDev = (testing.json.devDependencies ?? {}) as Record<string, string>;
  const strip = (r: PackageRef & { json: unknown }): PackageRef => ({ name: r.name, range: r.range, path: r.path });
  return {
    name,
    slot,
    importPath,
    registryName,
    fileName: n.fileName,
    className: n.className,
    propertyName: n.propertyName,
    constantName: n.constantName,
    rootPath: posix.relative(projectRoot, '') || '.',
    core: strip(core),
    testing: strip(testing),
    host: host ? strip(host) : undefined,
    ortVersion: testingDev['onnxruntime-node'] ?? '^1.30.0',
    projectRoot,
    template,
  };
}

/** The files of the package (paths relative to the workspace root) and their contents. */
export function renderHeadPackage(tree: Tree, schema: HeadGeneratorSchema): Map<string, string> {
  const o = normalizeOptions(tree, schema);
  const t = o.template;
  const at = (path: string): string => joinPathFragments(o.projectRoot, path);
  const files = new Map<string, string>([
    [at('package.json'), packageJson(o, t)],
    [at('tsconfig.json'), tsconfigJson(o)],
    [at('README.md'), readme(o, t)],
    [at('src/index.ts'), indexTs(o, t)],
    [at('src/register.ts'), registerTs(o, t)],
    [at('src/config.ts'), configTs(o, t)],
    [at(`src/${o.fileName}.ts`), t.implementation(o)],
    [at('test/conformance.test.ts'), conformanceTest(o, t)],
    [at('test/config.test.ts'), configTest(o, t)],
  ]);
  if (!schema.skipChangeset && tree.exists('.changeset')) files.set(`.changeset/${o.name}-initial.md`, changeset(o, t));
  return files;
}

/**
 * The `head` generator: writes the package into the tree and returns a callback that prints the
 * next steps (build, test, link).
 */
export function headGenerator(tree: Tree, schema: HeadGeneratorSchema): GeneratorCallback {
  const files = renderHeadPackage(tree, schema);
  for (const [path, content] of files) tree.write(path, content);
  const root = joinPathFragments(schema.directory ?? 'packages', schema.name);
  return () => {
    logger.info(
      [
        `Created ${root} (slot ${schema.slot}). Next:`,
        `  cd ${root} && npx tsc -b && node --test build/test/ && npx eslint src test`,
        '  npm install   # links the new package into node_modules for other packages and apps',
      ].join('\n'),
    );
  };
}
