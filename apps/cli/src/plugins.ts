/**
 * Loading the packages that fill the model's slots. The built-in model packages are imported if
 * installed and registered into the container; `--plugin` adds more (a package name or a path to an
 * ES module), each exporting `register(container)` like the built-ins.
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type DependencyContainer, RcnnError } from '@rcnn/core';
import { pluginSpecifiers } from '@rcnn/runtime';
import { PluginError, UsageError } from './errors.js';

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

/** A loaded plugin and where its code lives (to tell its faults from rcnn's). */
interface PluginLocation {
  readonly spec: string;
  /** Directory of the module file (a package's own directory for package plugins). */
  readonly dir: string | undefined;
}

/**
 * The part of the file system holding a plugin's code: its module's directory, unless that
 * directory also holds rcnn itself (a plugin file next to a checkout), then the file alone.
 */
function codeLocation(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  const dir = dirname(file);
  const self = fileURLToPath(import.meta.url);
  return self.startsWith(`${dir}/`) ? file : `${dir}/`;
}

/** The plugins each container was filled with, for {@link blamePlugin}. */
const LOADED = new WeakMap<DependencyContainer, PluginLocation[]>();

const MODULE_EXTENSIONS = ['.js', '.mjs', '.cjs'];

/**
 * Imports a plugin given as a package name (resolved from the working directory first) or a file
 * path; returns the module and the file it came from. A path that is a directory or not a
 * JavaScript module is a {@link PluginError} before node tries to import it.
 */
async function importPlugin(spec: string): Promise<{ mod: Module; file: string | undefined }> {
  const isPath = spec.startsWith('.') || isAbsolute(spec) || /\.((c|m)?js|json)$/i.test(spec);
  if (isPath) {
    const file = resolve(spec);
    let isDir: boolean;
    try {
      isDir = statSync(file).isDirectory();
    } catch {
      throw new UsageError(`plugin ${spec} cannot be found`, 'give an installed package name or a path to an ES module');
    }
    if (isDir) throw new PluginError(spec, 'import', 'it is a directory, not a module file', { hint: 'give the module file itself (e.g. my-plugin/index.js) or an installed package name' });
    if (!MODULE_EXTENSIONS.includes(extname(file).toLowerCase())) {
      throw new PluginError(spec, 'import', `it is not a JavaScript module (${extname(file) || 'no extension'}; expected ${MODULE_EXTENSIONS.join(', ')})`, {
        hint: 'a plugin is an ES module exporting register(container)',
      });
    }
    return { mod: (await import(pathToFileURL(file).href)) as Module, file };
  }
  try {
    const fromCwd = createRequire(join(process.cwd(), 'rcnn-plugin-resolver.js')).resolve(spec);
    return { mod: (await import(pathToFileURL(fromCwd).href)) as Module, file: fromCwd };
  } catch (e) {
    if (!isMissing(e, spec) && (e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
    const url = import.meta.resolve(spec);
    return { mod: (await import(spec)) as Module, file: url.startsWith('file:') ? fileURLToPath(url) : undefined };
  }
}

/**
 * `e` as a {@link PluginError} when it is not one of rcnn's typed errors and its stack runs
 * through a loaded plugin's code; otherwise `e` unchanged.
 */
export function blamePlugin(container: DependencyContainer | undefined, phase: 'build()' | 'predict', e: unknown): unknown {
  if (!container || e instanceof RcnnError || !(e instanceof Error)) return e;
  const stack = e.stack ?? '';
  const culprit = (LOADED.get(container) ?? []).find((p) => p.dir !== undefined && (stack.includes(p.dir) || stack.includes(pathToFileURL(p.dir).href)));
  return culprit ? new PluginError(culprit.spec, phase, e.message, { cause: e }) : e;
}

/** Runs `fn` (a model build) and re-throws a plugin's fault as a {@link PluginError} naming it. */
export async function withPluginBlame<T>(container: DependencyContainer | undefined, phase: 'build()', fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw blamePlugin(container, phase, e);
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
  const extra = pluginSpecifiers(plugins);
  const locations: PluginLocation[] = [];
  LOADED.set(container, locations);
  for (const spec of extra) {
    let mod: Module;
    let file: string | undefined;
    try {
      ({ mod, file } = await importPlugin(spec));
    } catch (e) {
      if (e instanceof UsageError || e instanceof PluginError) throw e;
      if (isMissing(e, spec) || (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
        throw new UsageError(`plugin ${spec} cannot be found`, 'give an installed package name or a path to an ES module');
      }
      throw new PluginError(spec, 'import', e instanceof Error ? e.message : String(e), { cause: e });
    }
    if (typeof mod.register !== 'function') throw new UsageError(`plugin ${spec} does not export register(container)`, 'a plugin exports `register(container: DependencyContainer): void`');
    try {
      (mod.register as (c: DependencyContainer) => void)(container);
    } catch (e) {
      if (e instanceof RcnnError) throw e;
      throw new PluginError(spec, 'register()', e instanceof Error ? e.message : String(e), { cause: e });
    }
    locations.push({ spec, dir: codeLocation(file) });
    registered.push(spec);
  }
  return { registered, unavailable };
}
