/**
 * Shapes read early: a value that the backward reads only for its shape (the unbroadcast of a
 * residual `Add`'s gradient, RoiAlign's scatter into zeros of the feature map's shape, …) no longer
 * stays alive until the backward reaches that read.
 *
 * onnxruntime runs a node when its default execution order (a depth-first walk up from the
 * graph's sinks) first needs it, so a `Shape(x)` read by the backward runs in the backward, and
 * the allocation planner keeps all of `x` — 27 MB for a layer2 block's conv3 output, 53 MB for an
 * FPN level-2 map at 800 px — alive until then. The pass reads the shape once, right where `x` is
 * made, and ties it to `x`'s other readers: `s = Shape(x)`, `x' = Reshape(x, s)` (a Reshape to its
 * own shape, which onnxruntime runs as an alias of `x`: no copy), every other reader of `x` reads
 * `x'`, and each `Shape` of `x` becomes `s` (or a `Slice` of it for a `start` / `end`). The walk then
 * needs `s` as soon as it needs `x'`, i.e. in the forward, and `x` is freed after its last real
 * reader. Same values: only where the shape is read changes.
 */
import { type GraphPass, type PassGraph, type PassNode, int64Vector, intAttribute, makeNode } from './pass.js';

/** The largest int64 (Slice's "to the end"). */
const INT64_MAX = 9223372036854775807n;

function readShapesEarly(graph: PassGraph): number {
  const nodes = graph.nodes;
  const readers = graph.consumerIndex();
  const after = new Map<PassNode, PassNode[]>();
  const replaced = new Map<PassNode, PassNode>();
  const rewired = new Map<PassNode, PassNode>();
  let count = 0;
  for (const producer of nodes) {
    for (const x of producer.outputs) {
      // Direct readers only: a subgraph that reads `x` keeps reading it (its body is not rewired).
      const list = (readers.get(x) ?? []).filter((n) => n.inputs.includes(x));
      const isShape = (n: PassNode): boolean => n.opType === 'Shape' && n.domain === '';
      const shapes = list.filter(isShape);
      const others = list.filter((n) => !isShape(n));
      if (shapes.length === 0 || others.length === 0) continue;
      const shape = graph.fresh(`${x}/shape`);
      const alias = graph.fresh(`${x}/with_shape`);
      after.set(producer, [
        ...(after.get(producer) ?? []),
        makeNode(graph.fresh(`${producer.name}/shape`), 'Shape', [x], [shape]),
        makeNode(graph.fresh(`${producer.name}/with_shape`), 'Reshape', [x, shape], [alias]),
      ]);
      for (const reader of others) {
        const current = rewired.get(reader) ?? reader;
        rewired.set(reader, { ...current, inputs: current.inputs.map((i) => (i === x ? alias : i)) });
      }
      for (const s of shapes) {
        const start = intAttribute(s, 'start', 0);
        const end = s.attributes.get('end');
        if (start === 0 && end === undefined) {
          replaced.set(s, makeNode(s.name, 'Identity', [shape], s.outputs));
          continue;
        }
        const starts = graph.addInitializer(`${s.name}/starts`, int64Vector([start]));
        const ends = graph.addInitializer(`${s.name}/ends`, {
          dtype: 'int64',
          dims: [1],
          data: BigInt64Array.of(end?.kind === 'int' ? BigInt(end.value) : INT64_MAX),
        });
        replaced.set(s, makeNode(s.name, 'Slice', [shape, starts, ends], s.outputs));
      }
      count += 1;
    }
  }
  if (count === 0) return 0;
  const result: PassNode[] = [];
  for (const n of nodes) {
    result.push(replaced.get(n) ?? rewired.get(n) ?? n);
    result.push(...(after.get(n) ?? []));
  }
  graph.nodes = result;
  return count;
}

/** The pass (see the module comment). */
export const SHAPES_READ_EARLY: GraphPass = { name: 'shapes-read-early', apply: readShapesEarly };
