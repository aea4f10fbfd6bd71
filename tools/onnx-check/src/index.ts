/**
 * Portability checks of the models rcnn-node serialises: every variant of a parity fixture's
 * export (detection, with intermediates, float16, RPN-only, features-only) through the ONNX
 * project's own checker (Debian `python3-onnx`), and a second runtime (onnxruntime-web's WASM
 * backend) against onnxruntime-node on the same inputs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type HostTensor, buildFeaturesNet } from '@rcnn/core';
import { BUILT_IN_PACKAGES } from '@rcnn/parity-tools';
import { createDetector, exportModel, resolveModelSources } from '@rcnn/runtime';
import { type ParityCase, decodeRgb } from '@rcnn/testing';

/** One serialised model of a fixture. */
export interface ExportVariant {
  /** `<case>/<variant>`, e.g. `maskrcnn_tiny/float16`. */
  readonly name: string;
  readonly variant: 'detection' | 'intermediates' | 'float16' | 'rpn-only' | 'features';
  readonly bytes: Uint8Array;
  /** Outputs as the export declares them. */
  readonly outputs: readonly { readonly name: string; readonly dims: readonly (number | string)[] }[];
}

/** Every kind of model rcnn-node serialises, built from a parity case's config and weights. */
export async function fixtureExports(c: ParityCase): Promise<ExportVariant[]> {
  const config = join(c.dir, 'case.json');
  const weights = join(c.dir, 'weights.safetensors');
  const base = { config, weights, register: BUILT_IN_PACKAGES };
  const variants: ExportVariant[] = [];
  const add = async (variant: ExportVariant['variant'], options: Parameters<typeof exportModel>[0]): Promise<void> => {
    const m = await exportModel(options);
    variants.push({ name: `${c.name}/${variant}`, variant, bytes: m.bytes, outputs: m.outputs });
  };
  await add('detection', base);
  await add('intermediates', { ...base, intermediates: true });
  await add('float16', { ...base, precision: 'float16' });
  await add('rpn-only', { ...base, set: ['MODEL.RPN_ONLY=true', 'MODEL.MASK_ON=false', 'MODEL.KEYPOINTS_ON=false'] });
  const sources = await resolveModelSources(base);
  const features = buildFeaturesNet(sources.resolved.config, sources.container, sources.weights);
  variants.push({
    name: `${c.name}/features`,
    variant: 'features',
    bytes: features.toBytes(),
    outputs: features.graph.declaredOutputs.map((o) => ({ name: o.name, dims: [...(o.dims ?? [])] })),
  });
  return variants;
}

/** The Python with the `onnx` package (Debian's python3-onnx lives in the system Python). */
export const ONNX_PYTHON = process.env.RCNN_ONNX_PYTHON ?? '/usr/bin/python3';

/** check_onnx.py, shipped next to this package's build. */
export const CHECK_SCRIPT = join(fileURLToPath(new URL('../..', import.meta.url)), 'check_onnx.py');

/** An output as the checker script lists it (`dims` null: no shape declared; a null dim: unknown). */
export interface CheckedOutput {
  /** Node path of the subgraph (`[]` for the main graph). */
  readonly graph: readonly string[];
  readonly name: string;
  readonly elem_type: number | null;
  readonly dims: readonly (number | string | null)[] | null;
}

/** What check_onnx.py reports for one file. */
export interface CheckerReport {
  readonly file: string;
  readonly onnx: string;
  /** `ok`, or the checker's error. */
  readonly checker: string;
  /** `ok`, or strict shape inference's error. */
  readonly inference: string;
  readonly outputs: readonly CheckedOutput[];
}

