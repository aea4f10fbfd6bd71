import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type IterationMetrics, judgeGoals, lossCurveSvg, lossSummary, namedStats, parseMetrics, readBenchPlan } from '../src/bench-report.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const BENCH = join(HERE, '..', 'src', 'bench.js');
const CONFIGS = join(HERE, '..', '..', 'configs');
const dir = mkdtempSync(join(tmpdir(), 'rcnn-shapes-bench-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the shipped plan reads: both models, their configs, goals from the issue', () => {
  const plan = readBenchPlan(join(CONFIGS, 'bench.yaml'));
  assert.deepEqual(plan.models.map((m) => m.name), ['maskrcnn', 'keypointrcnn']);
  assert.deepEqual(plan.models[0]!.goals, { 'bbox/AP50': 0.9, 'segm/AP50': 0.8 });
  assert.deepEqual(plan.models[1]!.oksSigmas, [0.05, 0.05, 0.05]);
  assert.equal(plan.models[0]!.config, join(CONFIGS, 'maskrcnn_shapes.yaml'));
  assert.equal(plan.timeLimitMinutes, 30);
});

test('a bad plan names the key', () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'dataset: {train: 4, val: 2, seed: 1, width: 64, height: 64}\ntimeLimitMinutes: 1\nmodels:\n  - {name: k, config: k.yaml, iouTypes: [bbox, keypoints]}\n');
  assert.throws(() => readBenchPlan(bad), /models\[0\]\.oksSigmas is needed to evaluate keypoints/);
  writeFileSync(bad, 'dataset: {train: 4, val: 2, seed: 1, width: 64, height: 64}\ntimeLimitMinutes: 1\nmodels:\n  - {name: m, config: m.yaml, iouTypes: [bbox], goals: {segm/AP50: 0.8}}\n');
  assert.throws(() => readBenchPlan(bad), /models\[0\]\.goals\.segm\/AP50 must be <one of bbox>/);
  writeFileSync(bad, 'dataset: {train: 0, val: 2, seed: 1, width: 64, height: 64}\ntimeLimitMinutes: 1\nmodels: []\n');
  assert.throws(() => readBenchPlan(bad), /dataset\.train must be a positive integer, got 0/);
});

test('the loss summary takes medians over the window ending at each point', () => {
  const entries: IterationMetrics[] = Array.from({ length: 100 }, (_, i) => ({ iteration: i, total_loss: i % 10 === 0 ? 50 : 100 - i, lr: 0.01, loss_a: 1, loss_b: i }));
  const points = lossSummary(entries, 5, 10);
  assert.deepEqual(points.map((p) => p.iterations), [1, 25, 50, 75, 100]);
  assert.equal(points[0]!.total, 50, 'the first iteration alone');
  // Indices 15..24: 85 … 76 with index 20's 80 replaced by 50, so the middle pair is 79 and 81.
  assert.equal(points[1]!.total, (79 + 81) / 2);
  assert.equal(points[4]!.losses.loss_b, (94 + 95) / 2);
  assert.equal(points[4]!.losses.loss_a, 1);
});

test('metrics lines without a loss (validation) are left out; the SVG is small and has one curve per run', () => {
  const text = ['{"iteration":0,"total_loss":3,"lr":0.1,"loss_x":3}', '{"iteration":0,"validation":{"bbox/AP":0}}', '{"iteration":1,"total_loss":2,"lr":0.1,"loss_x":2}', ''].join('\n');
  const entries = parseMetrics(text);
  assert.deepEqual(entries.map((e) => e.total_loss), [3, 2]);
  const long: IterationMetrics[] = Array.from({ length: 5000 }, (_, i) => ({ iteration: i, total_loss: 4 / (1 + i / 100), lr: 0.01 }));
  const svg = lossCurveSvg([{ name: 'a', entries: long }, { name: 'b<c', entries }], { title: 'T' });
  assert.equal((svg.match(/<path /g) ?? []).length, 2);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /b&lt;c/);
  assert.ok(svg.length < 20_000, `${svg.length} bytes`);
});

