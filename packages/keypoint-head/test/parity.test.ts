/**
 * Parity with torchvision 0.14.1 on fixtures/parity/keypointrcnn_tiny: the keypoint head fed with
 * the reference FPN features and final detections, and the host decoder fed with our heatmaps and
 * with the reference heatmaps (to isolate the decoder).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { EXTRA_KEYS, type HostTensor, type RcnnConfig, getExtra } from '@rcnn/core';
import { type ParityCase, compareDense, compareKeypoints } from '@rcnn/testing';
import { heatmapsToKeypoints } from '../src/index.js';
import { f32, imageDetections, keypointCase, referenceFeatures, runHead } from './helpers.js';

let pc: ParityCase;
let config: RcnnConfig;
let ours: HostTensor;

/** Decodes `heatmaps` with the reference boxes through the host post-processor; returns the image's extras as tensors. */
function decode(heatmaps: HostTensor): { resized: HostTensor; original: HostTensor; scores: HostTensor } {
  const boxes = pc.reference('det.boxes_resized.0').data as Float32Array;
  const sizes = pc.reference('transform.image_sizes').data as BigInt64Array;
  const image = pc.json.images as { height: number; width: number }[];
  const d = boxes.length / 4;
  const k = config.KRCNN.NUM_KEYPOINTS;
  const det = imageDetections(0, boxes, [Number(sizes[0]), Number(sizes[1])], [image[0]!.height, image[0]!.width]);
  heatmapsToKeypoints.apply(new Map([['det.keypoint_heatmaps', heatmaps]]), [det], [[0, d]], config);
  const kp = getExtra(det, EXTRA_KEYS.keypoints);
  assert.ok(kp, 'the decoder stored a KeypointSet');
  assert.deepEqual([kp.count, kp.numKeypoints], [d, k]);
  return {
    resized: f32([d, k, 3], kp.keypointsResized),
    original: f32([d, k, 3], kp.keypoints),
    scores: f32([d, k], kp.scores),
  };
}

function checkKeypoints(what: string, decoded: ReturnType<typeof decode>): void {
  const scores = pc.reference('det.keypoints_scores.0');
  for (const [name, actual, ref] of [
    ['det.keypoints_resized.0', decoded.resized, pc.reference('det.keypoints_resized.0')],
    ['det.keypoints.0', decoded.original, pc.reference('det.keypoints.0')],
  ] as const) {
    const v = compareKeypoints(`${what} ${name}`, { keypoints: actual, scores: decoded.scores }, { keypoints: ref, scores });
    console.log(`  ${v.name}: ${v.detail}`);
    assert.ok(v.pass, v.detail);
  }
  // The visibility column is 1 everywhere, as torchvision's.
  for (let i = 2; i < decoded.original.data.length; i += 3) assert.equal(decoded.original.data[i], 1);
}

describe('keypointrcnn_tiny parity', () => {
  before(async () => {
    ({ pc, config } = keypointCase());
    const boxes = pc.reference('det.boxes_resized.0').data as Float32Array;
    const labels = Array.from(pc.reference('det.labels.0').data as BigInt64Array, Number);
    const weights = pc.weights();
    const run = await runHead(config, weights, referenceFeatures(pc), { boxes, labels, batchIndex: labels.map(() => 0) });
    assert.deepEqual(weights.unusedKeys().filter((k) => k.startsWith('roi_heads.keypoint')), [], 'every keypoint weight is used');
    ours = run.heatmaps;
    assert.deepEqual(run.logits.dims, run.heatmaps.dims, 'the tap is the head output');
  });

  it('roi.keypoint_logits match within 1e-4 * max(1, max|ref|)', () => {
    const ref = pc.reference('roi.keypoint_logits');
    assert.deepEqual(ours.dims, [8, 17, 56, 56]);
    const v = compareDense('roi.keypoint_logits', ours, ref);
    console.log(`  ${v.name}: ${v.detail}`);
    assert.ok(v.pass, v.detail);
  });

  it('decoding the REFERENCE heatmaps with the reference boxes gives torchvision\'s keypoints', () => {
    const decoded = decode(pc.reference('roi.keypoint_logits'));
    checkKeypoints('from reference logits:', decoded);
    // Positions are exact (the decoder is bit-exact given its input); report how far the scores are.
    const ref = pc.reference('det.keypoints_resized.0').data as Float32Array;
    let exact = 0;
    for (let i = 0; i < ref.length; i++) if (decoded.resized.data[i] === ref[i]) exact++;
    console.log(`  from reference logits: ${exact} of ${ref.length} keypoint coordinates bit-identical`);
    assert.equal(exact, ref.length);
  });

  it('decoding OUR heatmaps with the reference boxes gives torchvision\'s keypoints', () => {
    checkKeypoints('from our logits:', decode(ours));
  });
});
