/**
 * The assembled model as one self-contained ONNX file (weights inline), for serving elsewhere
 * (e.g. NVIDIA Triton's onnxruntime backend; docs/serving.md). Inputs: `images` [N,3,H,W] float32,
 * `image_sizes` [N,2] int64, `original_sizes` [N,2] int64 — made by the image transform on the
 * client; outputs: the `det.*` tensors flattened over the batch (or `rpn.*` for RPN-only models).
 */
import { type BuiltModel, type DataType, type RcnnConfig, buildModel, checkModelMemory } from '@rcnn/core';
import { validateExportOptions } from './options.js';
import type { ModelLabels } from './categories.js';
import { type ModelSourceOptions, resolveModelSources } from './setup.js';

/** Options of {@link exportModel}. */
export interface ExportOptions extends ModelSourceOptions {
  /** Also export every tapped intermediate as an output. */
  readonly intermediates?: boolean;
  /** Precision of the conv stages (core's `BuildOptions.precision`; `float16` for GPUs). */
  readonly precision?: 'float32' | 'float16';
}

/** A declared input or output of the exported model. */
export interface ExportedValue {
  readonly name: string;
  readonly dtype: DataType;
  /** As declared in the model: sizes, and names (`N`, `H`, `D`, …) for run-time sizes. */
  readonly dims: readonly (number | string)[];
}

/** An exported model. */
export interface ExportedModel {
  /** ModelProto bytes (opset 17), config in the `rcnn.config` metadata. */
  readonly bytes: Uint8Array;
  readonly config: RcnnConfig;
  readonly labels: ModelLabels;
  readonly kind: BuiltModel['kind'];
  readonly inputs: readonly ExportedValue[];
  readonly outputs: readonly ExportedValue[];
  readonly weights: BuiltModel['weights'];
  readonly resolved: BuiltModel['resolved'];
  /** Host post-processors a client must apply (mask pasting, keypoint decoding). */
  readonly hostPostprocessors: readonly string[];
}

/** Builds the model (no replica scope) and serialises it. */
export async function exportModel(options: ExportOptions = {}): Promise<ExportedModel> {
  validateExportOptions(options);
  const { container, resolved, labels, weights } = await resolveModelSources(options ?? {});
  checkModelMemory(resolved.config);
  const built = buildModel(resolved.config, container, weights, { intermediates: options.intermediates ?? false, precision: options.precision ?? 'float32' });
  const bytes = built.toBytes();
  return {
    bytes,
    config: resolved.config,
    labels,
    kind: built.kind,
    // What the serialised graph declares (the ONNX checker and Triton see the same).
    inputs: built.graph.declaredInputs.map((i) => ({ name: i.name, dtype: i.dtype, dims: [...(i.dims ?? [])] })),
    outputs: [...built.outputs, ...built.taps].map((o) => ({ name: o.name, dtype: o.dtype, dims: [...o.dims] })),
    weights: built.weights,
    resolved: built.resolved,
    hostPostprocessors: built.hostPostprocessors,
  };
}
