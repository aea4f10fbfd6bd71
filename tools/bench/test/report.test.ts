import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CaseReport, checkTargets, formatCase, outsideShare } from '../src/index.js';

const run = (totalMs: number) => ({ totalMs, decodeMs: 10, preprocessMs: 20, sessionMs: totalMs - 40, transferMs: 2, postprocessMs: 8 });

function report(oursMs: number, peerMs: number, name = 'maskrcnn_r50fpn'): CaseReport {
  const steady = { startupMs: 200, createMs: 900, sessionCreateMs: 600, firstMs: oursMs, firstResultAtMs: 1100 + oursMs, runs: [run(oursMs), run(oursMs + 10)], detections: 100, peakRssMb: 1300 };
  const peer = { createMs: 700, firstMs: peerMs, runsMs: [peerMs, peerMs + 10], detections: 100, peakRssMb: 1700, firstResultAtMs: 800 + peerMs };
  const summary = (s: number, c: number, rss: number, first: number) => ({ steadyMs: s + 5, sessionCreateMs: c, readyMs: 1100, firstResultAtMs: first, firstRunMs: s, peakRssMb: rss });
  return {
    name,
    caseDir: '/x',
    image: { width: 640, height: 480 },
    options: { rounds: 1, runs: 2, threads: 2, sections: ['steady', 'profile', 'throughput'], peer: 'time_peer.js', throughputImages: 4, batches: [1, 2], replicas: [1, 2], probe: [256, 200, 272], profileRuns: 3 },
    rcnn: { steady: [steady], summary: summary(oursMs, 600, 1300, 1100 + oursMs), stages: { decodeMs: 10, preprocessMs: 20, sessionMs: oursMs - 40, transferMs: 2, postprocessMs: 8 } },
    peer: { steady: [peer], summary: summary(peerMs, 700, 1700, 800 + peerMs), check: { pass: true }, profile: { ops: [{ op: 'Conv', ms: 50, share: 0.5, nodes: 3 }, { op: 'Loop', ms: 50, share: 0.5, nodes: 1 }], kernelMs: 100, runMs: 101 } },
    profile: {
      ops: [
        { op: 'Conv', ms: 85, share: 0.85, nodes: 80 },
        { op: 'FusedGemm', ms: 6, share: 0.06, nodes: 2 },
        { op: 'RoiAlign', ms: 9, share: 0.09, nodes: 4 },
      ],
      kernelMs: 100,
      runMs: 102,
      flops: { conv: 400e9, deconv: 0, gemm: 30e9, matmul: 1e7, total: 430.01e9, nodes: 90, top: [] },
      check: [{ name: 'det.boxes.0 (+scores, labels)', pass: true, detail: '100 detections' }],
    },
    conv: { gflop: 64.2, runsMs: [320, 330, 340], gflopPerSecond: 194 },
    throughput: [
      { batch: 1, replicas: 1, images: 4, wallMs: 10000, imagesPerSecond: 0.4, peakRssMb: 1300 },
      { batch: 2, replicas: 1, images: 4, wallMs: 9900, imagesPerSecond: 0.404, peakRssMb: 1900 },
      { batch: 1, replicas: 2, images: 4, wallMs: 11000, imagesPerSecond: 0.364, peakRssMb: 2500 },
    ],
    peerImagesPerSecond: 1000 / peerMs,
  };
}

describe('report', () => {
  it('judges the targets: steady ratio by case, session creation, RSS, time outside GEMM kernels, parity, throughput', () => {
    const t = checkTargets(report(2400, 3300));
    const byName = new Map(t.map((x) => [x.name, x]));
    assert.equal(byName.get('steady-state time per image')!.met, true);
    assert.equal(byName.get('steady-state time per image')!.target, '≤ 0.75x baseline');
    assert.equal(byName.get('session creation')!.met, true);
    assert.equal(byName.get('peak RSS')!.met, true);
    assert.equal(byName.get('time outside Conv/ConvTranspose/Gemm')!.value, '9.0%');
    assert.equal(byName.get('outputs vs reference (parity tolerances)')!.met, true);
    // 2 replicas at 0.91x of one is a regression.
    assert.equal(byName.get('throughput vs batch 1, 1 replica')!.met, false);
    assert.equal(checkTargets(report(3000, 3300)).find((x) => x.name === 'steady-state time per image')!.met, false);
    assert.equal(checkTargets(report(5000, 6100, 'keypointrcnn_r50fpn')).find((x) => x.name === 'steady-state time per image')!.target, '≤ 0.85x baseline');
  });

  it('the share outside Conv/ConvTranspose/Gemm counts MatMul and fused GEMMs as inside', () => {
    assert.ok(Math.abs(outsideShare([{ op: 'Conv', ms: 6 }, { op: 'MatMul', ms: 1 }, { op: 'FusedGemm', ms: 1 }, { op: 'Concat', ms: 2 }]) - 0.2) < 1e-12);
  });

  it('prints medians, ratios, the FLOP rate against the conv probe, op shares and throughput', () => {
    const text = formatCase(report(2400, 3300));
    assert.match(text, /steady-state time per image +2\.40 s +3\.31 s +0\.73x/);
    assert.match(text, /430\.0 GFLOP .* = 182 GFLOP\/s; one 3x3 conv 64\.2 GFLOP: 194 GFLOP\/s/);
    assert.match(text, /rcnn-node .*outside Conv\/ConvTranspose\/Gemm kernels: 9\.0%/);
    assert.match(text, /baseline \(median of 3 run\(s\), 100 ms of kernels\): Conv 50\.0%, Loop 50\.0%/);
    assert.match(text, /batch 2, 1 replica\(s\) \(2 threads\) +4 +0\.404 +1\.01x/);
  });
});
