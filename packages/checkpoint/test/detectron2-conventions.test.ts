/**
 * A Detectron2 checkpoint brings Detectron2's conventions and its architecture (conv body
 * included), directly and through `rcnn convert`'s safetensors metadata, and they agree with
 * Detectron2's own config.yaml for the same model.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WeightStore, loadConfig } from '@rcnn/core';
import { findRepoRoot } from '@rcnn/testing';
import { convertToSafetensors, openCheckpoint, readCheckpoint } from '../src/index.js';

const CASES = ['d2_maskrcnn_R50FPN_tiny_pub', 'd2_keypointrcnn_R50FPN_tiny_pub'];

describe('Detectron2 checkpoints bring their conventions', () => {
  for (const name of CASES) {
    const dir = join(findRepoRoot(), 'fixtures', 'd2', name);
    for (const file of ['model_final.pth', 'model_final.pkl']) {
      it(`${name}/${file}: conventions + inferred architecture agree with config.yaml`, () => {
        const r = readCheckpoint(join(dir, file));
        assert.equal(r.format, 'detectron2');
        const fromConfig = loadConfig({ layers: [join(dir, 'config.yaml')] }) as unknown as Record<string, Record<string, unknown>>;
        let checked = 0;
        for (const layer of [r.suggestedConfig, r.inferredConfig]) {
          for (const [section, keys] of Object.entries(layer)) {
            for (const [key, value] of Object.entries(keys as Record<string, unknown>)) {
              assert.deepEqual(value, fromConfig[section]![key], `${section}.${key}`);
              checked++;
            }
          }
        }
        assert.ok(checked >= 30, `${checked} keys checked`);
        assert.equal((r.inferredConfig.MODEL as Record<string, unknown>).CONV_BODY, 'FPN.add_fpn_ResNet_custom_conv5_body');
        const { store } = openCheckpoint(join(dir, file));
        assert.equal(store.conventions?.convention, 'detectron2');
        assert.deepEqual(store.conventions?.architecture, r.inferredConfig);
      });
    }
    it(`${name}: rcnn convert keeps them in the safetensors metadata`, () => {
      const { bytes, result } = convertToSafetensors(join(dir, 'model_final.pth'));
      const store = WeightStore.fromSafetensorsBuffer(bytes, 'converted.safetensors');
      assert.deepEqual(store.conventions, { convention: 'detectron2', conventions: result.suggestedConfig, architecture: result.inferredConfig });
    });
  }
});
