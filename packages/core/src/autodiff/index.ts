/**
 * Reverse-mode gradients of rcnn-node graphs, emitted as standard ONNX (opset 17) nodes that any
 * onnxruntime runs: onnxruntime-node has no training API, so the backward is part of the graph.
 *
 * - {@link buildGradients}`(graph, { loss, wrt })` appends the backward of `loss` with respect to
 *   the `wrt` blobs and returns one gradient blob per wrt blob (`gradients.of(blob)`). Only nodes on
 *   a path from a wrt blob to the loss are differentiated.
 * - Per-operator rules live in one registry: {@link registerGradientRule}`(opType, rule)` (a
 *   plugin adds the rule of its own operator), {@link registerNonDifferentiable}.
 * - `graph.stopGradient(blob)` is Detectron's StopGradient.
 * - Trainable parameters are graph inputs named by their torchvision key (one session for every
 *   step; frozen weights stay initializers): {@link trainableParameters} (config → trainable keys),
 *   `weights.setTrainable(keys)` before the build, {@link exposeTrainableParameters} after it,
 *   {@link addParameterGradients} for the `grad.<key>` outputs.
 *
 * @example
 * ```ts
 * const weights = WeightStore.fromSafetensors('weights.safetensors');
 * weights.setTrainable(trainableParameters(config, weights.keys()));
 * const model = buildModel(config, container, weights);
 * const g = model.graph;
 * const loss = ...;                                        // a scalar blob built on g (the losses)
 * const parameters = exposeTrainableParameters(g, weights); // inputs named 'rpn.head.conv.0.0.weight', …
 * addParameterGradients(g, { loss, parameters });           // outputs 'grad.rpn.head.conv.0.0.weight', …
 * // Feed every parameter by its key at each step (values from weights / the optimiser).
 * ```
 * @module
 */
export {
  type GradientContext,
  type GradientDataType,
  type GradientRule,
  type SlotSelector,
  NON_DIFFERENTIABLE,
  gradientRuleFor,
  knownGradientOps,
  registerGradientRule,
  registerNonDifferentiable,
} from './registry.js';
export { type GradientOptions, type Gradients, buildGradients, reduceToShapeOf, zerosLike } from './gradients.js';
export { NON_DIFFERENTIABLE_OPS, installBuiltinGradientRules } from '../internal/autodiff-rules/index.js';
export {
  GRADIENT_OUTPUT_PREFIX,
  type ParameterGradientOptions,
  type ParameterInput,
  addParameterGradients,
  exposeTrainableParameters,
  gradientOutputName,
  trainableConfigLayer,
  trainableParameters,
} from './trainable.js';
