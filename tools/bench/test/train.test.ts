import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KernelEvent } from '@rcnn/runtime';
import { type SessionProfile, type TrainCaseReport, checkTrainTargets, countKernelFlops, formatTrain, frozenStages, gradientKernels, stepPhases } from '../src/index.js';

const kernel = (op: string, inputs: number[][], output: number[], node = 'n'): KernelEvent => ({ node, op, provider: 'CPUExecutionProvider', ms: 1, selfMs: 1, inputShapes: inputs, outputShapes: [output] });

const session = (ops: [string, number][], frozen: string[] = []): SessionProfile => {
  const kernelMs = ops.reduce((a, [, ms]) => a + ms, 0);
  return { ops: ops.map(([op, ms]) => ({ op, ms, nodes: 1, share: ms / kernelMs })), kernelMs, backwardMs: kernelMs / 2, frozenGradientKernels: frozen, backboneGradientKernels: 12 };
};

function report(stepMs: number, torchMs: number, frozenKernels: string[] = []): TrainCaseReport {
  const profile = {
    proposals: session([['Conv', 1000], ['NonMaxSuppression', 100]]),
    training: { ...session([['Conv', 4000], ['MatMul', 2000], ['ScatterND', 900]], frozenKernels), memory: { peakInUseBytes: 900 * 1048576, peakNode: 'backward/grad/roi_align/map', arenaHeldBytes: 1057 * 1048576 } },
  };
  const steps = { trainableParameters: 10, parameters: 2, buildMs: 1, warmupMs: stepMs, stepsMs: [stepMs], losses: { 'loss.mask': 0.7 }, peakRssMb: 1000 };
  return {
    name: 'maskrcnn_r50fpn',
    kind: 'maskrcnn',
    options: { rounds: 1, runs: 1, threads: 2, trainabilities: ['tbl3'], python: 'python3', peerScript: 'x.py', throughputSteps: 1, profile: true, probe: [256, 200, 272] },
    rules: [
      {
        trainable: 'tbl3',
        rcnn: [steps],
        torch: [{ model: 'maskrcnn_resnet50_fpn', trainable: 'trainable_backbone_layers=3', trainable_params: 10, runs_s: [torchMs / 1000], median_s: torchMs / 1000, peak_rss_mb: 2000, losses: {} }],
        stepMs,
        torchStepMs: torchMs,
        peakRssMb: 1000,
        torchPeakRssMb: 2000,
        profiled: { ...steps, profile },
        torchProfiled: undefined,
        flops: { proposals: countKernelFlops([]), training: { conv: 1.6e12, deconv: 0, gemm: 0, matmul: 0, total: 1.6e12, nodes: 1, top: [] }, backwardGflop: 1000 },
      },
    ],
    conv: { gflop: 64, runsMs: [320], gflopPerSecond: 200 },
    throughput: [
      { replicas: 1, batch: 2, images: 2, wallMs: 20000, imagesPerSecond: 0.1, peakRssMb: 2000 },
      { replicas: 2, batch: 1, images: 2, wallMs: 22000, imagesPerSecond: 2 / 22, peakRssMb: 2200 },
    ],
  };
}

