import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '@rcnn/core';
import { TrainingError } from '../src/training/errors.js';
import { SgdMomentum, clipGradients, isBias, learningRateAt, parameterRule, totalNorm } from '../src/training/index.js';

const solver = (...set: string[]) => loadConfig({ set }).SOLVER;

const close = (actual: ArrayLike<number>, expected: readonly number[], tol = 1e-6): void => {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * Math.max(1, Math.abs(expected[i]!)), `[${i}] ${actual[i]} vs ${expected[i]}`);
};

describe('solver: learning-rate schedule (Detectron steps_with_decay + warm-up)', () => {
  it('has Detectron defaults', () => {
    const s = solver();
    assert.equal(s.BASE_LR, 0.001);
    assert.equal(s.MOMENTUM, 0.9);
    assert.equal(s.WEIGHT_DECAY, 0.0005);
    assert.equal(s.BIAS_LR_FACTOR, 2);
    assert.equal(s.WEIGHT_DECAY_BIAS, 0);
    assert.equal(s.WARM_UP_ITERS, 500);
    assert.equal(s.WARM_UP_FACTOR, 1 / 3);
    assert.equal(s.WARM_UP_METHOD, 'linear');
    assert.equal(s.GAMMA, 0.1);
    assert.equal(s.MAX_ITER, 40000);
  });

  it('warms up linearly from WARM_UP_FACTOR, then decays by GAMMA at each step (a leading 0 step is ignored)', () => {
    const s = solver('SOLVER.BASE_LR=0.01', 'SOLVER.WARM_UP_ITERS=4', 'SOLVER.WARM_UP_FACTOR=0.25', 'SOLVER.STEPS=[0, 6, 8]', 'SOLVER.GAMMA=0.1');
    // factor = 0.25 * (1 - it/4) + it/4
    close([0, 1, 2, 3, 4, 5, 6, 7, 8, 100].map((i) => learningRateAt(s, i)), [0.0025, 0.004375, 0.00625, 0.008125, 0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001], 1e-12);
  });

  it('constant warm-up holds WARM_UP_FACTOR, and a step inside the warm-up multiplies with it', () => {
    const s = solver('SOLVER.BASE_LR=0.02', 'SOLVER.WARM_UP_ITERS=3', 'SOLVER.WARM_UP_FACTOR=0.5', 'SOLVER.WARM_UP_METHOD=constant', 'SOLVER.STEPS=[2]', 'SOLVER.GAMMA=0.5');
    close([0, 1, 2, 3].map((i) => learningRateAt(s, i)), [0.01, 0.01, 0.005, 0.01], 1e-12);
  });

  it('rejects STEPS out of order', () => {
    assert.throws(() => solver('SOLVER.STEPS=[10, 5]'), (e: unknown) => e instanceof ConfigError && e.key === 'SOLVER.STEPS');
  });
});

