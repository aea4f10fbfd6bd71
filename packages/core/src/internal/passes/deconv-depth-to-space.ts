/**
 * ConvTranspose with kernel = stride = r (no padding, no overlap) → 1x1 Conv to C_out·r² channels
 * + DepthToSpace (CRD). With no overlap between the r x r output blocks of neighbouring pixels,
 * output (co, h·r+i, w·r+j) = b[co] + Σ_ci x[ci,h,w]·W[ci,co,i,j], which is channel co·r²+i·r+j of
 * the 1x1 conv with W'[co·r²+i·r+j, ci] = W[ci,co,i,j]: the same sum. onnxruntime runs that conv
 * (and a ReLU after it, moved before the shuffle: element-wise ops commute with it) in its blocked
 * NCHWc kernels, much faster than its ConvTranspose (the mask predictor's `conv5_mask`,
 * docs/performance.md).
 */
import { type GraphPass, type PassGraph, allInts, intAttribute, intsAttribute, makeNode } from './pass.js';

/** Rearranges a ConvTranspose weight [cin, cout, r, r] and bias [cout] into 1x1 conv weights [cout·r², cin, 1, 1] and bias [cout·r²]. */
export function deconvAsConvWeights(w: Float32Array, b: Float32Array | undefined, cin: number, cout: number, r: number): { weight: Float32Array; bias: Float32Array } {
  const rr = r * r;
  const weight = new Float32Array(cout * rr * cin);
  const bias = new Float32Array(cout * rr);
  for (let ci = 0; ci < cin; ci++) {
    for (let co = 0; co < cout; co++) {
      for (let k = 0; k < rr; k++) weight[(co * rr + k) * cin + ci] = w[(ci * cout + co) * rr + k]!;
    }
  }
  if (b) for (let co = 0; co < cout; co++) bias.fill(b[co]!, co * rr, (co + 1) * rr);
  return { weight, bias };
}

function rewrite(graph: PassGraph): number {
  let count = 0;
  for (const node of [...graph.nodes]) {
    if (node.opType !== 'ConvTranspose' || node.domain !== '') continue;
    const weight = graph.initializer(node.inputs[1]);
    const biasName = node.inputs[2];
    const bias = graph.initializer(biasName);
    if (!weight || weight.dtype !== 'float32' || weight.dims.length !== 4 || (biasName && !bias)) continue;
    const [cin, cout, kh, kw] = weight.dims as [number, number, number, number];
    const strides = intsAttribute(node, 'strides');
    if (kh !== kw || !strides || strides.some((s) => s !== kh)) continue;
    if (!allInts(node, 'pads', 0) || !allInts(node, 'output_padding', 0) || !allInts(node, 'dilations', 1) || intAttribute(node, 'group', 1) !== 1) continue;
    if (node.attributes.has('output_shape') || node.attributes.has('auto_pad')) continue;
    const r = kh;
    const folded = deconvAsConvWeights(weight.data as Float32Array, bias?.data as Float32Array | undefined, cin, cout, r);
    const w = graph.addInitializer(`${node.name}/weight_1x1`, { dtype: 'float32', dims: [cout * r * r, cin, 1, 1], data: folded.weight });
    const b = graph.addInitializer(`${node.name}/bias_1x1`, { dtype: 'float32', dims: [cout * r * r], data: folded.bias });
    const out = node.outputs[0]!;
    const convOut = graph.fresh(`${out}/1x1`);
    const conv = makeNode(graph.fresh(`${node.name}/1x1`), 'Conv', [node.inputs[0]!, w, b], [convOut], {
      kernel_shape: { kind: 'ints', value: [1, 1] },
      strides: { kind: 'ints', value: [1, 1] },
      pads: { kind: 'ints', value: [0, 0, 0, 0] },
      dilations: { kind: 'ints', value: [1, 1] },
      group: { kind: 'int', value: 1 },
    });
    const shuffle = (input: string, output: string) =>
      makeNode(graph.fresh(`${node.name}/depth_to_space`), 'DepthToSpace', [input], [output], { blocksize: { kind: 'int', value: r }, mode: { kind: 'string', value: 'CRD' } });
    const relu = graph.soleConsumer(out);
    if (relu && relu.opType === 'Relu' && relu.domain === '') {
      // Conv → Relu (fused by onnxruntime) → DepthToSpace writing the Relu's output.
      const reluOut = graph.fresh(`${out}/1x1_relu`);
      graph.remove(relu);
      graph.replace(node, [conv, makeNode(graph.fresh(`${relu.name}/1x1`), 'Relu', [convOut], [reluOut]), shuffle(reluOut, relu.outputs[0]!)]);
    } else {
      graph.replace(node, [conv, shuffle(convOut, out)]);
    }
    count += 1;
  }
  return count;
}

/** The pass (see module doc). */
export const DECONV_AS_DEPTH_TO_SPACE: GraphPass = { name: 'deconv-as-depth-to-space', apply: rewrite };
