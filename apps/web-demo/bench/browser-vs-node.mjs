// Time per image of the same exported model in the page (onnxruntime-web, WASM, headless Debian
// chromium) and in rcnn-node's runtime (onnxruntime-node, CPU), same machine, same image, same number
// of threads, measured in the same run (medians; the first run of each side is a warm-up).
//
//   node bench/browser-vs-node.mjs [--model model.onnx] [--image img] [--threads 2] [--runs 3]
//
// Without --model it exports what `rcnn bench` runs: Mask R-CNN R50-FPN (maskrcnn_resnet50_fpn) with
// rcnn-node's calibrated random weights (seed 0). Writes out/web-demo/bench.json. Needs `npm run build
// -w @rcnn/web-demo` and /usr/bin/chromium (RCNN_CHROMIUM).
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BUILT_IN_PACKAGES } from '@rcnn/parity-tools';
import { SAMPLE_IMAGES } from '@rcnn/cli';
import { createDetector, exportModel } from '@rcnn/runtime';
import { findRepoRoot } from '@rcnn/testing';
import { chromium } from 'playwright-core';
import { startServer } from '../build/src/serve.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, image: { type: 'string' }, threads: { type: 'string', default: '2' }, runs: { type: 'string', default: '3' }, config: { type: 'string', default: 'maskrcnn_resnet50_fpn' } } });
const threads = Number(values.threads);
const runs = Number(values.runs);
const image = values.image ?? SAMPLE_IMAGES[0];
const tmp = mkdtempSync(join(tmpdir(), 'rcnn-web-bench-'));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

let modelPath = values.model;
const source = { config: values.config, register: BUILT_IN_PACKAGES };
if (!modelPath) {
  modelPath = join(tmp, 'model.onnx');
  writeFileSync(modelPath, (await exportModel(source)).bytes);
}
const modelMB = statSync(modelPath).size / 1e6;
console.log(`model ${modelPath} (${modelMB.toFixed(1)} MB), image ${image}, ${threads} threads, ${runs} timed runs per side`);

// A: onnxruntime-node through rcnn-node's runtime (same weights: the export and the detector use the same seed).
let t0 = performance.now();
const detector = await createDetector({ ...source, ...(values.model ? {} : {}), devices: 'cpu', threads: { intraOp: threads, interOp: 1 } });
const nodeReady = performance.now() - t0;
const nodeRuns = [];
for (let i = 0; i <= runs; i++) {
  const r = await detector.predictOne(image);
  if (i > 0) nodeRuns.push(r.timings);
}
await detector.close();
const node = {
  readyMs: nodeReady,
  decodeMs: median(nodeRuns.map((t) => t.decodeMs)),
  transformMs: median(nodeRuns.map((t) => t.preprocessMs)),
  inferenceMs: median(nodeRuns.map((t) => t.sessionMs)),
  postprocessMs: median(nodeRuns.map((t) => t.postprocessMs)),
  totalMs: median(nodeRuns.map((t) => t.totalMs)),
};

// B: the page in headless chromium (cross-origin isolated, WASM threads).
const server = await startServer(0);
const browser = await chromium.launchPersistentContext(join(tmp, 'profile'), {
  executablePath: process.env.RCNN_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage();
await page.goto(`http://127.0.0.1:${server.port}/?backend=wasm&threads=${threads}&runs=${runs + 1}`);
t0 = performance.now();
await page.setInputFiles('#model', modelPath);
await page.waitForFunction(() => ['ready', 'error'].includes(window.rcnnDemo.status), undefined, { timeout: 900_000 });
const pageReady = performance.now() - t0;
await page.setInputFiles('#image', image);
await page.waitForFunction(() => ['done', 'error'].includes(window.rcnnDemo.status), undefined, { timeout: 1_800_000 });
const state = await page.evaluate(() => window.rcnnDemo);
mkdirSync(join(findRepoRoot(), 'out', 'web-demo'), { recursive: true });
await page.screenshot({ path: join(findRepoRoot(), 'out', 'web-demo', 'bench-page.png'), fullPage: true });
await browser.close();
await server.close();
if (state.status !== 'done') throw new Error(`page: ${state.error}`);
const timed = state.runs.slice(1);
const web = {
  readyMs: pageReady,
  sessionMs: state.sessionMs,
  threads: state.threads,
  crossOriginIsolated: state.crossOriginIsolated,
  decodeMs: median(timed.map((r) => r.decode)),
  transformMs: median(timed.map((r) => r.transform)),
  inferenceMs: median(timed.map((r) => r.inference)),
  postprocessMs: median(timed.map((r) => r.postprocess)),
  drawMs: median(timed.map((r) => r.draw)),
  totalMs: median(timed.map((r) => r.total)),
};
const report = { model: modelPath, modelMB, image, threads, runs, node, web, detections: state.result.scores.length };
writeFileSync(join(findRepoRoot(), 'out', 'web-demo', 'bench.json'), JSON.stringify(report, null, 2));
const row = (k, label) => `| ${label} | ${node[k] === undefined ? '—' : node[k].toFixed(0)} | ${web[k] === undefined ? '—' : web[k].toFixed(0)} | ${node[k] ? (web[k] / node[k]).toFixed(2) : '—'} |`;
console.log(['| ms (median) | onnxruntime-node | page, WASM | page / node |', '| --- | --- | --- | --- |',
  row('readyMs', 'model ready (read, session)'), row('decodeMs', 'decode'), row('transformMs', 'transform'), row('inferenceMs', 'inference (session run)'),
  row('postprocessMs', 'post-processing'), row('totalMs', 'total per image')].join('\n'));
console.log(`page: ${web.threads} threads, cross-origin isolated ${web.crossOriginIsolated}, session ${web.sessionMs.toFixed(0)} ms, ${report.detections} detections`);
rmSync(tmp, { recursive: true, force: true });
