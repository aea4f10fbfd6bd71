/**
 * Row gathers sink past row-wise layers: `f(Gather(x, idx, axis=0)) = Gather(f(x), idx, axis=0)`
 * for any `f` that maps each row on its own (Flatten at axis 1, Gemm with constant weights, ReLU).
 * The multi-level RoI pooler pools level by level and puts the rows back in the RoIs' order with
 * such a gather; a head of fully connected layers (torchvision's `TwoMLPHead`) then runs on the
 * level-grouped rows and only its [R, 1024] output is reordered instead of the [R, 256, 7, 7]
 * features. Each row is computed exactly as before: bit-identical.
 *
 * The gather must be a row gather: 1-D indices, which the pass proves from how they are made
 * (Range, Shape slices of one entry, ConstantOfShape / ScatterND over those, Concat / Gather /
 * Cast of vectors).
 */
import { type GraphPass, type PassGraph, type PassNode, intAttribute, intsAttribute, makeNode } from './pass.js';

/** Whether `name` is provably a 1-D tensor; `length1` asks for exactly one entry. */
function isVector(graph: PassGraph, name: string, length1 = false, depth = 0): boolean {
  const init = graph.initializer(name);
  if (init) return init.dims.length === 1 && (!length1 || init.dims[0] === 1);
  const p = graph.producer(name);
  if (!p || depth > 16 || p.domain !== '') return false;
  const next = (n: string | undefined, one = false): boolean => n !== undefined && n !== '' && isVector(graph, n, one, depth + 1);
  switch (p.opType) {
    case 'Shape': {
      const start = intAttribute(p, 'start', 0);
      const end = p.attributes.get('end');
      return !length1 || (end?.kind === 'int' && end.value - start === 1 && start >= 0);
    }
    case 'Range':
      return !length1;
    case 'ConstantOfShape':
      return next(p.inputs[0], true) && !length1;
    case 'ScatterND':
    case 'Cast':
      return next(p.inputs[0], length1);
    case 'Concat':
      return !length1 && p.inputs.every((i) => next(i));
    case 'Gather':
      return intAttribute(p, 'axis', 0) === 0 && next(p.inputs[0]) && next(p.inputs[1], length1);
    default:
      return false;
  }
}

/** Whether `node` maps each row of its first input on its own. */
function isRowWise(graph: PassGraph, node: PassNode, input: string): boolean {
  if (node.domain !== '' || node.inputs[0] !== input || node.inputs.slice(1).includes(input)) return false;
  switch (node.opType) {
    case 'Relu':
    case 'Sigmoid':
      return true;
    case 'Flatten':
      return intAttribute(node, 'axis', 1) === 1;
    case 'Gemm':
      return intAttribute(node, 'transA', 0) === 0 && graph.initializer(node.inputs[1]) !== undefined && (node.inputs[2] === undefined || node.inputs[2] === '' || graph.initializer(node.inputs[2])?.dims.length === 1);
    default:
      return false;
  }
}

function rewrite(graph: PassGraph): number {
  let count = 0;
  for (const gather of [...graph.nodes]) {
    if (gather.opType !== 'Gather' || gather.domain !== '' || intAttribute(gather, 'axis', 0) !== 0 || intsAttribute(gather, 'axis') !== undefined) continue;
    if (!isVector(graph, gather.inputs[1]!)) continue;
    // The longest chain of row-wise nodes, each the sole reader of the previous output.
    const chain: PassNode[] = [];
    let blob = gather.outputs[0]!;
    for (;;) {
      const next = graph.soleConsumer(blob);
      if (!next || !isRowWise(graph, next, blob)) break;
      chain.push(next);
      blob = next.outputs[0]!;
    }
    if (chain.length === 0) continue;
    // Rewire: the chain reads the gathered data directly; a gather writes the chain's last output.
    const last = chain[chain.length - 1]!;
    const lastOut = last.outputs[0]!;
    const grouped = graph.fresh(`${lastOut}/grouped`);
    let input = gather.inputs[0]!;
    chain.forEach((n) => {
      const out = n === last ? grouped : n.outputs[0]!;
      graph.replace(n, [makeNode(n.name, n.opType, [input, ...n.inputs.slice(1)], [out], Object.fromEntries(n.attributes))]);
      input = out;
    });
    graph.remove(gather);
    const lastIndex = graph.nodes.findIndex((n) => n.outputs.includes(grouped));
    graph.nodes.splice(lastIndex + 1, 0, makeNode(gather.name, 'Gather', [grouped, gather.inputs[1]!], [lastOut], { axis: { kind: 'int', value: 0 } }));
    count += 1;
  }
  return count;
}

/** The pass (see module doc). */
export const SINK_ROW_GATHER: GraphPass = { name: 'sink-row-gather', apply: rewrite };
