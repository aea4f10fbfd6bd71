/**
 * Trainable parameters: which state-dict keys train (TRAIN.FREEZE_CONV_BODY, TRAIN.TRAINABLE_BACKBONE_LAYERS),
 * how they become graph inputs (fed at every step, so one onnxruntime session serves all steps,
 * while frozen weights stay initializers), and the `grad.<key>` outputs of their gradients.
 */
import type { ConfigOverrides, RcnnConfig } from '../config/config.js';
import { ConfigError, GraphError } from '../errors.js';
import type { Blob, GraphBuilder } from '../graph/builder.js';
import type { WeightStore } from '../weights/store.js';
import { type Gradients, buildGradients } from './gradients.js';
import type { GradientDataType } from './registry.js';

/** Prefix of the graph output holding the gradient of a trainable parameter: `grad.<state-dict key>`. */
export const GRADIENT_OUTPUT_PREFIX = 'grad.';

/** Name of the graph output holding the gradient of parameter `key`. */
export const gradientOutputName = (key: string): string => `${GRADIENT_OUTPUT_PREFIX}${key}`;

/** torchvision's ResNet stages in the order `trainable_backbone_layers` counts them from the end. */
const BACKBONE_STAGES = ['conv1', 'layer1', 'layer2', 'layer3', 'layer4'] as const;
/** State-dict prefix of the ResNet body (torchvision `_resnet_fpn_extractor`). */
const BODY_PREFIX = 'backbone.body.';
/** State-dict prefix of the whole conv body (ResNet and FPN), what TRAIN.FREEZE_CONV_BODY freezes. */
const CONV_BODY_PREFIX = 'backbone.';

/** Buffers that are never parameters. */
const BUFFER_SUFFIXES = ['.running_mean', '.running_var', '.num_batches_tracked'];

/**
 * Whether `key` belongs to a frozen norm (FrozenBatchNorm2d's weight/bias are buffers): its
 * prefix also holds a `running_mean` in `names`, or (random weights, no names) it is a torchvision
 * ResNet norm by name (`bn1`, `downsample.1`).
 */
function isFrozenNorm(key: string, names: ReadonlySet<string>): boolean {
  if (BUFFER_SUFFIXES.some((s) => key.endsWith(s))) return true;
  const prefix = key.slice(0, key.lastIndexOf('.'));
  if (names.has(`${prefix}.running_mean`)) return true;
  return key.startsWith(BODY_PREFIX) && /(^|\.)(bn\d+|downsample\.1)$/.test(prefix);
}

/**
 * The trainable subset of `names` (torchvision state-dict keys) under `config`, as torchvision
 * decides `requires_grad`:
 * - `TRAIN.FREEZE_CONV_BODY` (Detectron): nothing under `backbone.` trains (ResNet and FPN);
 * - else `TRAIN.TRAINABLE_BACKBONE_LAYERS` k (torchvision `trainable_backbone_layers`,
 *   Detectron2 `FREEZE_AT` = 5 − k): ResNet parameters train only under the last k of
 *   conv1, layer1 … layer4 (k = 3: conv1 and layer1 frozen); the FPN trains;
 * - frozen norms (FrozenBatchNorm2d weight, bias, running statistics) never train;
 * - every other parameter (RPN, RoI heads) trains.
 * Returned in the order of `names`.
 */
export function trainableParameters(config: RcnnConfig, names: Iterable<string>): string[] {
  const all = [...names];
  const set = new Set(all);
  const k = config.TRAIN.TRAINABLE_BACKBONE_LAYERS;
  if (!Number.isInteger(k) || k < 0 || k > BACKBONE_STAGES.length) {
    throw new ConfigError(`TRAIN.TRAINABLE_BACKBONE_LAYERS is ${k}, expected an integer in [0, ${BACKBONE_STAGES.length}]`, {
      key: 'TRAIN.TRAINABLE_BACKBONE_LAYERS',
    });
  }
  const trainingStages = BACKBONE_STAGES.slice(BACKBONE_STAGES.length - k);
  return all.filter((key) => {
    if (isFrozenNorm(key, set)) return false;
    if (key.startsWith(CONV_BODY_PREFIX) && config.TRAIN.FREEZE_CONV_BODY) return false;
    if (key.startsWith(BODY_PREFIX)) {
      const local = key.slice(BODY_PREFIX.length);
      return trainingStages.some((stage) => local === stage || local.startsWith(`${stage}.`));
    }
    return true;
  });
}

