/** Shared setup of this package's tests: configs and containers for the parity cases. */
import { join } from 'node:path';
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

/** A container with this package registered. */
export function backboneContainer(): DependencyContainer {
  const container = createContainer();
  register(container);
  return container;
}

/** A parity case and its config (plus optional overrides). */
export function caseSetup(name: string, ...layers: Record<string, Record<string, unknown>>[]): { parity: ParityCase; config: RcnnConfig } {
  // These tests build the backbone only: a box head type no package here maps is left out.
  const parity = loadParityCase(publicCaseDir(name), { unmappedHeads: 'omit' });
  return { parity, config: loadConfig({ layers: [parity.configLayer, ...layers] }) };
}

/** Every tensor of a public case's weights.safetensors, decoded (to build altered weight sets). */
export function caseTensors(name: string): Map<string, HostTensor> {
  const file = readSafetensorsFile(join(publicCaseDir(name), 'weights.safetensors'));
  return new Map([...file.entries].map(([key, entry]) => [key, decodeEntry(entry)]));
}

/** Builds the configured conv body alone in a test context; returns its features and the weight store. */
export function buildBody(config: RcnnConfig, weights: WeightStore): { ctx: TestContext; features: FeatureMaps } {
  const container = backboneContainer();
  const ctx = createTestContext(config, { weights, container });
  const body = resolveImplementation(container, SLOTS.convBody, config.MODEL.CONV_BODY);
  return { ctx, features: body.value.build(ctx, ctx.batch.images) };
}
