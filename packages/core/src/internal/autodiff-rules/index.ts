/**
 * The built-in gradient rules, installed into the registry on first use of the gradient builder.
 * A rule a plugin registered before that is kept (built-ins never replace a registered rule).
 */
import { type GradientRule, NON_DIFFERENTIABLE, gradientRuleFor, registerGradientRule } from '../../autodiff/registry.js';
import { installElementwiseRules } from './elementwise.js';
import { installNnRules } from './nn.js';
import { installRoiAlignRule } from './roi-align.js';
import { installShapeRules } from './shape.js';

/**
 * Operators whose outputs never carry a gradient: shape arithmetic, index and mask computations,
 * comparisons, rounding (zero derivative almost everywhere), NMS and control flow (rcnn-node's If
 * subgraphs are post-processing of detached detections).
 */
export const NON_DIFFERENTIABLE_OPS: readonly string[] = [
  'Shape',
  'Size',
  'Constant',
  'ConstantOfShape',
  'Range',
  'NonZero',
  'NonMaxSuppression',
  'EyeLike',
  'Equal',
  'Greater',
  'GreaterOrEqual',
  'Less',
  'LessOrEqual',
  'And',
  'Or',
  'Xor',
  'Not',
  'IsNaN',
  'IsInf',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'ArgMax',
  'ArgMin',
  'If',
  'Loop',
  'RandomNormal',
  'RandomNormalLike',
  'RandomUniform',
  'RandomUniformLike',
  'Multinomial',
  'Bernoulli',
];

let installed = false;

/** Installs the built-in rules once (idempotent); rules registered earlier by a plugin are kept. */
export function installBuiltinGradientRules(): void {
  if (installed) return;
  installed = true;
  const keepRegistered = (opType: string, rule: GradientRule): void => {
    if (!gradientRuleFor(opType)) registerGradientRule(opType, rule);
  };
  for (const op of NON_DIFFERENTIABLE_OPS) keepRegistered(op, NON_DIFFERENTIABLE);
  installElementwiseRules(keepRegistered);
  installShapeRules(keepRegistered);
  installNnRules(keepRegistered);
  installRoiAlignRule(keepRegistered);
}
