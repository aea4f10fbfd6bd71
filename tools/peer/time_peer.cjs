#!/usr/bin/env node
// Time the peer of one perf case: CASE/peer.onnx (the case's torchvision model exported by
// `bench_torchvision.py --perf-case`) in onnxruntime-node on CPU, fed CASE/input.f32 (image_0.png / 255).
// One process is one measurement, so an outer tool can alternate it with another command:
//
//   node tools/peer/time_peer.cjs .data/perf/maskrcnn_r50fpn [--runs 3] [--threads 2] [--check] [--tol 1e-3]
//
// stdout: one JSON line {create_ms, first_ms, runs_ms, median_ms, ...}: InferenceSession.create, the first
// run (not part of runs_ms), then --runs more runs and their median (null when --runs 0). Session options
// intraOpNumThreads = --threads, interOpNumThreads 1, sequential, graph optimisation 'all'.
// --check compares the first run's outputs with CASE/reference.safetensors (torchvision eager, same weights,
// same input): exit status 1 unless the detection count and labels are equal and det.boxes / det.scores are
// within --tol; masks / keypoints differences are reported, not judged.
// onnxruntime-node comes from $ORT_NODE_DIR (a node_modules folder or the package folder itself), else
// /tmp/peer/node_modules, else Node's own resolution (e.g. NODE_PATH).
'use strict';
const fs = require('fs');
const path = require('path');
const { performance } = require('perf_hooks');

function usage(msg) {
  if (msg) console.error(`time_peer.cjs: ${msg}`);
  console.error('usage: node time_peer.cjs <caseDir> [--runs N] [--threads N] [--check] [--tol X]');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { caseDir: null, runs: 3, threads: 2, check: false, tol: 1e-3 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const num = (name, int) => {
      const v = int ? Number.parseInt(argv[++i], 10) : Number.parseFloat(argv[++i]);
      if (!Number.isFinite(v) || v < 0) usage(`${name} needs a non-negative number`);
      return v;
    };
    if (k === '--runs') a.runs = num(k, true);
    else if (k === '--threads') a.threads = num(k, true);
    else if (k === '--tol') a.tol = num(k, false);
    else if (k === '--check') a.check = true;
    else if (k.startsWith('-')) usage(`unknown option ${k}`);
    else if (a.caseDir === null) a.caseDir = k;
    else usage(`unexpected argument ${k}`);
  }
  if (a.caseDir === null) usage('missing <caseDir>');
  if (a.threads < 1) usage('--threads must be >= 1');
  return a;
}

function loadOrt() {
  const candidates = [];
  const env = process.env.ORT_NODE_DIR;
  if (env) candidates.push(path.resolve(env, 'onnxruntime-node'), path.resolve(env));
  else candidates.push('/tmp/peer/node_modules/onnxruntime-node');
  for (const dir of candidates) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj) && JSON.parse(fs.readFileSync(pj, 'utf8')).name === 'onnxruntime-node') {
      return require(dir);
    }
  }
  if (env) throw new Error(`ORT_NODE_DIR=${env}: no onnxruntime-node package there or in its onnxruntime-node/`);
  return require('onnxruntime-node');
}

// Float32Array over a file's bytes (copied when the Buffer is not 4-byte aligned)
function readF32(file) {
  const buf = fs.readFileSync(file);
  const bytes = buf.byteOffset % 4 === 0 ? buf : Buffer.from(buf);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

// minimal safetensors reader (format: tools/parity/README.md); decodes only the tensors asked for
function readSafetensors(file, names) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.toString('utf8', 8, 8 + n));
  const types = { F32: Float32Array, I64: BigInt64Array, U8: Uint8Array };
  const out = {};
  for (const name of names) {
    const info = header[name];
    if (!info) throw new Error(`${file}: no tensor ${name}`);
    const T = types[info.dtype];
    const [a, b] = info.data_offsets;
    const bytes = new Uint8Array(buf.subarray(8 + n + a, 8 + n + b)); // aligned copy
    out[name] = { shape: info.shape, data: new T(bytes.buffer, 0, (b - a) / T.BYTES_PER_ELEMENT) };
  }
  return out;
}

