/**
 * The demo page in a real browser: Debian's chromium, headless, driven by playwright-core (never a
 * downloaded browser). The page (build/page, served cross-origin isolated) loads the exported
 * maskrcnn_tiny fixture model and its image through its file inputs, runs onnxruntime-web (WASM,
 * threaded) and draws. Its detections must equal the Node runtime's (onnxruntime-node) on the
 * same file: same count and labels, boxes within 1e-2 px and scores within 1e-4 (the parity
 * harness's detection rule), every mask IoU >= 0.99 (its mask rule). A screenshot is saved to
 * out/web-demo/ (gitignored) for a person to look at.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeRle } from '@rcnn/core';
import { findRepoRoot, publicCaseDir } from '@rcnn/testing';
import { BUILT_IN_PACKAGES } from '@rcnn/parity-tools';
import { createDetector, exportModel, readMasks } from '@rcnn/runtime';
import { type BrowserContext, chromium } from 'playwright-core';
import type { DetectionsJson } from '../src/pipeline.js';
import { PAGE_DIR, type PageServer, startServer } from '../src/serve.js';

/** The system browser (apt-get install chromium; .ci/run installs it when missing). */
const CHROMIUM = process.env.RCNN_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const caseDir = publicCaseDir('maskrcnn_tiny');
const imagePath = join(caseDir, 'image_0.png');
const tmp = mkdtempSync(join(tmpdir(), 'rcnn-web-demo-'));
const artefacts = join(findRepoRoot(), 'out', 'web-demo');
let server: PageServer;
let browser: BrowserContext;

after(async () => {
  await browser?.close();
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

before(async () => {
  assert.ok(existsSync(join(PAGE_DIR, 'main.js')), `the page is not built (${PAGE_DIR}): npm run build -w @rcnn/web-demo`);
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: apt-get install -y chromium (or set RCNN_CHROMIUM)`);
  server = await startServer(0);
  browser = await chromium.launchPersistentContext(join(tmp, 'profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 900, height: 900 } });
});

/** IoU of two binary masks. */
function iou(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i]! & b[i]!;
    union += a[i]! | b[i]!;
  }
  return union === 0 ? 1 : inter / union;
}

describe('the web demo in headless chromium', () => {
  it('detects on the maskrcnn_tiny fixture exactly as the Node runtime does, and draws it', async () => {
    const source = { config: join(caseDir, 'case.json'), weights: join(caseDir, 'weights.safetensors'), register: BUILT_IN_PACKAGES };
    const modelPath = join(tmp, 'maskrcnn_tiny.onnx');
    writeFileSync(modelPath, (await exportModel(source)).bytes);

    // The Node runtime on the same image file (onnxruntime-node, sharp's PNG decoder).
    const detector = await createDetector({ ...source, devices: 'cpu', threads: { intraOp: 1, interOp: 1 } });
    const [outcome] = await detector.predict([imagePath]);
    await detector.close();
    assert.ok(outcome.ok, outcome.ok ? '' : outcome.error.message);
    const ref = outcome.result.detections!;
    const refMasks = readMasks(ref)!;
    assert.ok(ref.scores.length > 0, 'the fixture has detections');

    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(`http://127.0.0.1:${server.port}/?minScore=0`);
    await page.setInputFiles('#model', modelPath);
    await page.setInputFiles('#image', imagePath);
    await page.waitForFunction(() => ['done', 'error'].includes(window.rcnnDemo.status), undefined, { timeout: 300_000 });
    const state = await page.evaluate(() => window.rcnnDemo);
    mkdirSync(artefacts, { recursive: true });
    await page.screenshot({ path: join(artefacts, 'maskrcnn_tiny-page.png'), fullPage: true });
    await page.locator('#canvas').screenshot({ path: join(artefacts, 'maskrcnn_tiny-canvas.png') });
    assert.equal(state.status, 'done', `${state.error ?? ''}\n${logs.join('\n')}`);
    assert.equal(state.crossOriginIsolated, true, 'the server makes the page cross-origin isolated');
    assert.equal(state.backend, 'wasm');
    assert.ok(state.threads >= 1);

    const got = state.result as DetectionsJson;
    const n = ref.scores.length;
    assert.equal(got.scores.length, n, 'same number of detections');
    assert.deepEqual(got.labels, Array.from(ref.labels, Number), 'same labels in the same order');
    let boxErr = 0;
    let scoreErr = 0;
    let minIoU = 1;
    for (let d = 0; d < n; d++) {
      scoreErr = Math.max(scoreErr, Math.abs(got.scores[d]! - ref.scores[d]!));
      for (let j = 0; j < 4; j++) boxErr = Math.max(boxErr, Math.abs(got.boxes[4 * d + j]! - ref.boxes[4 * d + j]!));
      const [h, w] = ref.originalSize;
      const mine = decodeRle({ size: [h, w], counts: got.masks![d]! });
      minIoU = Math.min(minIoU, iou(mine, decodeRle(refMasks.rle(d))));
    }
    console.log(`browser vs node: ${n} detections, max box error ${boxErr.toExponential(2)} px, max score error ${scoreErr.toExponential(2)}, min mask IoU ${minIoU.toFixed(4)}; ` +
      `threads ${state.threads}, session ${state.sessionMs?.toFixed(0)} ms, stages ${JSON.stringify(state.runs[0], (_, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}`);
    assert.ok(boxErr <= 1e-2, `boxes differ by ${boxErr} px`);
    assert.ok(scoreErr <= 1e-4, `scores differ by ${scoreErr}`);
    assert.ok(minIoU >= 0.99, `a mask's IoU is ${minIoU}`);
    // Something was drawn: the canvas is the image's size and not the bare image.
    const drawn = await page.evaluate(() => {
      const c = document.getElementById('canvas') as HTMLCanvasElement;
      return { w: c.width, h: c.height, summary: document.getElementById('summary')!.textContent };
    });
    assert.deepEqual([drawn.h, drawn.w], [...ref.originalSize]);
    assert.match(drawn.summary ?? '', new RegExp(`^${n} detections, ${n} drawn`));
  });
});
