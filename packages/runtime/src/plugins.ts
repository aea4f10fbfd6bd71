/**
 * Loading a plugin module by name or path: what `rcnn --plugin`, `RCNN_PLUGINS` and
 * `npm run parity -- --plugin` share.
 */
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, type DependencyContainer } from '@rcnn/core';

/** A package's `register(container)`. */
export type PluginRegister = (container: DependencyContainer) => void;

/** `--plugin` values plus the comma-separated `RCNN_PLUGINS` environment variable. */
export function pluginSpecifiers(flags: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  return [...flags, ...(env.RCNN_PLUGINS ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0)];
}

/**
 * Imports a plugin given as a package name (resolved from the working directory first, then from
 * here) or a path to an ES module, and returns its `register`. A module that cannot be found or
 * exports no `register(container)` fails with a ConfigError whose hint says what a plugin is.
 */
export async function importPluginRegister(spec: string): Promise<PluginRegister> {
  const isPath = spec.startsWith('.') || isAbsolute(spec) || /\.(c|m)?js$/.test(spec);
  let mod: Record<string, unknown>;
  try {
    if (isPath) mod = (await import(pathToFileURL(resolve(spec)).href)) as Record<string, unknown>;
    else {
      try {
        const fromCwd = createRequire(join(process.cwd(), 'rcnn-plugin-resolver.js')).resolve(spec);
        mod = (await import(pathToFileURL(fromCwd).href)) as Record<string, unknown>;
      } catch {
        mod = (await import(spec)) as Record<string, unknown>;
      }
    }
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new ConfigError(`plugin ${spec} cannot be found`, { key: '--plugin', hint: 'give an installed package name or a path to an ES module (built: build/src/index.js)', cause });
    }
    throw cause;
  }
  if (typeof mod.register !== 'function') {
    throw new ConfigError(`plugin ${spec} does not export register(container)`, { key: '--plugin', hint: 'a plugin exports `register(container: DependencyContainer): void`' });
  }
  return mod.register as PluginRegister;
}
