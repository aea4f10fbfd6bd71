/**
 * The demo page: pick (or drop) an exported model and an image; the page runs the model with
 * onnxruntime-web (WASM — threaded when the page is cross-origin isolated — or WebGPU where the
 * browser offers it), draws boxes, labels, masks and keypoints on a canvas and shows the time of
 * each stage. URL parameters: `backend=wasm|webgpu`, `threads=N`, `minScore=S`, `runs=N` (time N
 * runs and report medians). The page's state is also in `window.rcnnDemo` for scripted use.
 */
import type * as Ort from 'onnxruntime-web';
import { drawDetectionsOnCanvas } from '@rcnn/runtime/web';
import type { HostTensor, RgbImage } from '@rcnn/core/web';
import { type DetectionsJson, type ModelInfo, type StageTimes, detect, detectionsJson, hostOutputs, modelInfo } from './pipeline.js';

/** What the page exposes on `window.rcnnDemo` (read by its test and the bench). */
export interface DemoState {
  status: 'idle' | 'loading-model' | 'ready' | 'running' | 'done' | 'error';
  error?: string;
  backend: string;
  threads: number;
  crossOriginIsolated: boolean;
  webgpu: boolean;
  modelBytes?: number;
  sessionMs?: number;
  result?: DetectionsJson;
  /** Stage times of each run (ms): decode, transform, inference, postprocess, draw. */
  runs: (StageTimes & { decode: number; draw: number; total: number })[];
}

declare global {
  interface Window {
    rcnnDemo: DemoState;
  }
}

const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const hasWebGpu = 'gpu' in navigator;
const backend = params.get('backend') ?? 'wasm';
const threads = Number(params.get('threads') ?? (crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1));
const minScore = Number(params.get('minScore') ?? 0.5);
const runsWanted = Math.max(1, Number(params.get('runs') ?? 1));

const state: DemoState = { status: 'idle', backend, threads, crossOriginIsolated, webgpu: hasWebGpu, runs: [] };
window.rcnnDemo = state;

// onnxruntime-web's own modules, served with their WASM files from ./ort/ (build-page.mjs; the
// import map of index.html): the WASM-only build (14 MB of WASM to compile) unless WebGPU is
// asked for, which needs the JSEP build (28 MB).
const ort: typeof Ort = backend === 'webgpu' ? await import('onnxruntime-web') : await import('onnxruntime-web/wasm');
ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
ort.env.wasm.numThreads = threads;

let session: Ort.InferenceSession | undefined;
let info: ModelInfo | undefined;
let imageFile: Blob | undefined;

function show(status: DemoState['status'], message: string): void {
  state.status = status;
  $('status').textContent = message;
}

function fail(e: unknown): void {
  state.error = e instanceof Error ? e.message : String(e);
  show('error', `error: ${state.error}`);
  console.error(e);
}

async function loadModel(file: Blob): Promise<void> {
  state.error = undefined;
  show('loading-model', 'loading the model…');
  const bytes = new Uint8Array(await file.arrayBuffer());
  info = modelInfo(bytes);
  state.modelBytes = bytes.byteLength;
  const t0 = performance.now();
  await session?.release();
  session = await ort.InferenceSession.create(bytes, { executionProviders: [backend], graphOptimizationLevel: 'all' });
  state.sessionMs = performance.now() - t0;
  $('model-info').textContent =
    `${(bytes.byteLength / 1e6).toFixed(1)} MB, ${info.config.MODEL.NUM_CLASSES} classes, host steps: ${info.hostPostprocessors.join(', ') || 'none'}; ` +
    `session ${state.sessionMs.toFixed(0)} ms on ${backend}${backend === 'wasm' ? ` (${threads} thread${threads > 1 ? 's' : ''})` : ''}`;
  show('ready', 'model ready: pick or drop an image');
  if (imageFile) await runImage(imageFile);
}

/** Decoded RGB pixels of an image file, exactly as stored (no colour management, no premultiplication). */
async function decode(file: Blob): Promise<{ rgb: RgbImage; bitmap: ImageBitmap }> {
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const data = new Uint8Array(bitmap.width * bitmap.height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    data[j] = rgba[i]!;
    data[j + 1] = rgba[i + 1]!;
    data[j + 2] = rgba[i + 2]!;
  }
  return { rgb: { data, width: bitmap.width, height: bitmap.height, maxValue: 255 }, bitmap };
}

async function runImage(file: Blob): Promise<void> {
  imageFile = file;
  if (!session || !info) {
    // A failed model load stays on screen; the image runs once a model loads.
    if (state.status !== 'error' && state.status !== 'loading-model') show('idle', 'image ready: now pick an exported model (.onnx)');
    return;
  }
  const s = session;
  const run = async (feeds: Readonly<Record<string, HostTensor>>) => {
    const ortFeeds: Record<string, Ort.Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, [...t.dims]);
    return hostOutputs(await s.run(ortFeeds));
  };
  state.runs = [];
  for (let r = 0; r < runsWanted; r++) {
    show('running', `running${runsWanted > 1 ? ` ${r + 1} / ${runsWanted}` : ''}…`);
    const t0 = performance.now();
    const { rgb, bitmap } = await decode(file);
    const decodeMs = performance.now() - t0;
    const { detections, times } = await detect(run, info, rgb);
    const t1 = performance.now();
    const canvas = $<HTMLCanvasElement>('canvas');
    canvas.width = rgb.width;
    canvas.height = rgb.height;
    const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    ctx.drawImage(bitmap, 0, 0);
    const drawn = drawDetectionsOnCanvas(ctx, detections, rgb.width, rgb.height, { labels: info.labels, minScore });
    const drawMs = performance.now() - t1;
    state.runs.push({ ...times, decode: decodeMs, draw: drawMs, total: performance.now() - t0 });
    state.result = detectionsJson(detections);
    $('summary').textContent = `${detections.scores.length} detections, ${drawn} drawn (score ≥ ${minScore})`;
  }
  renderTimes();
  show('done', 'done');
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function renderTimes(): void {
  const stages = ['decode', 'transform', 'inference', 'postprocess', 'draw', 'total'] as const;
  const rows = stages.map((k) => `<tr><td>${k}</td><td>${median(state.runs.map((r) => r[k])).toFixed(1)} ms</td></tr>`);
  $('times').innerHTML = `<tr><th>stage</th><th>${state.runs.length > 1 ? `median of ${state.runs.length}` : 'time'}</th></tr>${rows.join('')}`;
}

function wire(): void {
  $('env').textContent =
    `backend ${backend}${backend === 'wasm' ? `, ${threads} thread${threads > 1 ? 's' : ''}` : ''}; ` +
    `cross-origin isolated: ${crossOriginIsolated ? 'yes' : 'no (WASM runs one thread)'}; WebGPU: ${hasWebGpu ? 'offered (?backend=webgpu)' : 'not offered'}`;
  $<HTMLInputElement>('model').addEventListener('change', (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) loadModel(f).catch(fail);
  });
  $<HTMLInputElement>('image').addEventListener('change', (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) runImage(f).catch(fail);
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => e.preventDefault());
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    for (const f of Array.from(e.dataTransfer?.files ?? [])) {
      if (f.name.endsWith('.onnx')) loadModel(f).catch(fail);
      else runImage(f).catch(fail);
    }
  });
}

wire();
