/**
 * Loads the built-in head packages for the conformance tests. They are imported by a computed
 * specifier at run time: the head packages depend on @rcnn/testing for their own tests, so a
 * static import here would make the build graph circular (testing's `test` target instead waits
 * for their builds; see the `nx` field of package.json).
 */
import { type DependencyContainer, configSections, createContainer, loadConfig, type RcnnConfig, type ConfigOverrides } from '@rcnn/core';
import { loadParityCase, publicCaseDir } from '../src/index.js';

/** A head package's public entry: its `register`. */
export interface HeadPackage {
  register(container: DependencyContainer): void;
}

/** The built-in head packages by npm name. */
export const BUILT_IN_PACKAGES = ['@rcnn/backbone', '@rcnn/fpn', '@rcnn/rpn', '@rcnn/box-head', '@rcnn/mask-head', '@rcnn/keypoint-head'] as const;

/** Imports a head package by name (see the module doc for why the specifier is computed). */
export async function loadPackage(name: (typeof BUILT_IN_PACKAGES)[number]): Promise<HeadPackage> {
  const specifier: string = name;
  const mod = (await import(specifier)) as Partial<HeadPackage>;
  if (typeof mod.register !== 'function') throw new Error(`${name} exports no register(container)`);
  return mod as HeadPackage;
}

/** A container with every built-in package registered. */
export async function builtInContainer(): Promise<DependencyContainer> {
  const container = createContainer();
  for (const name of BUILT_IN_PACKAGES) (await loadPackage(name)).register(container);
  return container;
}

/**
 * The config of a public parity case (tiny models), with optional overrides. The C4 case's box
 * head (the res5 plugin) is not among these packages and no test here builds it: left out.
 */
export function caseConfig(container: DependencyContainer, caseName: string, ...layers: ConfigOverrides[]): RcnnConfig {
  return loadConfig({ sections: configSections(container), layers: [loadParityCase(publicCaseDir(caseName), { container, unmappedHeads: 'omit' }).configLayer, ...layers] });
}