/**
 * The TRAIN.* freezing keys of a training case (`case.json` `train.trainable`: rule
 * `frozen_conv_body`, or `trainable_backbone_layers` with its k), as a config layer.
 */
export function trainableConfigLayer(caseDocument: unknown, source = 'case.json'): ConfigOverrides {
  const trainable = (
    caseDocument as {
      train?: {
        trainable?: { rule?: unknown; trainable_backbone_layers?: unknown };
      };
    } | null
  )?.train?.trainable;
  if (!trainable) throw new ConfigError(`${source} has no train.trainable section (not a training case)`, { key: 'train.trainable' });
  if (trainable.rule === 'frozen_conv_body') return { TRAIN: { FREEZE_CONV_BODY: true } };
  if (trainable.rule === 'trainable_backbone_layers' && typeof trainable.trainable_backbone_layers === 'number') {
    return {
      TRAIN: {
        FREEZE_CONV_BODY: false,
        TRAINABLE_BACKBONE_LAYERS: trainable.trainable_backbone_layers,
      },
    };
  }
  throw new ConfigError(`${source}: train.trainable.rule ${JSON.stringify(trainable.rule)} is unknown (known: frozen_conv_body, trainable_backbone_layers)`, {
    key: 'train.trainable.rule',
  });
}

/** A trainable parameter as a graph input. */
export interface ParameterInput {
  /** State-dict key, also the graph input's name. */
  readonly key: string;
  /** The graph input. */
  readonly input: Blob;
  readonly dims: readonly number[];
}

/**
 * Turns every initializer of `graph` that holds a trainable weight of `weights` (declared with
 * {@link WeightStore.setTrainable}, traced by {@link WeightStore.keyOfData}) into a graph input
 * named by its state-dict key. Frozen weights stay initializers. Fails, naming the keys, when a
 * trainable key was read by the build but no initializer holds it unchanged (a stage folded or
 * transformed it: such a stage must keep trainable weights separate, see docs/training.md).
 */
export function exposeTrainableParameters(graph: GraphBuilder, weights: WeightStore): ParameterInput[] {
  const found = new Map<string, ParameterInput>();
  for (const [name, tensor] of graph.listInitializers()) {
    if (!(tensor.data instanceof Float32Array)) continue;
    const key = weights.keyOfData(tensor.data);
    if (key === undefined || !weights.isTrainable(key)) continue;
    const first = found.get(key);
    if (first) {
      // The same parameter read by two parts of the graph (the training graph's proposal pass and
      // its RPN losses): one input, used twice; the backward sums both uses' gradients.
      graph.aliasInitializerToInput({ name }, first.input);
      continue;
    }
    const input = graph.promoteInitializerToInput({ name }, key);
    found.set(key, { key, input, dims: tensor.dims });
  }
  const lost = [...weights.usedKeys()].filter((k) => weights.isTrainable(k) && !found.has(k));
  if (lost.length > 0) {
    throw new GraphError(`trainable parameter(s) not held unchanged by any initializer (folded or transformed by their stage): ${lost.join(', ')}`, {
      hint: 'the stage must keep a trainable weight as its own initializer when weights.isTrainable(key) (docs/training.md), or freeze it',
    });
  }
  return [...found.values()];
}

/** Options of {@link addParameterGradients}. */
export interface ParameterGradientOptions {
  /** Scalar loss blob. */
  readonly loss: Blob;
  /** The trainable parameter inputs ({@link exposeTrainableParameters}). */
  readonly parameters: readonly ParameterInput[];
  readonly dtype?: GradientDataType;
}

/**
 * Builds the gradient of `loss` with respect to every parameter and declares each as the graph
 * output `grad.<key>` (float32, the parameter's dims). Returns the gradients built.
 */
export function addParameterGradients(graph: GraphBuilder, options: ParameterGradientOptions): Gradients {
  const gradients = buildGradients(graph, {
    loss: options.loss,
    wrt: options.parameters.map((p) => p.input),
    dtype: options.dtype,
  });
  for (const p of options.parameters) graph.output(gradients.of(p.input), gradientOutputName(p.key), options.dtype ?? 'float32', p.dims);
  return gradients;
}