/** Whether the ONNX Python package can be imported. */
export function onnxPythonAvailable(): boolean {
  if (!existsSync(ONNX_PYTHON)) return false;
  return spawnSync(ONNX_PYTHON, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
}

/** Runs check_onnx.py on model files (one Python process for all). */
export function runOnnxChecker(files: readonly string[]): CheckerReport[] {
  const r = spawnSync(ONNX_PYTHON, [CHECK_SCRIPT, ...files], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${ONNX_PYTHON} ${CHECK_SCRIPT} failed (exit ${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as CheckerReport);
}

/** Problems of one report: checker / inference errors and outputs without element type or shape. */
export function checkerProblems(report: CheckerReport): string[] {
  const problems: string[] = [];
  if (report.checker !== 'ok') problems.push(`checker: ${report.checker}`);
  if (report.inference !== 'ok') problems.push(`strict shape inference: ${report.inference}`);
  for (const o of report.outputs) {
    const where = o.graph.length === 0 ? 'graph' : `subgraph ${o.graph.join(' > ')}`;
    if (!o.elem_type) problems.push(`${where} output ${o.name}: no element type`);
    if (o.dims === null) problems.push(`${where} output ${o.name}: no shape`);
  }
  return problems;
}

/** The graph inputs of a parity case, made by the runtime's image transform (the case's config). */
export async function fixtureFeeds(c: ParityCase): Promise<Record<string, HostTensor>> {
  const detector = await createDetector({ config: join(c.dir, 'case.json'), weights: join(c.dir, 'weights.safetensors'), register: BUILT_IN_PACKAGES, devices: 'cpu', threads: { intraOp: 1, interOp: 1 } });
  try {
    const images = await Promise.all(c.imagePaths.map((p) => decodeRgb(p)));
    const batch = detector.prepare(images);
    return { images: batch.images, image_sizes: batch.imageSizes, original_sizes: batch.originalSizes };
  } finally {
    await detector.close();
  }
}

/** A tensor as onnxruntime-web returns it (element type, dims, data). */
interface WebTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

/**
 * Runs a model once in onnxruntime-web's WASM backend (under Node: the WASM files come from the
 * npm package) with `threads` threads; returns every output as a host tensor.
 */
export async function runModelWeb(model: Uint8Array, feeds: Readonly<Record<string, HostTensor>>, threads = 1): Promise<Map<string, HostTensor>> {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = threads;
  const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  try {
    const webFeeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const [k, t] of Object.entries(feeds)) webFeeds[k] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, [...t.dims]);
    const out = await session.run(webFeeds);
    const result = new Map<string, HostTensor>();
    for (const [k, v] of Object.entries(out) as [string, WebTensorLike][]) {
      if (!['float32', 'int64', 'int32', 'uint8', 'bool'].includes(v.type)) throw new Error(`onnxruntime-web output ${k}: unsupported type ${v.type}`);
      result.set(k, { dtype: v.type, dims: [...v.dims], data: v.data } as HostTensor);
    }
    return result;
  } finally {
    await session.release();
  }
}

/** How far one runtime's output is from another's. */
export interface OutputDifference {
  readonly name: string;
  /** Same dims and element type. */
  readonly sameShape: boolean;
  /** max |a - b| over elements (equal values, infinities included, count 0; NaN against anything else is Infinity). */
  readonly maxAbs: number;
  /** The parity dense tolerance for this reference: relTol * max(1, max finite |reference|). */
  readonly tolerance: number;
}

/**
 * Compares an output with a reference by the parity harness's dense rule (integers exactly:
 * tolerance 0). Padding scores are -inf in both runtimes, which a plain |a - b| would call NaN.
 */
export function outputDifference(name: string, actual: HostTensor, reference: HostTensor, relTol = 1e-4): OutputDifference {
  const sameShape = actual.dtype === reference.dtype && actual.dims.join(',') === reference.dims.join(',');
  if (!sameShape) return { name, sameShape, maxAbs: Infinity, tolerance: 0 };
  const num = (t: HostTensor): ArrayLike<number> => (t.dtype === 'int64' ? Array.from(t.data as BigInt64Array, Number) : (t.data as ArrayLike<number>));
  const a = num(actual);
  const r = num(reference);
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < r.length; i++) {
    if (Number.isFinite(r[i])) maxRef = Math.max(maxRef, Math.abs(r[i]!));
    if (a[i] === r[i]) continue;
    const d = Math.abs(a[i]! - r[i]!);
    maxAbs = Math.max(maxAbs, Number.isNaN(d) ? Infinity : d);
  }
  const integer = reference.dtype !== 'float32' && reference.dtype !== 'float16' && reference.dtype !== 'float64';
  return { name, sameShape, maxAbs, tolerance: integer ? 0 : relTol * Math.max(1, maxRef) };
}
