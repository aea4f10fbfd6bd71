/**
 * Reading a checkpoint end to end: container -> restricted unpickling -> the state dict inside
 * any wrapper -> host tensors -> torchvision names, with a report of everything that happened.
 * The result plugs into core's `WeightStore.fromSource`, converts to safetensors, and carries the
 * config layers that match its convention and architecture.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import {
  checkOutputFile,
  writeFileAtomicSync,
  type ConfigOverrides,
  type HostTensor,
  type WeightSource,
  WeightStore,
  type WeightStoreOptions,
  writeSafetensors,
} from '@rcnn/core';
import { suggestedConfigLayer, inferredConfigLayer } from './config-layer.js';
import { type LoadedContainer, isTensorRecord, readContainer } from './containers.js';
import { detectFormat } from './detect.js';
import { CheckpointError } from './errors.js';
import { type AnchorGrid, DETECTRON2_RULES, applyDetectron2Transforms, detectron2ExportRules, fillMissingRunningStats } from './maps/detectron2.js';
import { DETECTRON_RULES, addFrozenBnStatistics, detectronExportRules, detectronNormPrefix, foldFrozenBn } from './maps/detectron.js';
import { type MapContext, type NameRule, applyRules } from './maps/rules.js';
import { LEGACY_EPS_CHECKPOINTS, TORCHVISION_RULES } from './maps/torchvision.js';
import type { UnpickleLimits } from './pickle/unpickler.js';
import { PyDict, describe } from './pickle/values.js';
import { type AffineChannelForm, type CheckpointFormat, type CheckpointReport, newReport } from './report.js';

/** Options of {@link readCheckpoint}. */
export interface ReadCheckpointOptions {
  /** Naming convention of the file; `auto` (default) detects it from the keys. */
  readonly from?: 'auto' | CheckpointFormat;
  /** Description of a buffer input for messages (default `<buffer>`; a path input names itself). */
  readonly source?: string;
  /** Detectron AffineChannel output form (default `affine`; see {@link AffineChannelForm}). */
  readonly affineChannel?: AffineChannelForm;
  /** Where Detectron's res5 belongs; `auto` (default): C4 when there is no FPN. */
  readonly layout?: 'auto' | 'fpn' | 'c4';
  /** Detectron2 RPN anchor grid per location when a level has several sizes (default: A/3 sizes x 3 ratios). */
  readonly rpnAnchorGrid?: AnchorGrid;
  /** Unpickler limits (nesting, stack, integer sizes). */
  readonly limits?: Partial<UnpickleLimits>;
}

/** A checkpoint read into torchvision names. */
export interface CheckpointResult {
  /** Tensors by torchvision state-dict name, row-major little-endian (bfloat16 widened to float32). */
  readonly tensors: ReadonlyMap<string, HostTensor>;
  /** The naming convention the file used. */
  readonly format: CheckpointFormat;
  readonly report: CheckpointReport;
  /** Config layer for the convention's semantics ({@link suggestedConfigLayer} with the report's hints). */
  readonly suggestedConfig: ConfigOverrides;
  /** Config layer for the architecture the tensors imply ({@link inferredConfigLayer}). */
  readonly inferredConfig: ConfigOverrides;
}

/** Keys under which checkpoints wrap their state dict, in the order they are tried. */
const WRAPPER_KEYS = ['model', 'state_dict', 'model_state_dict', 'blobs'] as const;

function loadBuffer(input: string | Uint8Array, source: string | undefined): { buffer: Uint8Array; source: string } {
  if (typeof input !== 'string') return { buffer: input, source: source ?? '<buffer>' };
  try {
    // A FIFO or /dev/zero would block or never end: only regular files are read.
    const s = statSync(input);
    if (!s.isFile()) {
      const kind = s.isDirectory() ? 'a directory' : s.isFIFO() ? 'a FIFO' : s.isCharacterDevice() ? 'a character device' : 'not a regular file';
      throw new CheckpointError('io', `cannot read checkpoint ${input}: it is ${kind}, not a regular file`, { file: input, hint: 'give the path of the checkpoint file' });
    }
    const b = readFileSync(input);
    return { buffer: new Uint8Array(b.buffer, b.byteOffset, b.byteLength), source: input };
  } catch (cause) {
    if (cause instanceof CheckpointError) throw cause;
    throw new CheckpointError('io', `cannot read checkpoint ${input}: ${(cause as Error).message}`, { file: input, cause });
  }
}


