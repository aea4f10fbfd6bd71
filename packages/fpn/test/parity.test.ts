import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GeneralizedRCNNTransform } from '@rcnn/backbone';
import { type HostTensor, buildFeaturesNet, featureOutputName } from '@rcnn/core';
import { compareDense, createTestSession, runModel } from '@rcnn/testing';
import { FPN_CASES, caseSetup, fpnContainer } from './helpers.js';

const LEVELS = ['0', '1', '2', '3', 'pool'];
const transform = new GeneralizedRCNNTransform();

describe('R-FPN features-only net parity (backbone.{0,1,2,3,pool})', () => {
  for (const name of FPN_CASES) {
    describe(name, () => {
      const { parity, config } = caseSetup(name);
      const net = buildFeaturesNet(config, fpnContainer(), parity.weights());

      it('levels 2..6 named 0..3, pool with FPN.DIM channels and scales 2^-level', () => {
        assert.deepEqual(
          net.levels.map((l) => [l.name, l.channels, l.spatialScale]),
          LEVELS.map((n, i) => [n, config.FPN.DIM, 2 ** -(i + 2)]),
        );
      });

      const check = async (images: HostTensor, source: string): Promise<void> => {
        const session = await createTestSession(net.toBytes());
        const out = await runModel(session, { images });
        await session.release();
        for (const level of LEVELS) {
          const verdict = compareDense(`backbone.${level}`, out.get(featureOutputName(level))!, parity.reference(`backbone.${level}`));
          console.log(`  ${name} (${source}) backbone.${level} ${verdict.detail}`);
          assert.ok(verdict.pass, `backbone.${level}: ${verdict.detail}`);
        }
      };

      it('from our transform of the PNGs', async () => {
        await check(transform.prepare(await parity.images(), config).images, 'our transform');
      });

      it('from the reference transform.images', async () => {
        await check(parity.reference('transform.images'), 'reference input');
      });
    });
  }
});
