/** The graph passes run at serialisation (`GraphBuilder.toModelProto`), in this order. */
import type { HostTensor } from '../../graph/dtypes.js';
import { DECONV_AS_DEPTH_TO_SPACE } from './deconv-depth-to-space.js';
import { LABEL_ONLY_LOGITS } from './label-logits.js';
import { type GraphPass, PassGraph, type PassNode } from './pass.js';
import { SINK_ROW_GATHER } from './row-gather.js';
import { SHAPES_READ_EARLY } from './shape-early.js';
import { SINKS_IN_BACKWARD_ORDER } from './sink-order.js';

export { type GraphPass, PassGraph, type PassNode } from './pass.js';
export { DECONV_AS_DEPTH_TO_SPACE, deconvAsConvWeights } from './deconv-depth-to-space.js';
export { LABEL_ONLY_LOGITS } from './label-logits.js';
export { SINK_ROW_GATHER } from './row-gather.js';
export { SHAPES_READ_EARLY } from './shape-early.js';
export { SINKS_IN_BACKWARD_ORDER } from './sink-order.js';

/**
 * The inference passes: transposed convs with kernel = stride as 1x1 conv + DepthToSpace, then
 * label-only class logits (which reads the pre-shuffle features the first pass exposes), then row
 * gathers sunk past fully connected layers.
 */
export const INFERENCE_PASSES: readonly GraphPass[] = [DECONV_AS_DEPTH_TO_SPACE, LABEL_ONLY_LOGITS, SINK_ROW_GATHER];

/**
 * The training passes, both for the step's peak memory (same values): shapes the backward reads
 * taken right where their value is made, so forward activations are freed after their last real
 * reader; then the gradient outputs ordered so onnxruntime runs each weight gradient as soon as
 * its inputs exist instead of after the whole data-gradient chain.
 */
export const TRAINING_PASSES: readonly GraphPass[] = [SHAPES_READ_EARLY, SINKS_IN_BACKWARD_ORDER];

/** Runs `passes` over `nodes`; returns the new node list, the initializers they added and the matches per pass. */
export function runGraphPasses(
  nodes: readonly PassNode[],
  initializers: ReadonlyMap<string, HostTensor>,
  pinned: ReadonlySet<string>,
  passes: readonly GraphPass[] = INFERENCE_PASSES,
): { readonly nodes: PassNode[]; readonly added: ReadonlyMap<string, HostTensor>; readonly matches: Readonly<Record<string, number>> } {
  const graph = new PassGraph(nodes, initializers, pinned);
  const matches: Record<string, number> = {};
  for (const pass of passes) matches[pass.name] = pass.apply(graph);
  return { nodes: graph.nodes, added: graph.added, matches };
}