describe('solver: SGD with momentum (PyTorch update) and bias rules', () => {
  it('biases get BIAS_LR_FACTOR and WEIGHT_DECAY_BIAS', () => {
    const s = solver();
    assert.ok(isBias('roi_heads.box_predictor.cls_score.bias'));
    assert.ok(!isBias('backbone.body.layer1.0.bn1.biased_weight'));
    assert.deepEqual(parameterRule(s, 'rpn.head.conv.0.0.bias'), { lrFactor: 2, weightDecay: 0 });
    assert.deepEqual(parameterRule(s, 'rpn.head.conv.0.0.weight'), { lrFactor: 1, weightDecay: 0.0005 });
  });

  it('matches two updates computed by hand', () => {
    // lr 0.1 (no warm-up), momentum 0.9, wd 0.1; biases: lr x2, no decay.
    const s = solver('SOLVER.BASE_LR=0.1', 'SOLVER.WARM_UP_ITERS=0', 'SOLVER.MOMENTUM=0.9', 'SOLVER.WEIGHT_DECAY=0.1', 'SOLVER.BIAS_LR_FACTOR=2', 'SOLVER.WEIGHT_DECAY_BIAS=0');
    const params = new Map([
      ['fc.weight', Float32Array.from([1, -2])],
      ['fc.bias', Float32Array.from([1])],
    ]);
    const grads = () =>
      new Map([
        ['fc.weight', Float32Array.from([0.5, 0.25])],
        ['fc.bias', Float32Array.from([0.5])],
      ]);
    const sgd = new SgdMomentum(s);
    assert.equal(sgd.step(params, grads(), 0), 0.1);
    // weight: d = g + 0.1 p = [0.6, 0.05]; buf = d; p -= 0.1 buf
    close(params.get('fc.weight')!, [0.94, -2.005]);
    // bias: d = g = 0.5; p -= 0.2 * 0.5
    close(params.get('fc.bias')!, [0.9]);
    close(sgd.momentum.get('fc.weight')!, [0.6, 0.05]);
    sgd.step(params, grads(), 1);
    // weight: d = [0.5 + 0.094, 0.25 - 0.2005] = [0.594, 0.0495]; buf = 0.9 [0.6, 0.05] + d = [1.134, 0.0945]
    close(sgd.momentum.get('fc.weight')!, [1.134, 0.0945]);
    close(params.get('fc.weight')!, [0.94 - 0.1134, -2.005 - 0.00945]);
    // bias: buf = 0.9 * 0.5 + 0.5 = 0.95; p = 0.9 - 0.2 * 0.95
    close(params.get('fc.bias')!, [0.71]);
  });

  it('continues from restored momentum exactly as without the interruption', () => {
    const s = solver('SOLVER.BASE_LR=0.05', 'SOLVER.WARM_UP_ITERS=2');
    const g = [Float32Array.from([0.3, -0.1, 2]), Float32Array.from([-0.2, 0.4, 1]), Float32Array.from([0.1, 0.1, -1])];
    const a = new Map([['w', Float32Array.from([1, 2, 3])]]);
    const sgdA = new SgdMomentum(s);
    g.forEach((x, i) => sgdA.step(a, new Map([['w', x.slice()]]), i));
    const b = new Map([['w', Float32Array.from([1, 2, 3])]]);
    const sgdB = new SgdMomentum(s);
    sgdB.step(b, new Map([['w', g[0]!.slice()]]), 0);
    const restored = new SgdMomentum(s, new Map([...sgdB.momentum].map(([k, v]) => [k, v.slice()])));
    g.slice(1).forEach((x, i) => restored.step(b, new Map([['w', x.slice()]]), i + 1));
    assert.deepEqual([...b.get('w')!], [...a.get('w')!]);
  });
});

describe('solver: SGD update shared with helper threads (stepAsync)', () => {
  const s = solver('SOLVER.BASE_LR=0.05', 'SOLVER.WARM_UP_ITERS=0', 'SOLVER.MOMENTUM=0.9', 'SOLVER.WEIGHT_DECAY=0.001', 'SOLVER.BIAS_LR_FACTOR=2', 'SOLVER.WEIGHT_DECAY_BIAS=0');
  const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37));
  const sizes: [string, number][] = [
    ['conv1.weight', 4000],
    ['conv1.bias', 40],
    ['fc.weight', 3000],
    ['fc.bias', 30],
    ['head.weight', 2500],
  ];
  // One parameter views part of a larger buffer: it cannot move and must stay on the calling thread.
  const shared = new Float32Array(1500);
  const parameters = () => {
    const m = new Map(sizes.map(([k, n], i) => [k, values(n, i)]));
    const view = shared.subarray(500, 1500);
    view.set(values(1000, 9));
    m.set('view.weight', view);
    return m;
  };
  const gradients = (iteration: number, names: Map<string, Float32Array>) => new Map([...names].map(([k, v], i) => [k, values(v.length, 100 * iteration + i)]));

  for (const threads of [2, 3]) {
    it(`gives the step's values bit for bit on ${threads} threads, moving only whole-buffer arrays`, async () => {
      const expected = new Map([...parameters()].map(([k, v]) => [k, v.slice()]));
      const reference = new SgdMomentum(s);
      const actual = parameters();
      const sgd = new SgdMomentum(s, new Map(), { threads, minValues: 0 });
      const before = new Map(actual);
      try {
        for (const iteration of [0, 1, 2]) {
          reference.step(expected, gradients(iteration, expected), iteration);
          assert.equal(await sgd.stepAsync(actual, gradients(iteration, actual), iteration), 0.05);
        }
      } finally {
        await sgd.close();
      }
      for (const [k, v] of expected) {
        assert.deepEqual([...actual.get(k)!], [...v], k);
        assert.deepEqual([...sgd.momentum.get(k)!], [...reference.momentum.get(k)!], `momentum of ${k}`);
      }
      const moved = [...actual.keys()].filter((k) => actual.get(k) !== before.get(k));
      assert.ok(moved.length > 0 && moved.length < actual.size, `moved: ${moved.join(', ')}`);
      assert.ok(!moved.includes('view.weight'));
      assert.equal(actual.get('view.weight')!.buffer, shared.buffer);
    });
  }

  it('stays on the calling thread below minValues (the arrays are the same objects)', async () => {
    const actual = parameters();
    const before = new Map(actual);
    const sgd = new SgdMomentum(s);
    await sgd.stepAsync(actual, gradients(0, actual), 0);
    await sgd.close();
    for (const [k, v] of before) assert.equal(actual.get(k), v);
  });

  it('refuses a second update while one runs, and says the parameters are lost when a helper dies', async () => {
    // The helper gets the large parameter (a tie goes to a helper); this thread only the small view.
    const big = new Map([
      ['big.weight', new Float32Array(1 << 23)],
      ['view.weight', shared.subarray(0, 100)],
    ]);
    const first = new Map([...big].map(([k, v]) => [k, new Float32Array(v.length)]));
    const second = new Map([...big].map(([k, v]) => [k, new Float32Array(v.length)]));
    const sgd = new SgdMomentum(s, new Map(), { minValues: 0 });
    const running = sgd.stepAsync(big, first, 0);
    const refused = sgd.stepAsync(big, second, 0);
    // Stopped before it could even start (a thread takes tens of ms to start): its share is gone.
    const closing = sgd.close();
    await assert.rejects(refused, (e: unknown) => e instanceof TrainingError && /while another update is running/.test(e.message));
    await closing;
    await assert.rejects(running, (e: unknown) => e instanceof TrainingError && /helper thread failed and the parameters it held are lost/.test(e.message) && /--resume/.test(e.hint ?? ''));
    assert.equal(big.get('big.weight')!.length, 0, 'the moved parameter is detached');
  });
});

