/**
 * Benchmark (not a test): a full R-50-FPN features-only net with seeded random weights, on CPU
 * with 2 intra-op threads, for one 800x1066 image (the net sees the batch padded to 800x1088).
 * Prints the median time per image after a warm-up, the FLOPs of the forward counted from the
 * conv shapes (2 * Cin/groups * k * k * Cout * Hout * Wout per conv) and the resulting GFLOP/s.
 *
 *   nice node build/bench/features-net.js [--runs 3] [--threads 2] [--profile]
 *
 * With --profile, one extra run is profiled by ORT and the time per op type is printed.
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { register as registerBackbone } from '@rcnn/backbone';
import { type GraphBuilder, WeightStore, buildFeaturesNet, createContainer, loadConfig, ops } from '@rcnn/core';
import ort from 'onnxruntime-node';
import { register } from '../src/index.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    profile: { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs);
const THREADS = Number(args.threads);
const IMAGE = { height: 800, width: 1066 };
const SIZE_DIVISIBILITY = 32;
const INPUT = [1, 3, Math.ceil(IMAGE.height / SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY, Math.ceil(IMAGE.width / SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY];

const sessionOptions = (extra: ort.InferenceSession.SessionOptions = {}): ort.InferenceSession.SessionOptions => ({
  executionProviders: ['cpu'],
  intraOpNumThreads: THREADS,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  ...extra,
});

/** Declares the shape of every Conv output as an extra graph output, to count FLOPs from one run. */
function addConvShapeProbes(g: GraphBuilder): { output: string; weightDims: readonly number[] }[] {
  const probes: { output: string; weightDims: readonly number[] }[] = [];
  for (const node of [...g.listNodes()]) {
    if (node.opType !== 'Conv') continue;
    const weight = g.initializerOf({ name: node.inputs[1]! });
    if (!weight) throw new Error(`conv ${node.name} has a non-constant weight`);
    const output = `probe.${probes.length}`;
    g.output(ops.shape(g, { name: node.outputs[0]! }, undefined, undefined, 'probe_shape'), output, 'int64');
    probes.push({ output, weightDims: weight.dims });
  }
  return probes;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const container = createContainer();
  registerBackbone(container);
  register(container);
  const config = loadConfig({ layers: [{ MODEL: { CONV_BODY: 'R-50-FPN' } }] });
  let t = performance.now();
  const net = buildFeaturesNet(config, container, WeightStore.random(0));
  const model = net.toBytes();
  const stats = net.graph.stats();
  console.log(`R-50-FPN features-only net: ${stats.nodes} nodes, ${(stats.parameters / 1e6).toFixed(2)} M parameters, built in ${(performance.now() - t).toFixed(0)} ms`);

  const n = INPUT.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.001) * 2;
  const feeds = { images: new ort.Tensor('float32', data, INPUT) };

  t = performance.now();
  const session = await ort.InferenceSession.create(model, sessionOptions());
  console.log(`session created in ${(performance.now() - t).toFixed(0)} ms; input [${INPUT.join(', ')}] (${IMAGE.height}x${IMAGE.width} image padded to /${SIZE_DIVISIBILITY}), ${THREADS} intra-op threads`);
  const times: number[] = [];
  let maxAbs = 0;
  for (let r = 0; r <= RUNS; r++) {
    t = performance.now();
    const out = await session.run(feeds);
    const ms = performance.now() - t;
    if (r === 0) {
      for (const v of Object.values(out)) for (const x of v.data as Float32Array) maxAbs = Math.max(maxAbs, Math.abs(x));
      console.log(`warm-up ${ms.toFixed(0)} ms; outputs ${net.levels.map((l) => `${l.name} [${out[l.output]!.dims.join('x')}]`).join(', ')}; max |feature| ${maxAbs.toExponential(2)}`);
    } else {
      times.push(ms);
    }
  }

  if (args.profile) {
    const profiled = await ort.InferenceSession.create(model, sessionOptions({ enableProfiling: true, profileFilePrefix: '/tmp/rcnn-fpn-bench' }));
    await profiled.run(feeds);
    profiled.endProfiling();
    await profiled.release();
    // endProfiling() writes the file but does not return its name in onnxruntime-node: find it.
    const file = readdirSync('/tmp').filter((f) => f.startsWith('rcnn-fpn-bench')).map((f) => `/tmp/${f}`).sort().pop();
    if (file) {
      const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; dur: number; args?: { op_name?: string } }[];
      const byOp = new Map<string, number>();
      let total = 0;
      for (const e of events) {
        if (e.cat !== 'Node' || !e.args?.op_name) continue;
        byOp.set(e.args.op_name, (byOp.get(e.args.op_name) ?? 0) + e.dur);
        total += e.dur;
      }
      console.log('profile (op type: ms, share of node time):');
      for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) console.log(`  ${op.padEnd(20)} ${(us / 1000).toFixed(1).padStart(8)} ms ${((100 * us) / total).toFixed(2).padStart(6)}%`);
      rmSync(file);
    }
  }

  // FLOPs from the conv shapes of one probe run (a separate model: the timed one is untouched).
  const probes = addConvShapeProbes(net.graph);
  const probeSession = await ort.InferenceSession.create(net.graph.toModelProto(), sessionOptions());
  const shapes = await probeSession.run(feeds, probes.map((p) => p.output));
  await probeSession.release();
  let flops = 0;
  for (const p of probes) {
    const [, cout, hout, wout] = Array.from(shapes[p.output]!.data as BigInt64Array, Number) as [unknown, number, number, number];
    const [, cinPerGroup, kh, kw] = p.weightDims as [unknown, number, number, number];
    flops += 2 * cinPerGroup * kh * kw * cout * hout * wout;
  }
  const ms = median(times);
  console.log(`convs: ${probes.length}; FLOPs per image: ${(flops / 1e9).toFixed(1)} GFLOP`);
  console.log(`time per image: median ${ms.toFixed(0)} ms of ${RUNS} runs (${times.map((x) => x.toFixed(0)).join(', ')} ms) -> ${(flops / 1e9 / (ms / 1000)).toFixed(1)} GFLOP/s`);
  await session.release();
}

await main();