test('eval numbers are named as summarize() orders them and judged against the goals', () => {
  const stats = namedStats({ bbox: [0.5, 0.91, 0.4, 0.1, 0.2, 0.3, 0, 0, 0, 0, 0, 0], keypoints: [0.3, 0.6, 0.2, 0.25, 0.35, 0, 0, 0, 0, 0] }, ['bbox', 'keypoints']);
  assert.equal(stats['bbox/AP50'], 0.91);
  assert.equal(stats['keypoints/APm'], 0.25);
  assert.equal(stats['keypoints/APl'], 0.35);
  assert.deepEqual(
    judgeGoals({ 'bbox/AP50': 0.9, 'keypoints/AP50': 0.7, 'segm/AP50': 0.8 }, stats).map((v) => v.met),
    [true, false, false],
  );
  assert.throws(() => namedStats({ bbox: [] }, ['segm']), /no "segm" numbers/);
});

test('the benchmark trains both shipped models from random init (the loss goes down) and evaluates them on the held-out split', async (t) => {
  const plan = join(dir, 'plan.yaml');
  writeFileSync(
    plan,
    [
      'dataset: {train: 6, val: 3, seed: 4, width: 128, height: 128}',
      'timeLimitMinutes: 30',
      'models:',
      `  - {name: maskrcnn, config: ${JSON.stringify(join(CONFIGS, 'maskrcnn_shapes.yaml'))}, iouTypes: [bbox, segm], goals: {bbox/AP50: 0.9}}`,
      `  - {name: keypointrcnn, config: ${JSON.stringify(join(CONFIGS, 'keypointrcnn_shapes.yaml'))}, iouTypes: [bbox, keypoints], oksSigmas: [0.05, 0.05, 0.05]}`,
      '',
    ].join('\n'),
  );
  const out = join(dir, 'run');
  const set = ['SOLVER.MAX_ITER=16', 'SOLVER.IMS_PER_BATCH=2', 'SOLVER.WARM_UP_ITERS=4', 'SOLVER.BASE_LR=0.01', 'SOLVER.STEPS=[]'];
  const { stdout } = await promisify(execFile)(process.execPath, [BENCH, '--plan', plan, '--out', out, ...set.flatMap((s) => ['--set', s]), '--threads', '2'], { maxBuffer: 1 << 26 });
  assert.match(stdout, /maskrcnn bbox\/AP50 \S+ \(goal ≥ 0\.9\): (met|not met)/);
  const bench = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as { models: { name: string; iterations: number; stats: Record<string, number> }[] };
  for (const model of bench.models) {
    assert.equal(model.iterations, 16, model.name);
    const losses = parseMetrics(readFileSync(join(out, model.name, 'metrics.json'), 'utf8')).map((e) => e.total_loss);
    t.diagnostic(`${model.name} total loss: ${losses.map((v) => v.toFixed(3)).join(' ')}`);
    const first = (losses[0]! + losses[1]! + losses[2]!) / 3;
    const last = (losses[13]! + losses[14]! + losses[15]!) / 3;
    assert.ok(last < 0.7 * first, `${model.name}: loss ${first} -> ${last}`);
    for (const [metric, v] of Object.entries(model.stats)) assert.ok(v >= -1 && v <= 1, `${model.name} ${metric} = ${v}`);
    assert.ok(readFileSync(join(out, model.name, 'report.html'), 'utf8').includes('<svg'), 'the training report has its curves');
  }
  assert.deepEqual(Object.keys(bench.models[0]!.stats).filter((k) => k.endsWith('/AP50')), ['bbox/AP50', 'segm/AP50']);
  assert.deepEqual(Object.keys(bench.models[1]!.stats).filter((k) => k.endsWith('/AP50')), ['bbox/AP50', 'keypoints/AP50']);
  assert.match(readFileSync(join(out, 'loss.svg'), 'utf8'), /<path /);
});