function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(b[i])));
  return m;
}

function median(xs) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((p, q) => p - q);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

const ms = (t) => +t.toFixed(1);

// first run's outputs vs reference.safetensors; output order of torchvision's exported detectors:
// boxes, labels, scores, then masks, or keypoints and keypoints_scores
function check(caseDir, caseJson, names, out, tol) {
  const kind = caseJson.model.kind;
  const want = ['det.boxes.0', 'det.scores.0', 'det.labels.0'];
  if (kind === 'maskrcnn') want.push('det.masks.0');
  if (kind === 'keypointrcnn') want.push('det.keypoints.0', 'det.keypoints_scores.0');
  const ref = readSafetensors(path.join(caseDir, caseJson.reference.file), want);
  const boxes = out[names[0]].data;
  const labels = out[names[1]].data;
  const scores = out[names[2]].data;
  const res = { tol, detections: { reference: ref['det.scores.0'].data.length, peer: scores.length } };
  if (res.detections.reference !== res.detections.peer) {
    res.pass = false;
    return res;
  }
  res.labels_equal = maxAbsDiff(labels, ref['det.labels.0'].data) === 0;
  res.max_abs_diff_boxes = maxAbsDiff(boxes, ref['det.boxes.0'].data);
  res.max_abs_diff_scores = maxAbsDiff(scores, ref['det.scores.0'].data);
  if (kind === 'maskrcnn') {
    const m = out[names[3]].data;
    const r = ref['det.masks.0'].data;
    let diff = 0;
    for (let i = 0; i < m.length; i++) if ((m[i] > 0.5 ? 1 : 0) !== r[i]) diff++;
    res.mask_pixels_differing = diff;
    res.mask_pixels_total = r.length;
  }
  if (kind === 'keypointrcnn') {
    res.max_abs_diff_keypoints = maxAbsDiff(out[names[3]].data, ref['det.keypoints.0'].data);
    res.max_abs_diff_keypoints_scores = maxAbsDiff(out[names[4]].data, ref['det.keypoints_scores.0'].data);
  }
  res.pass = res.labels_equal && res.max_abs_diff_boxes <= tol && res.max_abs_diff_scores <= tol;
  return res;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const caseJson = JSON.parse(fs.readFileSync(path.join(a.caseDir, 'case.json'), 'utf8'));
  if (caseJson.images.length !== 1) throw new Error(`${a.caseDir}: expected one image`);
  const { height: H, width: W } = caseJson.images[0];
  const inputPath = path.join(a.caseDir, 'input.f32');
  const data = readF32(inputPath);
  if (data.length !== 3 * H * W) throw new Error(`${inputPath}: ${data.length} floats, expected 3x${H}x${W}`);
  const modelPath = path.join(a.caseDir, 'peer.onnx');
  if (!fs.existsSync(modelPath)) throw new Error(`${modelPath} missing (run tools/peer/make_perf_cases.sh)`);

  const ort = loadOrt();
  const opts = {
    executionProviders: ['cpu'],
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
  let t0 = performance.now();
  const session = await ort.InferenceSession.create(modelPath, opts);
  const createMs = performance.now() - t0;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [3, H, W]) };

  t0 = performance.now();
  const first = await session.run(feeds);
  const firstMs = performance.now() - t0;
  const runs = [];
  for (let i = 0; i < a.runs; i++) {
    t0 = performance.now();
    await session.run(feeds);
    runs.push(performance.now() - t0);
  }
  const names = session.outputNames;
  const res = {
    create_ms: ms(createMs),
    first_ms: ms(firstMs),
    runs_ms: runs.map(ms),
    median_ms: runs.length ? ms(median(runs)) : null,
    case: caseJson.name,
    threads: a.threads,
    detections: first[names[2]].dims[0],
    ort: ort.env.versions ? ort.env.versions.node || ort.env.versions.common : undefined,
  };
  if (a.check) {
    res.check = check(a.caseDir, caseJson, names, first, a.tol);
    if (!res.check.pass) process.exitCode = 1;
  }
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
