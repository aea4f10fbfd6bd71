/**
 * Loading the packages that fill the model's slots. The built-in model packages are imported if
 * installed and registered into the container; `--plugin` adds more (a package name or a path to an
 * ES module), each exporting `register(container)` like the built-ins.
 */
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DependencyContainer } from '@rcnn/core';
import { UsageError } from './errors.js';

/** The packages the CLI registers when they are installed (model stages, and @rcnn/checkpoint's weights readers). */
export const MODEL_PACKAGES = [
  '@rcnn/backbone',
  '@rcnn/fpn',
  '@rcnn/rpn',
  '@rcnn/box-head',
  '@rcnn/mask-head',
  '@rcnn/keypoint-head',
  '@rcnn/res5-head',
  '@rcnn/checkpoint',
] as const;

/** What {@link loadPlugins} registered. */
export interface LoadedPlugins {
  readonly registered: readonly string[];
  /** Built-in packages that are not installed or export no `register` yet. */
  readonly unavailable: readonly string[];
}

type Module = Record<string, unknown>;

function isMissing(e: unknown, specifier: string): boolean {
  const err = e as NodeJS.ErrnoException;
  return (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND') && err.message.includes(specifier);
}

/** Imports a plugin given as a package name (resolved from the working directory first) or a file path. */
async function importPlugin(spec: string): Promise<Module> {
  const isPath = spec.startsWith('.') || isAbsolute(spec) || /\.(c|m)?js$/.test(spec);
  if (isPath) return (await import(pathToFileURL(resolve(spec)).href)) as Module;
  try {
    const fromCwd = createRequire(join(process.cwd(), 'rcnn-plugin-resolver.js')).resolve(spec);
    return (await import(pathToFileURL(fromCwd).href)) as Module;
  } catch {
    return (await import(spec)) as Module;
  }
}

/** Registers the installed model packages (and @rcnn/checkpoint's weights readers) and every `--plugin`. */
export async function loadPlugins(container: DependencyContainer, plugins: readonly string[]): Promise<LoadedPlugins> {
  const registered: string[] = [];
  const unavailable: string[] = [];
  for (const name of MODEL_PACKAGES) {
    let mod: Module;
    try {
      mod = (await import(name as string)) as Module;
    } catch (e) {
      if (isMissing(e, name)) {
        unavailable.push(name);
        continue;
      }
      throw e;
    }
    if (typeof mod.register !== 'function') {
      unavailable.push(name);
      continue;
    }
    (mod.register as (c: DependencyContainer) => void)(container);
    registered.push(name);
  }
  const extra = [...plugins, ...(process.env.RCNN_PLUGINS ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0)];
  for (const spec of extra) {
    let mod: Module;
    try {
      mod = await importPlugin(spec);
    } catch (e) {
      if (isMissing(e, spec) || (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
        throw new UsageError(`plugin ${spec} cannot be found`, 'give an installed package name or a path to an ES module');
      }
      throw e;
    }
    if (typeof mod.register !== 'function') throw new UsageError(`plugin ${spec} does not export register(container)`, 'a plugin exports `register(container: DependencyContainer): void`');
    (mod.register as (c: DependencyContainer) => void)(container);
    registered.push(spec);
  }
  return { registered, unavailable };
}
