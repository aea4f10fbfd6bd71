import { type HostTensor, decodeEntry, readSafetensorsFile } from '@rcnn/core';
import { findRepoRoot } from '@rcnn/testing';

export { decodeEntry };

/** The repository root (throws if the fixtures are not found). */
export const findRepoRootOrThrow = (): string => findRepoRoot();

/** Every tensor of a safetensors file, decoded. */
export function readSafetensorsFileEntries(path: string): Map<string, HostTensor> {
  return new Map([...readSafetensorsFile(path).entries].map(([k, e]) => [k, decodeEntry(e)]));
}