describe('solver: gradient clipping', () => {
  const grads = () =>
    new Map([
      ['a', Float32Array.from([3, -4])],
      ['b', Float32Array.from([0.5])],
    ]);

  it('value clamps every element', () => {
    const g = grads();
    const r = clipGradients(solver('SOLVER.CLIP_GRADIENTS=value', 'SOLVER.CLIP_VALUE=1'), g);
    assert.ok(r.clipped);
    assert.deepEqual([...g.get('a')!], [1, -1]);
    assert.deepEqual([...g.get('b')!], [0.5]);
  });

  it('norm scales each parameter whose norm exceeds CLIP_VALUE', () => {
    const g = grads();
    clipGradients(solver('SOLVER.CLIP_GRADIENTS=norm', 'SOLVER.CLIP_VALUE=1'), g);
    close(g.get('a')!, [3 / (5 + 1e-6), -4 / (5 + 1e-6)]);
    close(g.get('b')!, [0.5]);
  });

  it('full_model scales all gradients by CLIP_VALUE / total norm', () => {
    const g = grads();
    const total = Math.sqrt(25 + 0.25);
    assert.ok(Math.abs(totalNorm(g) - total) < 1e-6);
    const r = clipGradients(solver('SOLVER.CLIP_GRADIENTS=full_model', 'SOLVER.CLIP_VALUE=2'), g);
    const c = 2 / (total + 1e-6);
    assert.ok(Math.abs(r.norm - total) < 1e-6);
    close(g.get('a')!, [3 * c, -4 * c]);
    close(g.get('b')!, [0.5 * c]);
  });

  it("uses the caller's 2-norm instead of computing it, and only where the 2-norm is the norm needed", () => {
    const g = grads();
    const r = clipGradients(solver('SOLVER.CLIP_GRADIENTS=full_model', 'SOLVER.CLIP_VALUE=2'), g, 4);
    assert.equal(r.norm, 4);
    close(g.get('a')!, [3 * (2 / (4 + 1e-6)), -4 * (2 / (4 + 1e-6))]);
    assert.equal(clipGradients(solver(), grads(), 7).norm, 7);
    const l1 = clipGradients(solver('SOLVER.CLIP_NORM_TYPE=1'), grads(), 7).norm;
    assert.ok(Math.abs(l1 - 7.5) < 1e-9, `1-norm ${l1}`);
  });

  it('none leaves the gradients alone', () => {
    const g = grads();
    assert.equal(clipGradients(solver(), g).clipped, false);
    assert.deepEqual([...g.get('a')!], [3, -4]);
  });
});
