/**
 * The plugin against torchvision 0.14.1 through the public parity tools only: the fixture
 * `fasterrcnn_tiny_convfc` (made by tools/parity/gen_fixtures.py with this package's extension,
 * fixtures/gen_conv_fc_head.py) run by @rcnn/testing's runCase with the built-in stages plus this
 * package's register, every reference tensor within the parity tolerances.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { register as registerBackbone } from '@rcnn/backbone';
import { register as registerBoxHead } from '@rcnn/box-head';
import { ConfigError, configSections, createContainer, loadConfig } from '@rcnn/core';
import { register as registerFpn } from '@rcnn/fpn';
import { register as registerRpn } from '@rcnn/rpn';
import { loadParityCase, runCase } from '@rcnn/testing';
import { CONV_FC_HEAD_NAME, CONV_FC_HEAD_PREFIX, convFcHeadWeightKeys, register } from '../src/index.js';

const CASE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'fasterrcnn_tiny_convfc');
const REGISTER = [registerBackbone, registerFpn, registerRpn, registerBoxHead, register];

function container() {
  const c = createContainer();
  for (const r of REGISTER) r(c);
  return c;
}

describe('fasterrcnn_tiny_convfc (FastRCNNConvFCHead, BatchNorm2d) through the public parity tools', () => {
  it('matches every reference tensor of torchvision 0.14.1 within the parity tolerances', async () => {
    const outcome = await runCase(CASE_DIR, { register: REGISTER });
    const covered = outcome.verdicts.flatMap((v) => v.covers);
    assert.deepEqual([...covered].sort(), [...outcome.case.referenceNames()].sort(), 'every reference tensor is judged');
    assert.ok(covered.includes('roi.class_logits') && covered.includes('roi.box_features'));
    assert.equal(outcome.verdicts.filter((v) => !v.pass).map((v) => `${v.name}: ${v.detail}`).join('\n'), '');
  });

  it('maps the case type to this head and reads exactly the fixture weights under its prefix', () => {
    const c = container();
    const pc = loadParityCase(CASE_DIR, { container: c });
    const config = loadConfig({ sections: configSections(c), layers: [pc.configLayer] });
    assert.equal(config.FAST_RCNN.ROI_BOX_HEAD, CONV_FC_HEAD_NAME);
    assert.equal(config.FAST_RCNN.MLP_HEAD_DIM, 64);
    assert.deepEqual(config.CONV_FC_HEAD, { NUM_STACKED_CONVS: 4, CONV_HEAD_DIM: 32, NORM: 'BatchNorm2d', NORM_EPS: 1e-5, NUM_GROUPS: 32 });
    const fixtureKeys = pc.weights().keys().filter((k) => k.startsWith(`${CONV_FC_HEAD_PREFIX}.`) && !k.endsWith('.num_batches_tracked'));
    assert.deepEqual(convFcHeadWeightKeys(config, config.FPN.DIM).sort(), fixtureKeys.sort());
  });

  it('without the plugin registered the case fails naming the type and --plugin', () => {
    const c = createContainer();
    registerBoxHead(c);
    assert.throws(
      () => loadParityCase(CASE_DIR, { container: c }).configLayer,
      (e: unknown) => e instanceof ConfigError && /FastRCNNConvFCHead/.test(e.message) && /--plugin/.test(e.hint ?? ''),
    );
  });
});
