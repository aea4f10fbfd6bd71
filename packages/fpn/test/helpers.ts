/** Shared setup of this package's tests: a container with @rcnn/backbone and @rcnn/fpn, parity cases. */
import { join } from 'node:path';
import { register as registerBackbone } from '@rcnn/backbone';
import {
  type DependencyContainer,
  type FeatureMaps,
  type HostTensor,
  type RcnnConfig,
  SLOTS,
  type WeightStore,
  createContainer,
  decodeEntry,
  loadConfig,
  readSafetensorsFile,
  resolveImplementation,
} from '@rcnn/core';
import { type ParityCase, type TestContext, createTestContext, loadParityCase, publicCaseDir } from '@rcnn/testing';
import { register } from '../src/index.js';

/** The FPN parity cases (the fourth public case is C4, tested by @rcnn/backbone). */
export const FPN_CASES = ['maskrcnn_tiny', 'keypointrcnn_tiny', 'fasterrcnn_tiny_x_batch2'] as const;

/** A container with the ResNet bodies and this package registered. */
export function fpnContainer(): DependencyContainer {
  const container = createContainer();
  registerBackbone(container);
  register(container);
  return container;
}

/** A parity case and its config (plus optional overrides). */
export function caseSetup(name: string, ...layers: Record<string, Record<string, unknown>>[]): { parity: ParityCase; config: RcnnConfig } {
  // These tests build the backbone and FPN only: a box head type no package here maps is left out.
  const parity = loadParityCase(publicCaseDir(name), { unmappedHeads: 'omit' });
  return { parity, config: loadConfig({ layers: [parity.configLayer, ...layers] }) };
}

/** Every tensor of a public case's weights.safetensors, decoded. */
export function caseTensors(name: string): Map<string, HostTensor> {
  const file = readSafetensorsFile(join(publicCaseDir(name), 'weights.safetensors'));
  return new Map([...file.entries].map(([key, entry]) => [key, decodeEntry(entry)]));
}

/** Builds the configured conv body alone in a test context. */
export function buildBody(config: RcnnConfig, weights: WeightStore, container = fpnContainer()): { ctx: TestContext; features: FeatureMaps } {
  const ctx = createTestContext(config, { weights, container });
  const body = resolveImplementation(container, SLOTS.convBody, config.MODEL.CONV_BODY);
  return { ctx, features: body.value.build(ctx, ctx.batch.images) };
}
