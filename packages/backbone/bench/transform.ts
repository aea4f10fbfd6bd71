/**
 * Benchmark (not a test) behind the choice of where the image transform runs: on the host in
 * TypeScript (GeneralizedRCNNTransform) or in the ONNX graph (Cast/Sub/Div + ORT Resize + Pad).
 * Times one 480x640 8-bit image → 800x1066 (padded 800x1088) for each option, then measures each
 * option's parity against the fixtures' `transform.images`.
 *
 *   nice node build/bench/transform.js [--runs 15]
 */
import { parseArgs } from 'node:util';
import { type HostTensor, type RcnnConfig, type RgbImage, GraphBuilder, loadConfig, ops } from '@rcnn/core';
import { PUBLIC_CASES, compareDense, loadParityCase, publicCaseDir } from '@rcnn/testing';
import ort from 'onnxruntime-node';
import { GeneralizedRCNNTransform, padToMultiple, resizedSize } from '../src/index.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
const RUNS = Number(args.runs);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The in-graph alternative: HWC uint8 pixels → /255 → (x - mean) / std → ORT Resize (linear,
 * pytorch_half_pixel, sizes from the host) → zero Pad bottom/right (pads from the host).
 */
function graphTransform(config: RcnnConfig): Uint8Array {
  const g = new GraphBuilder({ name: 'transform' });
  const pixels = g.input('pixels', 'uint8', ['H', 'W', 3]);
  const sizes = g.input('sizes', 'int64', [4]);
  const pads = g.input('pads', 'int64', [8]);
  const { PIXEL_MEANS, PIXEL_STDS, PIXEL_RANGE } = config.INPUT;
  let x = ops.div(g, ops.cast(g, pixels, 'float32'), g.constFloat32(255 / PIXEL_RANGE));
  x = ops.transpose(g, x, [2, 0, 1]);
  x = ops.div(g, ops.sub(g, x, g.constFloat32([...PIXEL_MEANS], [3, 1, 1])), g.constFloat32([...PIXEL_STDS], [3, 1, 1]));
  x = ops.unsqueeze(g, x, [0]);
  x = ops.resize(g, x, sizes, { mode: 'linear', coordinateTransformationMode: 'pytorch_half_pixel' });
  x = g.op('Pad', [x, pads], { mode: 'constant' }, 'pad');
  g.output(x, 'images', 'float32');
  return g.toModelProto();
}

/** Feeds of the in-graph option for one image padded to (padH, padW). */
function graphFeeds(image: RgbImage, config: RcnnConfig, padH: number, padW: number): Record<string, ort.Tensor> {
  const size = resizedSize(image.height, image.width, config);
  return {
    pixels: new ort.Tensor('uint8', image.data as Uint8Array, [image.height, image.width, 3]),
    sizes: new ort.Tensor('int64', BigInt64Array.from([1, 3, size.height, size.width], BigInt), [4]),
    pads: new ort.Tensor('int64', BigInt64Array.from([0, 0, 0, 0, 0, 0, padH - size.height, padW - size.width], BigInt), [8]),
  };
}

async function session(model: Uint8Array, threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
}

async function timeIt(fn: () => unknown): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

async function main(): Promise<void> {
  const config = loadConfig();
  const transform = new GeneralizedRCNNTransform();
  const [h, w] = [480, 640];
  const data = new Uint8Array(h * w * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const image: RgbImage = { data, width: w, height: h, maxValue: 255 };
  const size = resizedSize(h, w, config);
  const [padH, padW] = [padToMultiple(size.height, 32), padToMultiple(size.width, 32)];
  console.log(`${h}x${w} uint8 -> ${size.height}x${size.width}, padded ${padH}x${padW}; median of ${RUNS} runs after a warm-up`);
  console.log(`  host TypeScript (1 thread):          ${(await timeIt(() => transform.prepare([image], config))).toFixed(1)} ms`);
  const model = graphTransform(config);
  for (const threads of [1, 2]) {
    const s = await session(model, threads);
    console.log(`  ORT graph, ${threads} intra-op thread(s):       ${(await timeIt(() => s.run(graphFeeds(image, config, padH, padW)))).toFixed(1)} ms (session.run incl. output copy to JS)`);
    await s.release();
  }

  console.log('parity vs transform.images (tolerance 1e-4 * max(1, max|ref|)):');
  const s = await session(model, 1);
  for (const name of PUBLIC_CASES) {
    const parity = loadParityCase(publicCaseDir(name), { unmappedHeads: 'omit' });
    const caseConfig = loadConfig({ layers: [parity.configLayer] });
    const images = await parity.images();
    const ref = parity.reference('transform.images');
    const host = compareDense('host', transform.prepare(images, caseConfig).images, ref);
    const [n, c, ph, pw] = ref.dims as [number, number, number, number];
    const batch = new Float32Array(n * c * ph * pw);
    for (let i = 0; i < n; i++) {
      const out = await s.run(graphFeeds(images[i]!, caseConfig, ph, pw));
      batch.set(out.images!.data as Float32Array, i * c * ph * pw);
    }
    const graphImages: HostTensor<'float32'> = { dtype: 'float32', dims: ref.dims, data: batch };
    const graph = compareDense('graph', graphImages, ref);
    console.log(`  ${name.padEnd(26)} host ${host.detail}\n  ${''.padEnd(26)} ORT  ${graph.detail}`);
  }
  await s.release();
}

await main();
