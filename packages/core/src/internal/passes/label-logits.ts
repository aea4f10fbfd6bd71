/**
 * Class logits for each detection's label only: `GatherND(Conv1x1(x), labels[:, None],
 * batch_dims=1)` — torchvision's `mask_prob[arange(D), labels]` after `MaskRCNNPredictor`'s
 * `mask_fcn_logits` — computes every class's logits and keeps one. The pass computes only the
 * kept one: row `labels[d]` of the 1x1 conv weight dotted with detection d's features, one
 * batched MatMul [D,1,cin] x [D,cin,h·w] (1/C of the work, no [D,C,M,M] tensor). When x is a
 * DepthToSpace(CRD) of `u` [D, cin·r², h, w] (the upsampling deconv after
 * `deconv-as-depth-to-space`), the r² phases of a channel are contiguous in `u`, so the MatMul
 * reads `u` as [D, cin, r²·h·w] without a copy and one DepthToSpace puts the selected phases in
 * place. Same products, summed over cin by MatMul instead of Conv: within float32 rounding of
 * the unrewritten graph. Applies only where the full logits are not read elsewhere (a build
 * that outputs the `roi.mask_logits` tap keeps the plain form).
 */
import type { AttributeValue } from '../../graph/builder.js';
import { type GraphPass, type PassGraph, type PassNode, allInts, intAttribute, int64Vector, makeNode } from './pass.js';

/** `(opType, inputs, attributes)` → fresh output name; the nodes are collected in order. */
type Emit = (opType: string, inputs: readonly string[], attributes?: Readonly<Record<string, AttributeValue>>, outputs?: number) => string[];

function isPlain1x1(graph: PassGraph, conv: PassNode): boolean {
  const weight = graph.initializer(conv.inputs[1]);
  if (conv.opType !== 'Conv' || conv.domain !== '' || !weight || weight.dtype !== 'float32' || weight.dims.length !== 4) return false;
  if (weight.dims[2] !== 1 || weight.dims[3] !== 1 || (conv.inputs[2] && !graph.initializer(conv.inputs[2]))) return false;
  return allInts(conv, 'strides', 1) && allInts(conv, 'pads', 0) && allInts(conv, 'dilations', 1) && intAttribute(conv, 'group', 1) === 1 && !conv.attributes.has('auto_pad');
}

function rewrite(graph: PassGraph): number {
  let count = 0;
  for (const gather of [...graph.nodes]) {
    if (gather.opType !== 'GatherND' || gather.domain !== '' || intAttribute(gather, 'batch_dims', 0) !== 1) continue;
    const logits = gather.inputs[0]!;
    const conv = graph.producer(logits);
    if (!conv || !isPlain1x1(graph, conv) || graph.soleConsumer(logits) !== gather) continue;
    // Indices [D, 1]: one class per detection (an Unsqueeze of the labels at axis 1).
    const unsqueeze = graph.producer(gather.inputs[1]!);
    const axes = unsqueeze?.opType === 'Unsqueeze' ? graph.initializer(unsqueeze.inputs[1]) : undefined;
    if (!unsqueeze || !axes || axes.data.length !== 1 || Number(axes.data[0]) !== 1) continue;

    const weight = graph.initializer(conv.inputs[1])!;
    const [classes, cin] = weight.dims as [number, number];
    const x = conv.inputs[0]!;
    const shuffle = graph.producer(x);
    const phased = shuffle?.opType === 'DepthToSpace' && shuffle.attributes.get('mode')?.kind === 'string' && (shuffle.attributes.get('mode') as { value: string }).value === 'CRD';
    const r = phased ? intAttribute(shuffle!, 'blocksize', 1) : 1;
    const up = phased ? shuffle!.inputs[0]! : x;

    const nodes: PassNode[] = [];
    const emit: Emit = (opType, inputs, attributes = {}, outputs = 1) => {
      const names = Array.from({ length: outputs }, () => graph.fresh(`${gather.outputs[0]}/${opType.toLowerCase()}`));
      nodes.push(makeNode(graph.fresh(`${gather.name}/${opType.toLowerCase()}`), opType, inputs, names, attributes));
      return names;
    };
    const constant = (values: readonly number[]) => graph.addInitializer(`${gather.name}/const`, int64Vector(values));

    const w2d = graph.addInitializer(`${conv.name}/weight_2d`, { dtype: 'float32', dims: [classes, cin], data: weight.data });
    const [d] = emit('Shape', [up], { start: { kind: 'int', value: 0 }, end: { kind: 'int', value: 1 } });
    // Exactly D rows: indices with more than one entry per detection fail here instead of broadcasting.
    const [rows] = emit('Reshape', [gather.inputs[1]!, d!], { allowzero: { kind: 'int', value: 1 } });
    const [w] = emit('Gather', [w2d, rows!], { axis: { kind: 'int', value: 0 } }); // [D, cin]
    const [hw] = emit('Shape', [up], { start: { kind: 'int', value: 2 }, end: { kind: 'int', value: 4 } });
    const [h, wd] = emit('Split', [hw!, constant([1, 1])], { axis: { kind: 'int', value: 0 } }, 2);
    const [size] = emit('Mul', [emit('Mul', [h!, wd!])[0]!, constant([r * r])]);
    // Explicit sizes: with D = 0 a -1 in the target shape is ambiguous.
    const [features] = emit('Reshape', [up, emit('Concat', [d!, constant([cin]), size!], { axis: { kind: 'int', value: 0 } })[0]!], { allowzero: { kind: 'int', value: 1 } });
    let [dotted] = emit('MatMul', [emit('Unsqueeze', [w!, constant([1])])[0]!, features!]); // [D, 1, r²·h·w]
    if (conv.inputs[2]) {
      const [b] = emit('Reshape', [emit('Gather', [conv.inputs[2], rows!], { axis: { kind: 'int', value: 0 } })[0]!, constant([-1, 1, 1])]);
      [dotted] = emit('Add', [dotted!, b!]);
    }
    const [perPhase] = emit('Reshape', [dotted!, emit('Concat', [d!, constant([r * r]), hw!], { axis: { kind: 'int', value: 0 } })[0]!], { allowzero: { kind: 'int', value: 1 } });
    const selected = r > 1 ? emit('DepthToSpace', [perPhase!], { blocksize: { kind: 'int', value: r }, mode: { kind: 'string', value: 'CRD' } })[0]! : perPhase!;
    nodes.push(makeNode(graph.fresh(`${gather.name}/squeeze`), 'Squeeze', [selected, constant([1])], [gather.outputs[0]!]));
    graph.remove(conv);
    graph.replace(gather, nodes);
    if (phased && graph.consumers(x).length === 0 && !graph.isPinned(x)) graph.remove(shuffle!);
    count += 1;
  }
  return count;
}

/** The pass (see module doc). */
export const LABEL_ONLY_LOGITS: GraphPass = { name: 'label-only-logits', apply: rewrite };
