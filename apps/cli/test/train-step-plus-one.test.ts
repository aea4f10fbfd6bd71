/**
 * `rcnn train-step` with MODEL.LEGACY_PLUS_ONE (Detectron's +1 box convention) on a public training
 * case: it trains (finite losses and gradients), and the dumped RPN and RoI targets are Detectron's,
 * recomputed here in float64 from the dumped anchors, proposals and GT with `bbox_overlaps` /
 * `bbox_transform_inv` written out (widths x2 - x1 + 1).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { type HostTensor, decodeEntry, readSafetensorsFile } from '@rcnn/core';
import { findRepoRoot } from '@rcnn/testing';
import { rcnn, tempDir } from './helpers.js';

type Box = readonly number[];

const rows = (t: HostTensor): Box[] => Array.from({ length: t.dims[0]! }, (_, i) => Array.from((t.data as Float32Array).subarray(4 * i, 4 * i + 4)));
const ints = (t: HostTensor): number[] => Array.from(t.data as BigInt64Array, Number);

/** Detectron's IoU (+1 widths); `one` 0 gives torchvision's. */
function iou(a: Box, b: Box, one: number): number {
  const iw = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!) + one;
  const ih = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!) + one;
  if (iw <= 0 || ih <= 0) return 0;
  const area = (x: Box): number => (x[2]! - x[0]! + one) * (x[3]! - x[1]! + one);
  return (iw * ih) / (area(a) + area(b) - iw * ih);
}

/** Detectron's regression target of `gt` vs `ex` (+1 widths). */
function encode(gt: Box, ex: Box, w: readonly number[]): number[] {
  const [exW, exH, gW, gH] = [ex[2]! - ex[0]! + 1, ex[3]! - ex[1]! + 1, gt[2]! - gt[0]! + 1, gt[3]! - gt[1]! + 1];
  const dx = gt[0]! + 0.5 * gW - (ex[0]! + 0.5 * exW);
  const dy = gt[1]! + 0.5 * gH - (ex[1]! + 0.5 * exH);
  return [(w[0]! * dx) / exW, (w[1]! * dy) / exH, w[2]! * Math.log(gW / exW), w[3]! * Math.log(gH / exH)];
}

function assertClose(got: readonly number[], want: readonly number[], what: string): void {
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-4 * Math.max(1, Math.abs(want[i]!)), `${what}[${i}]: ${v} vs ${want[i]}`));
}

test('rcnn train-step trains with MODEL.LEGACY_PLUS_ONE: Detectron targets in the RPN and the RoI heads', async () => {
  const dir = join(findRepoRoot(), 'fixtures', 'train', 'maskrcnn_tiny_train');
  const out = join(tempDir(), 'dump.safetensors');
  // torchvision's recorded samples do not fit the +1 matching: the samples are drawn.
  const r = await rcnn(['train-step', '--targets', dir, '--no-inject', '--set', 'MODEL.LEGACY_PLUS_ONE=true', '--dump', out, '--dump-intermediates']);
  assert.equal(r.status, 0, r.stderr);
  const file = readSafetensorsFile(out);
  const dump = new Map([...file.entries].map(([k, e]) => [k, decodeEntry(e, out)]));
  for (const [k, t] of dump) if (k.startsWith('loss.') || k.startsWith('grad.')) assert.ok((t.data as Float32Array).every(Number.isFinite), `${k} is finite`);
  assert.ok([...dump.keys()].some((k) => k.startsWith('grad.')));

  const gt = rows(dump.get('train.target.boxes_resized.0')!);
  /** Matcher class of a best IoU: 0 matched, -1 background, -2 between the thresholds; undefined within 1e-5 of one. */
  const kind = (best: number, high: number, low: number): number | undefined =>
    Math.abs(best - high) <= 1e-5 || Math.abs(best - low) <= 1e-5 ? undefined : best >= high ? 0 : best < low ? -1 : -2;
  const bestIou = (box: Box, one: number): number => Math.max(...gt.map((g) => iou(g, box, one)));
  // Rows whose class depends on the convention: the case must have some, or it tells nothing apart.
  let conventionDecides = 0;

  // RPN (RPN_POSITIVE_OVERLAP 0.7, RPN_NEGATIVE_OVERLAP 0.3): each anchor's match is the +1 IoU's
  // class, or a low-quality match (a GT's best anchor, matched whatever its IoU).
  const anchors = rows(dump.get('train.rpn.anchors.0')!);
  const matched = ints(dump.get('train.rpn.matched_gt.0')!);
  anchors.forEach((a, j) => {
    const want = kind(bestIou(a, 1), 0.7, 0.3);
    if (want === undefined) return;
    const got = Math.min(matched[j]!, 0);
    assert.ok(got === want || (got === 0 && want < 0), `anchor ${j}: matched ${matched[j]}, +1 IoU ${bestIou(a, 1)}`);
    if (got === want && kind(bestIou(a, 0), 0.7, 0.3) !== want) conventionDecides++;
  });
  const rpnPositives = ints(dump.get('train.rpn.sampled_pos.0')!);
  const rpnTargets = rows(dump.get('train.rpn.regression_targets.0')!);
  assert.ok(rpnPositives.length > 0);
  rpnPositives.forEach((p, j) => assertClose(rpnTargets[j]!, encode(gt[matched[p]!]!, anchors[p]!, [1, 1, 1, 1]), `RPN target of anchor ${p}`));

  // RoI: the foreground rows are those with +1 IoU >= FG_THRESH (0.5); their box targets are
  // Detectron's with MODEL.BBOX_REG_WEIGHTS (10, 10, 5, 5).
  const proposals = rows(dump.get('train.roi.proposals_with_gt.0')!);
  const roiMatched = ints(dump.get('train.roi.matched_gt.0')!);
  proposals.forEach((p, j) => {
    const want = kind(bestIou(p, 1), 0.5, 0.5);
    if (want === undefined) return;
    assert.equal(Math.min(roiMatched[j]!, 0), want, `RoI ${j}: matched ${roiMatched[j]}, +1 IoU ${bestIou(p, 1)}`);
    if (kind(bestIou(p, 0), 0.5, 0.5) !== want) conventionDecides++;
  });
  assert.ok(conventionDecides > 0, 'some anchors or RoIs change class with the convention');
  const sampled = [...ints(dump.get('train.roi.sampled_pos.0')!), ...ints(dump.get('train.roi.sampled_neg.0')!)].sort((a, b) => a - b);
  const roiTargets = rows(dump.get('train.roi.regression_targets.0')!);
  let checked = 0;
  sampled.forEach((r, j) => {
    if (roiMatched[r]! < 0) return;
    assertClose(roiTargets[j]!, encode(gt[roiMatched[r]!]!, proposals[r]!, [10, 10, 5, 5]), `RoI target of row ${r}`);
    checked++;
  });
  assert.ok(checked > 0, 'some sampled RoIs are foreground');
});
