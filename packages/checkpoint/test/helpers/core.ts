/** Core re-exports plus the repo root, for tests. */
import { findRepoRoot } from '@rcnn/testing';
export * from '@rcnn/core';

/** The repository root (the directory holding fixtures/parity and docs). */
export const findRepoRootPath = (): string => findRepoRoot();
