/**
 * Runs rcnn-node on a parity case directory exactly as a user would (runtime detector, the case's
 * config and weights, its images in one batch) and compares every reference tensor.
 */
import { join } from 'node:path';
import { type DependencyContainer, type HostTensor, loadConfig } from '@rcnn/core';
import { createDetector, dumpTensors } from '@rcnn/runtime';
import { type ParityCase, loadParityCase } from '@rcnn/testing';
import { register as registerBackbone } from '@rcnn/backbone';
import { register as registerBoxHead } from '@rcnn/box-head';
import { register as registerFpn } from '@rcnn/fpn';
import { register as registerKeypointHead } from '@rcnn/keypoint-head';
import { register as registerMaskHead } from '@rcnn/mask-head';
import { register as registerRes5Head } from '@rcnn/res5-head';
import { register as registerRpn } from '@rcnn/rpn';
import { type CaseVerdict, compareCase } from './compare-case.js';

/** Every built-in model package's registration. */
export const BUILT_IN_PACKAGES: readonly ((container: DependencyContainer) => void)[] = [
  registerBackbone,
  registerFpn,
  registerRpn,
  registerBoxHead,
  registerMaskHead,
  registerKeypointHead,
  registerRes5Head,
];

/** Outcome of one case. */
export interface CaseOutcome {
  readonly case: ParityCase;
  readonly verdicts: readonly CaseVerdict[];
  readonly pass: boolean;
  /** Wall time of building + running the model, ms. */
  readonly ms: number;
}

/**
 * Produces the fixture-named tensors for a case through the runtime: the taps from a build with
 * intermediates, the final `det.*` outputs from the build users run (no intermediates), whose graph
 * passes differ where a tap keeps a full tensor alive (the mask head's every-class logits).
 */
export async function produceCaseTensors(c: ParityCase, options: { threads?: number } = {}): Promise<Map<string, HostTensor>> {
  const withTaps = await produceWith(c, true, options);
  const production = await produceWith(c, false, options);
  for (const [name, tensor] of production) if (name.startsWith('det.')) withTaps.set(name, tensor);
  return withTaps;
}

async function produceWith(c: ParityCase, intermediates: boolean, options: { threads?: number }): Promise<Map<string, HostTensor>> {
  const detector = await createDetector({
    config: join(c.dir, 'case.json'),
    weights: join(c.dir, 'weights.safetensors'),
    register: BUILT_IN_PACKAGES,
    devices: 'cpu',
    intermediates,
    batchSize: c.imagePaths.length,
    threads: { intraOp: options.threads ?? 1, interOp: 1 },
  });
  try {
    const outcomes = await detector.predict(c.imagePaths, { keepOutputs: true, batchSize: c.imagePaths.length });
    const results = outcomes.map((o, i) => {
      if (!o.ok) throw new Error(`${c.imagePaths[i]}: ${o.error.message}`);
      return o.result;
    });
    return dumpTensors(results, loadConfig({ layers: [join(c.dir, 'case.json')] }));
  } finally {
    await detector.close();
  }
}

/** Runs and judges one case directory. */
export async function runCase(dir: string, options: { threads?: number } = {}): Promise<CaseOutcome> {
  const c = loadParityCase(dir);
  const start = performance.now();
  const produced = await produceCaseTensors(c, options);
  const ms = performance.now() - start;
  const verdicts = compareCase(c, produced);
  return { case: c, verdicts, pass: verdicts.every((v) => v.pass), ms };
}