/** Finds the state dict: the top-level dict, or the one under a wrapper key (Detectron2 `model`, Detectron `blobs`, …). */
function findStateDict(container: LoadedContainer, report: CheckpointReport): PyDict {
  const root = container.root;
  if (!(root instanceof PyDict)) {
    throw new CheckpointError('structure', `${report.source}: the file holds ${describe(root)}, not a dict of tensors (a state dict) or a dict holding one`, {
      file: report.source,
      hint: 'save weights with torch.save(model.state_dict(), path)',
    });
  }
  const holdsTensors = (d: PyDict): boolean => [...d.map.values()].some(isTensorRecord);
  if (holdsTensors(root)) return root;
  for (const key of WRAPPER_KEYS) {
    const inner = root.map.get(key);
    if (inner instanceof PyDict && holdsTensors(inner)) {
      report.stateDictPath = [key];
      const others = [...root.map.keys()].filter((k) => k !== key).map(String);
      if (others.length > 0) report.notes.push(`top-level entries besides "${key}" not loaded: ${others.join(', ')}`);
      return inner;
    }
  }
  throw new CheckpointError(
    'structure',
    `${report.source}: no state dict found: the top-level dict (keys ${[...root.map.keys()].slice(0, 8).map(String).join(', ')}) holds no tensors and none of ${WRAPPER_KEYS.join(', ')} is a dict of tensors`,
    { file: report.source },
  );
}

/** Decodes the state dict's values; non-tensors and unrepresentable arrays are reported as ignored. */
function decodeStateDict(container: LoadedContainer, dict: PyDict, report: CheckpointReport): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, v] of dict.map) {
    if (typeof k !== 'string') {
      report.ignored.push({ key: String(k), reason: `non-string key (${typeof k})` });
      continue;
    }
    const t = container.decode(v, k);
    if (t === undefined) report.ignored.push({ key: k, reason: `not a tensor (${describe(v)})` });
    else if ('unsupported' in t) report.ignored.push({ key: k, reason: t.unsupported });
    else out.set(k, t);
  }
  return out;
}

