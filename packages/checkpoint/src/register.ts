import type { DependencyContainer } from '@rcnn/core';

/**
 * Registers nothing: @rcnn/checkpoint fills no model slot (it converts weights before a build).
 * It exists so every package can be registered the same way.
 */
export function register(_container: DependencyContainer): void {
  // Intentionally empty: readers are plain functions, used by the CLI and the runtime directly.
}
