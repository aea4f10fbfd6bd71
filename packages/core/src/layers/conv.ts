/**
 * The parameterised layers of a head, by torchvision module key (Detectron2's `layers/`): a head is
 * a list of these calls, each reading `<key>.weight` / `<key>.bias` with the exact shape.
 */
import type { Blob } from '../graph/builder.js';
import * as ops from '../graph/onnx-ops.js';
import type { BuildContext } from '../model/contracts.js';
import type { RandomInit } from '../weights/store.js';
import { HE_INIT, type ParameterSpec, ZERO_INIT, aliasKeys, parameter } from './weights.js';

/** Activation after a layer (torchvision puts `nn.ReLU` after most head layers). */
export type Activation = 'relu' | 'none';

/** What every parameterised layer shares. */
export interface LayerSpec {
  /** Module key (torchvision state-dict name without `.weight`): `roi_heads.box_head.fc6`. */
  readonly key: string;
  /** Legacy module keys of the same layer (`roi_heads.mask_head.mask_fcn1`), tried when `key` is absent. */
  readonly aliases?: readonly string[];
  /** Random init of the weight (default He normal). */
  readonly weightInit?: RandomInit;
  /** Random init of the bias (default zero). */
  readonly biasInit?: RandomInit;
  /** Activation after the layer (default none). */
  readonly activation?: Activation;
  /** Graph scope of the layer's nodes and initializers (default: the key's last segment). */
  readonly name?: string;
}

/** A `nn.Conv2d`. */
export interface Conv2dSpec extends LayerSpec {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: number;
  readonly stride?: number;
  /** Symmetric padding (default `dilation * (kernel - 1) / 2`: "same" for odd kernels at stride 1). */
  readonly pad?: number;
  readonly dilation?: number;
  readonly groups?: number;
  /** Whether the layer has `<key>.bias` (default true). */
  readonly bias?: boolean;
}

/** A `nn.Linear` (`in_features` → `out_features`). */
export interface LinearSpec extends LayerSpec {
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** A `nn.ConvTranspose2d` (weight layout [in, out, k, k], also ONNX's). */
export interface ConvTransposeSpec extends LayerSpec {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernel: number;
  readonly stride: number;
  readonly pad?: number;
  readonly outputPadding?: number;
}

/** Scope name of a layer. */
export function layerName(spec: Pick<LayerSpec, 'key' | 'name'>): string {
  return spec.name ?? spec.key.slice(spec.key.lastIndexOf('.') + 1);
}

/** `<key>.<tensor>` as a {@link ParameterSpec} with the layer's aliases. */
export function layerParameter(spec: LayerSpec, tensor: string, shape: readonly number[], init: RandomInit): ParameterSpec {
  return { key: `${spec.key}.${tensor}`, shape, init, aliases: aliasKeys(spec.aliases, tensor) };
}

/** The weight shape of a conv: [out, in / groups, k, k]; fails on channels that do not split into the groups. */
export function conv2dWeightShape(spec: Conv2dSpec): number[] {
  const groups = spec.groups ?? 1;
  if (spec.inChannels % groups !== 0 || spec.outChannels % groups !== 0) {
    throw new RangeError(`${spec.key}: ${spec.inChannels} -> ${spec.outChannels} channels do not split into ${groups} groups`);
  }
  return [spec.outChannels, spec.inChannels / groups, spec.kernel, spec.kernel];
}

/** The tensors {@link conv2d} reads. */
export function conv2dParameters(spec: Conv2dSpec): ParameterSpec[] {
  const weight = layerParameter(spec, 'weight', conv2dWeightShape(spec), spec.weightInit ?? HE_INIT);
  return spec.bias === false ? [weight] : [weight, layerParameter(spec, 'bias', [spec.outChannels], spec.biasInit ?? ZERO_INIT)];
}

/** The tensors {@link linear} reads. */
export function linearParameters(spec: LinearSpec): ParameterSpec[] {
  return [
    layerParameter(spec, 'weight', [spec.outFeatures, spec.inFeatures], spec.weightInit ?? HE_INIT),
    layerParameter(spec, 'bias', [spec.outFeatures], spec.biasInit ?? ZERO_INIT),
  ];
}

/** The tensors {@link convTranspose} reads. */
export function convTransposeParameters(spec: ConvTransposeSpec): ParameterSpec[] {
  return [
    layerParameter(spec, 'weight', [spec.inChannels, spec.outChannels, spec.kernel, spec.kernel], spec.weightInit ?? HE_INIT),
    layerParameter(spec, 'bias', [spec.outChannels], spec.biasInit ?? ZERO_INIT),
  ];
}

/** Applies `activation` to `y`. */
export function activate(ctx: Pick<BuildContext, 'graph'>, y: Blob, activation: Activation | undefined): Blob {
  return activation === 'relu' ? ops.relu(ctx.graph, y) : y;
}

/** Conv2d options of `spec` for `ops.conv`. */
export function conv2dOptions(spec: Conv2dSpec): ops.ConvOptions {
  const dilation = spec.dilation ?? 1;
  return { kernel: spec.kernel, stride: spec.stride ?? 1, pad: spec.pad ?? (dilation * (spec.kernel - 1)) / 2, dilation, group: spec.groups ?? 1 };
}

/** `nn.Conv2d` (+ activation) on `x` [N, in, H, W] → [N, out, H', W']. */
export function conv2d(ctx: BuildContext, x: Blob, spec: Conv2dSpec): Blob {
  const g = ctx.graph;
  return g.withScope(layerName(spec), () => {
    const [weight, bias] = conv2dParameters(spec).map((p) => parameter(ctx, p));
    return activate(ctx, ops.conv(g, x, weight!, bias ?? null, conv2dOptions(spec)), spec.activation);
  });
}

/** `nn.Linear` (+ activation) on `x` [R, in] → [R, out]: Gemm with transB reads the [out, in] state-dict layout as is. */
export function linear(ctx: BuildContext, x: Blob, spec: LinearSpec): Blob {
  const g = ctx.graph;
  return g.withScope(layerName(spec), () => {
    const [weight, bias] = linearParameters(spec).map((p) => parameter(ctx, p));
    return activate(ctx, ops.gemm(g, x, weight!, bias!, { transB: true, name: 'fc' }), spec.activation);
  });
}

/** `nn.ConvTranspose2d` (+ activation) on `x` [N, in, H, W]. */
export function convTranspose(ctx: BuildContext, x: Blob, spec: ConvTransposeSpec): Blob {
  const g = ctx.graph;
  return g.withScope(layerName(spec), () => {
    const [weight, bias] = convTransposeParameters(spec).map((p) => parameter(ctx, p));
    const y = ops.convTranspose(g, x, weight!, bias!, { kernel: spec.kernel, stride: spec.stride, pad: spec.pad ?? 0, outputPadding: spec.outputPadding ?? 0 });
    return activate(ctx, y, spec.activation);
  });
}