/** Strips wrappers that prefix every key: `module.` (DataParallel) and Caffe2's `gpu_0/` scope. */
function stripPrefixes(tensors: Map<string, HostTensor>, report: CheckpointReport): Map<string, HostTensor> {
  const keys = [...tensors.keys()];
  if (keys.length > 0 && keys.every((k) => k.startsWith('module.'))) {
    report.notes.push('stripped the "module." prefix of every key (nn.DataParallel / DistributedDataParallel)');
    return new Map([...tensors].map(([k, t]) => [k.slice('module.'.length), t]));
  }
  if (keys.some((k) => /^gpu_\d+\//.test(k))) {
    report.notes.push('stripped Caffe2 "gpu_N/" name scopes');
    const out = new Map<string, HostTensor>();
    for (const [k, t] of tensors) {
      const bare = k.replace(/^gpu_\d+\//, '');
      if (out.has(bare)) {
        report.ignored.push({ key: k, reason: `duplicate of ${bare} from another GPU scope` });
        continue;
      }
      out.set(bare, t);
    }
    return out;
  }
  return tensors;
}

function minStage(keys: readonly string[], re: RegExp): number {
  let min = Infinity;
  for (const k of keys) {
    const m = re.exec(k);
    if (m) min = Math.min(min, Number(m[1]));
  }
  return Number.isFinite(min) ? min : 2;
}

function contextFor(format: CheckpointFormat, keys: readonly string[], layout: ReadCheckpointOptions['layout']): MapContext {
  const has = (re: RegExp): boolean => keys.some((k) => re.test(k));
  switch (format) {
    case 'torchvision':
      return { fpnMinStage: 2, layout: layout && layout !== 'auto' ? layout : has(/^roi_heads\.box_head\.res5\./) ? 'c4' : 'fpn' };
    case 'detectron2':
      return { fpnMinStage: minStage(keys, /^backbone\.fpn_lateral(\d)\./), layout: layout && layout !== 'auto' ? layout : has(/^roi_heads\.res5\./) ? 'c4' : 'fpn' };
    case 'detectron':
      return {
        fpnMinStage: minStage(keys, /^fpn_inner_res(\d)_/),
        layout: layout && layout !== 'auto' ? layout : has(/^fpn_/) || !has(/^res5_/) ? 'fpn' : 'c4',
      };
  }
}

const RULES: Readonly<Record<CheckpointFormat, readonly NameRule[]>> = {
  torchvision: TORCHVISION_RULES,
  detectron2: DETECTRON2_RULES,
  detectron: DETECTRON_RULES,
};

/**
 * Reads a PyTorch (`.pth`, zip or legacy format), Detectron2 / Detectron (`.pkl`) or safetensors
 * checkpoint safely and maps its names to torchvision's. Nothing in the file is executed: pickles
 * go through the restricted unpickler and its allow-list (docs/weights.md). Keys no map knows are
 * kept under their own names and listed in `report.unmapped`.
 */
export function readCheckpoint(input: string | Uint8Array, options: ReadCheckpointOptions = {}): CheckpointResult {
  const { buffer, source } = loadBuffer(input, options.source);
  const container = readContainer(buffer, source, options.limits);
  const report = newReport(source, container.kind);
  report.notes.push(...container.notes);
  const dict = findStateDict(container, report);
  const raw = stripPrefixes(decodeStateDict(container, dict, report), report);
  const keys = [...raw.keys()];
  let format: CheckpointFormat;
  if (options.from && options.from !== 'auto') {
    format = options.from;
    report.formatReason = 'requested';
  } else if (report.stateDictPath[0] === 'blobs') {
    format = 'detectron';
    report.formatReason = 'auto-detected: Detectron "blobs" wrapper';
  } else {
    const detected = detectFormat(keys, source);
    format = detected.format;
    report.formatReason = detected.reason;
  }
  report.format = format;
  const ctx = contextFor(format, keys, options.layout);
  const { tensors, transforms } = applyRules(raw, RULES[format], ctx, report);
  if (format === 'detectron2') {
    applyDetectron2Transforms(tensors, transforms, options.rpnAnchorGrid, report);
    fillMissingRunningStats(tensors, report);
    const mean = raw.get('pixel_mean');
    const std = raw.get('pixel_std');
    // float32 buffers: keep 7 significant digits (103.53, not 103.52999877929688).
    const values = (t: HostTensor): number[] => Array.from(t.data as Float32Array, (x) => Number(Number(x).toPrecision(7)));
    if (mean && mean.data.length === 3 && mean.dtype === 'float32') report.hints.pixelMean = values(mean);
    if (std && std.data.length === 3 && std.dtype === 'float32') report.hints.pixelStd = values(std);
  }
  if (format === 'detectron') {
    const form = options.affineChannel ?? 'affine';
    report.hints.affineChannel = form;
    const affineKeys = report.renamed.filter((r) => /_bn_s$/.test(r.from)).map((r) => r.to);
    if (form === 'frozen-bn') addFrozenBnStatistics(tensors, affineKeys, report);
    else if (affineKeys.length > 0) report.notes.push(`${affineKeys.length} AffineChannel norms loaded as weight (scale) and bias only: build with RESNETS.NORM AffineChannel`);
  }
  if (format !== 'torchvision' || ctx.layout === 'c4') report.hints.layout = ctx.layout;
  if (typeof input === 'string' && LEGACY_EPS_CHECKPOINTS.includes(basename(input))) {
    report.hints.legacyTorchvisionCoco = true;
    report.notes.push(`${basename(input)} is a torchvision COCO_V1 checkpoint: its FrozenBatchNorm2d eps is 0 (torchvision's overwrite_eps), see the suggested config`);
  }
  report.tensorCount = tensors.size;
  return {
    tensors,
    format,
    report,
    suggestedConfig: suggestedConfigLayer(format, report.hints),
    inferredConfig: inferredConfigLayer(tensors),
  };
}

/** A core {@link WeightSource} over a read checkpoint (for `WeightStore.fromSource`). */
export function checkpointWeightSource(result: CheckpointResult, description: string = result.report.source): WeightSource {
  return {
    description,
    keys: () => result.tensors.keys(),
    get: (key) => result.tensors.get(key),
    // The file's convention and architecture travel with the weights (predict applies them under the user's config).
    conventions: { convention: result.format, conventions: result.suggestedConfig, architecture: result.inferredConfig },
  };
}

/** Reads a checkpoint straight into a core {@link WeightStore} (the result is returned too, for its report and config layers). */
export function openCheckpoint(
  input: string | Uint8Array,
  options: ReadCheckpointOptions & WeightStoreOptions = {},
): { store: WeightStore; result: CheckpointResult } {
  const result = readCheckpoint(input, options);
  return { store: WeightStore.fromSource(checkpointWeightSource(result), options), result };
}

/** Options of {@link convertToSafetensors}. */
export interface ConvertOptions extends ReadCheckpointOptions {
  /** Extra `__metadata__` entries. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * Converts a checkpoint to a safetensors file in torchvision names (what `rcnn convert` writes).
 * `__metadata__` records the source, its convention, and the suggested/inferred config layers as JSON.
 */
export function convertToSafetensors(input: string | Uint8Array, options: ConvertOptions = {}): { bytes: Uint8Array; result: CheckpointResult } {
  const result = readCheckpoint(input, options);
  const metadata: Record<string, string> = {
    format: 'pt',
    converted_by: '@rcnn/checkpoint',
    source: typeof input === 'string' ? basename(input) : result.report.source,
    source_format: result.format,
    suggested_config: JSON.stringify(result.suggestedConfig),
    inferred_config: JSON.stringify(result.inferredConfig),
    ...options.metadata,
  };
  return { bytes: writeSafetensors(result.tensors, metadata), result };
}

/** {@link convertToSafetensors} from a file to a file. */
export function convertCheckpointFile(inputPath: string, outputPath: string, options: ConvertOptions = {}): CheckpointResult {
  // Up front (an OutputError naming the output): the output must be writable and must not be the input.
  checkOutputFile(outputPath, { what: 'output', inputs: [{ path: inputPath, what: 'checkpoint' }] });
  const { bytes, result } = convertToSafetensors(inputPath, options);
  // Atomic: a full disk leaves no truncated .safetensors that a later --weights would half-read.
  writeFileAtomicSync(outputPath, bytes);
  return result;
}

/** Options of {@link exportCheckpoint}. */
export interface ExportOptions {
  /** FrozenBatchNorm2d eps folded into Detectron's AffineChannel (default 1e-5, torchvision's). */
  readonly frozenBnEps?: number;
  /** Anchor grid for Detectron2's RPN order when a level has several sizes (default A/3 x 3). */
  readonly rpnAnchorGrid?: AnchorGrid;
}

/**
 * The inverse maps: torchvision-named tensors renamed (and rewritten) for another convention, for
 * tests and tools. Detectron2 loses torchvision's unused background rows of `bbox_pred` and the
 * mask logits; Detectron folds every FrozenBN into AffineChannel (scale, bias), which changes the
 * stored numbers but not the function computed. The report lists both.
 */
export function exportCheckpoint(
  tensors: ReadonlyMap<string, HostTensor>,
  to: CheckpointFormat,
  options: ExportOptions = {},
): { tensors: Map<string, HostTensor>; report: CheckpointReport } {
  const report = newReport('<export>', 'memory');
  report.format = to;
  report.formatReason = 'export';
  const keys = [...tensors.keys()];
  const layout: 'fpn' | 'c4' = keys.some((k) => k.startsWith('roi_heads.box_head.res5.')) || !keys.some((k) => k.startsWith('backbone.fpn.')) ? 'c4' : 'fpn';
  if (to === 'torchvision') {
    report.tensorCount = tensors.size;
    return { tensors: new Map(tensors), report };
  }
  if (to === 'detectron2') {
    const rpnConvs = keys.filter((k) => /^rpn\.head\.conv\.\d+\.0\.weight$/.test(k)).length;
    const { tensors: out, transforms } = applyRules(tensors, detectron2ExportRules({ fpnMinStage: 2, layout, rpnConvs }), { fpnMinStage: 2, layout }, report);
    applyDetectron2Transforms(out, transforms, options.rpnAnchorGrid, report);
    report.tensorCount = out.size;
    return { tensors: out, report };
  }
  // Detectron: fold norms first, then rename the rest.
  const eps = options.frozenBnEps ?? 1e-5;
  const rest = new Map(tensors);
  const folded = new Map<string, HostTensor>();
  for (const key of keys) {
    const m = /^(.*)\.running_var$/.exec(key);
    const c2 = m ? detectronNormPrefix(m[1]!, layout) : undefined;
    if (!m || !c2) continue;
    const parts = ['weight', 'bias', 'running_mean', 'running_var'].map((p) => `${m[1]}.${p}`);
    const [w, b, mean, v] = parts.map((p) => tensors.get(p));
    if (!w || !b || !mean || !v) continue;
    const [s, o] = foldFrozenBn(w, b, mean, v, eps);
    folded.set(`${c2}_bn_s`, s);
    folded.set(`${c2}_bn_b`, o);
    for (const p of parts) rest.delete(p);
    report.transformed.push({ key: `${c2}_bn_s/_bn_b`, note: `FrozenBatchNorm2d ${m[1]} folded into AffineChannel (eps ${eps}); running statistics not stored` });
  }
  for (const k of [...rest.keys()]) if (/(^|\.)num_batches_tracked$/.test(k)) rest.delete(k);
  const stageBlocks = new Map<number, number>();
  for (const k of keys) {
    const m = /^backbone\.body\.layer(\d)\.(\d+)\./.exec(k);
    if (m) stageBlocks.set(Number(m[1]) + 1, Math.max(stageBlocks.get(Number(m[1]) + 1) ?? 0, Number(m[2]) + 1));
  }
  const fpnIdx = keys.map((k) => /^backbone\.fpn\.inner_blocks\.(\d+)\./.exec(k)).filter((m) => m !== null).map((m) => Number(m![1]));
  const ctx = { fpnMinStage: 2, layout, stageBlocks, fpnTopStage: fpnIdx.length > 0 ? Math.max(...fpnIdx) + 2 : 5 };
  const { tensors: renamed } = applyRules(rest, detectronExportRules(ctx), ctx, report);
  const out = new Map([...folded, ...renamed]);
  report.tensorCount = out.size;
  return { tensors: out, report };
}
