/**
 * Loading the packages that fill the model's slots. The built-in model packages are imported if
 * installed and registered into the container; `--plugin` adds more (a package name or a path to an
 * ES module), each exporting `register(container)` like the built-ins.
 */
import { ConfigError, type DependencyContainer } from '@rcnn/core';
import { type PluginRegister, importPluginRegister, pluginSpecifiers } from '@rcnn/runtime';
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
  for (const spec of pluginSpecifiers(plugins)) {
    let register: PluginRegister;
    try {
      register = await importPluginRegister(spec);
    } catch (e) {
      // A plugin that cannot be loaded is a command-line problem (exit status 2, with the hint).
      if (e instanceof ConfigError && e.key === '--plugin') throw new UsageError(e.message, e.hint);
      throw e;
    }
    register(container);
    registered.push(spec);
  }
  return { registered, unavailable };
}
