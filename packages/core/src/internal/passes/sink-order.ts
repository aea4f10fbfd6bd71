/**
 * Sinks in backward order: onnxruntime's default execution order is a depth-first walk up from the
 * graph's sinks, highest node index first, after its optimizer has removed the `Identity` nodes that
 * give outputs their names (the node before one becomes the sink). A training graph's sinks are its
 * parameter gradients, and the backward writes them heads first, body last, so the body's last one
 * has the highest index: the walk first runs the whole data-gradient chain down to layer2 and only
 * then each weight gradient, keeping every conv's output gradient (and the activation it is paired
 * with) alive across the body's backward. The pass moves each sink (with the node it renames, when
 * nothing else reads that node) to the end of the list, in the reverse of the order the backward
 * computed them, so the walk starts from the gradient the backward can give first and runs each
 * weight gradient as soon as its inputs exist. Same values: only the order of the node list changes.
 */
import type { GraphPass, PassGraph, PassNode } from './pass.js';

function orderSinks(graph: PassGraph): number {
  const readers = graph.consumerIndex();
  const readCount = (name: string): number => readers.get(name)?.length ?? 0;
  const unread = (n: PassNode): boolean => n.outputs.every((o) => readCount(o) === 0);
  const groups: PassNode[][] = [];
  const moved = new Set<PassNode>();
  for (const sink of graph.nodes) {
    if (!unread(sink) || sink.outputs.length === 0) continue;
    const group = [sink];
    if (sink.opType === 'Identity' && sink.domain === '' && sink.inputs.length === 1) {
      const renamed = graph.producer(sink.inputs[0]!);
      if (renamed && renamed.outputs.every((o) => readCount(o) === 1 && !graph.isPinned(o))) group.unshift(renamed);
    }
    groups.push(group);
    group.forEach((n) => moved.add(n));
  }
  if (groups.length < 2) return 0;
  // The backward's order is where each gradient was computed: the renamed node's position, not the
  // rename's (the renames are written together, in parameter order, at the end of the graph).
  const position = new Map(graph.nodes.map((n, i) => [n, i]));
  groups.sort((a, b) => position.get(b[0]!)! - position.get(a[0]!)!);
  graph.nodes = [...graph.nodes.filter((n) => !moved.has(n)), ...groups.flat()];
  return groups.length;
}

/** The pass (see the module comment). */
export const SINKS_IN_BACKWARD_ORDER: GraphPass = { name: 'sinks-in-backward-order', apply: orderSinks };