describe('train section', () => {
  it("splits rcnn-node's steps into onnxruntime, the SGD update and host work (medians over all steps), when every child reported them", () => {
    const child = (stepsMs: number[], session: number[], update: number[]) => ({ trainableParameters: 1, parameters: 1, buildMs: 1, warmupMs: 1, stepsMs, phasesMs: { session, update }, losses: {}, peakRssMb: 1 });
    const phases = stepPhases([child([6000, 6400], [5500, 5800], [150, 170]), child([6200], [5600], [160])]);
    assert.deepEqual(phases, { sessionMs: 5600, updateMs: 160, hostMs: 430 });
    const r = report(8000, 10000);
    const withPhases = { ...r, rules: [{ ...r.rules[0]!, rcnn: [child([6000, 6400], [5500, 5800], [150, 170])] }] };
    assert.match(formatTrain(withPhases), /tbl3: rcnn-node step \(median\) = onnxruntime 5\.65 s \+ SGD update 160 ms \+ host 390 ms/);
    // A child without phases (an older build): no line rather than a wrong one.
    assert.equal(stepPhases([child([6000], [5500], [150]), { ...child([6000], [1], [1]), phasesMs: undefined }]), undefined);
  });

  it('checks each target against its goal', () => {
    const targets = checkTrainTargets(report(8000, 10000));
    const byName = new Map(targets.map((t) => [t.target.replace(/ \(.*\)$/, ''), t]));
    assert.equal(byName.get('step time')!.met, true); // 0.80x
    assert.equal(byName.get('peak RSS')!.met, true); // 0.50x
    // GEMM-class kernels 7000 of an 8000 ms step: 12.5% outside.
    assert.equal(byName.get('outside Conv/ConvT/Gemm/MatMul')!.measured, '12.5% (1.00 s)');
    assert.equal(byName.get('outside Conv/ConvT/Gemm/MatMul')!.met, true);
    assert.equal(byName.get('frozen stages: no backward')!.met, true);
    assert.match(byName.get('GFLOP/s of the step')!.measured, /^200 vs 200/);
    assert.equal(byName.get('2 replicas x 1 image vs 1 replica x batch 2')!.met, false); // 0.91x
    const slow = checkTrainTargets(report(9000, 10000, ['conv_body.body.layer1.0.conv1/weight_grad/tap_0_0']));
    assert.equal(slow.find((t) => t.target.startsWith('step time'))!.met, false);
    assert.equal(slow.find((t) => t.target.startsWith('frozen'))!.met, false);
    // The profiled session's memory: peak in use, where, and the arena it needed.
    assert.match(formatTrain(report(8000, 10000)), /memory in use at most 900 MB \(after backward\/grad\/roi_align\/map\), arena 1057 MB/);
    assert.match(formatTrain(report(8000, 10000)), /step time \(trainable_backbone_layers=3\)\s+≤ 0\.80x torchvision\s+0\.80x \(8\.00 s vs 10\.00 s\)\s+met/);
  });

  it("prints torchvision's own step split the same way when its operator profile was taken", () => {
    const r = report(8000, 10000);
    const torchRow = r.rules[0]!.torch[0]!;
    const op_profile = { step_s: 9.0, gemm_s: 7.0, outside_share: 2 / 9, top_self_s: [['aten::convolution_backward', 4.5], ['torchvision::_roi_align_backward', 0.9]] as const };
    const withTorch = { ...r, rules: [{ ...r.rules[0]!, torchProfiled: { ...torchRow, op_profile } }] };
    const outside = checkTrainTargets(withTorch).find((t) => t.target.startsWith('outside'))!;
    assert.equal(outside.measured, '12.5% (1.00 s; torchvision 22.2%, 2.00 s)');
    assert.equal(outside.met, true);
    assert.match(formatTrain(withTorch), /torchvision's step under its profiler \(9\.00 s, GEMM-class 7\.00 s\): aten::convolution_backward 50\.0%, torchvision::_roi_align_backward 10\.0%/);
  });

  it('finds backward kernels of frozen stages by node name', () => {
    const names = ['conv_body/body/layer1/0/conv1', 'backward/grad/conv_body.body.layer1.0.conv1/gx', 'backward/grad/conv_body.body.layer2.0.conv1/weight_grad/tap_0_0', 'backward/grad/rpn.level_0.conv0/gx'];
    assert.deepEqual(gradientKernels(names, frozenStages('tbl3')), { frozen: ['conv_body.body.layer1.0.conv1/gx'], backbone: 2 });
    assert.deepEqual(gradientKernels(names, frozenStages('frozen')).frozen.length, 2);
  });

  it('counts Gemm FLOPs with either operand layout (transA in the backward)', () => {
    // [M=4, K=6] x [6, 5] and its transA form [K=6, M=4]: 2·4·5·6 = 240 FLOPs each.
    const a = countKernelFlops([kernel('Gemm', [[4, 6], [6, 5]], [4, 5]), kernel('Gemm', [[6, 4], [6, 5]], [4, 5])]);
    assert.equal(a.gemm, 480);
    // A weight gradient's Conv: kernel = output gradient [O=3, N=1, 5, 5] over input [C=2, 1, 7, 7] → [2, 3, 3, 3].
    const c = countKernelFlops([kernel('Conv', [[2, 1, 7, 7], [3, 1, 5, 5]], [2, 3, 3, 3])]);
    assert.equal(c.conv, 2 * 2 * 3 * 3 * 3 * 25);
  });
});
