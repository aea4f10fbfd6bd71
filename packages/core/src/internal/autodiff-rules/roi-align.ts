/**
 * The gradient of ONNX RoiAlign (avg mode) with respect to the feature map: torchvision's
 * `roi_align_backward`. Every sample point of the forward's grid scatters its four bilinear
 * weights, times the output bin's gradient / the bin's sample count, into the map. The grid is the
 * forward's own: `output_half_pixel` (torchvision aligned=false: no half-pixel offset, RoI sides at
 * least 1) or `half_pixel` (aligned=true), a fixed `sampling_ratio` or the adaptive
 * `ceil(bin size)` per RoI (padded to the largest grid, extra samples weighted 0). Samples outside
 * [-1, H] x [-1, W] contribute nothing, and the clamping at the map's last row/column is the
 * forward's. The boxes and batch indices get no gradient (torchvision's boxes are detached).
 *
 * Built in the graph: the per-axis weights and positions are separable ([R, bins, samples, 2]
 * each), combined into E = R·ph·pw·grid·4 (flat position, weight) pairs; the updates [E, C] go to
 * an [N·H·W, C] map with ScatterND (reduction add), in channel blocks, then back to [N, C, H, W].
 */
import type { Blob } from '../../graph/builder.js';
import { type GradientContext, registerGradientRule } from '../../autodiff/registry.js';

/**
 * Channel blocks the feature-map gradient is scattered in (see the rule): bounds the backward's
 * largest temporary to 1/8 of the [pairs, C] updates without changing a single sum.
 */
export const ROI_ALIGN_BACKWARD_CHUNKS = 8;

/** A float constant of the backward's dtype with values 0..n-1, reshaped to `dims`. */
const floatIota = (ctx: GradientContext, n: number, dims: readonly number[]): Blob =>
  ctx.constantOf(
    Array.from({ length: n }, (_, i) => i),
    dims,
  );

/** Per-axis sample weights and positions of one RoI axis. */
interface AxisSamples {
  /** [R, bins, samples, 2] weights of the low and high neighbour (0 for invalid samples). */
  readonly weights: Blob;
  /** [R, bins, samples, 2] int64 positions of the low and high neighbour. */
  readonly positions: Blob;
}

/**
 * The samples along one axis: start [R,1] and size [R,1] of the RoI (already scaled and offset),
 * `bins` output bins, `grid` samples per bin ([R,1,1] float) padded to `gridIota` ([1,1,G]),
 * `extent` the map's size along the axis as float [1] and int64 [1].
 */
function axisSamples(ctx: GradientContext, name: string, start: Blob, size: Blob, bins: number, grid: Blob, gridIota: Blob, extentF: Blob): AxisSamples {
  const g = ctx.graph;
  return g.withScope(name, () => {
    const r3 = g.constInt64([-1, 1, 1]);
    const start3 = g.op('Reshape', [start, r3], {}, 'start');
    const bin = g.op('Div', [g.op('Reshape', [size, r3], {}, 'size'), ctx.scalar(bins)], {}, 'bin');
    const binIndex = floatIota(ctx, bins, [1, bins, 1]);
    const offsetInBin = g.op('Div', [g.op('Mul', [g.op('Add', [gridIota, ctx.scalar(0.5)], {}, 'centre'), bin], {}, 'scaled'), grid], {}, 'offset');
    const coord = g.op('Add', [g.op('Add', [start3, g.op('Mul', [binIndex, bin], {}, 'bin_start')], {}, 'bin_origin'), offsetInBin], {}, 'coord');
    const valid = g.op(
      'And',
      [
        g.op('And', [g.op('GreaterOrEqual', [coord, ctx.scalar(-1)], {}, 'ge_lo'), g.op('LessOrEqual', [coord, extentF], {}, 'le_hi')], {}, 'inside'),
        g.op('Less', [gridIota, grid], {}, 'in_grid'),
      ],
      {},
      'valid',
    );
    const clamped = g.op('Max', [coord, ctx.scalar(0)], {}, 'clamped');
    const floor = g.op('Floor', [clamped], {}, 'floor');
    const last = g.op('Sub', [extentF, ctx.scalar(1)], {}, 'last');
    const atEdge = g.op('GreaterOrEqual', [floor, last], {}, 'at_edge');
    const low = g.op('Where', [atEdge, last, floor], {}, 'low');
    const high = g.op('Where', [atEdge, last, g.op('Add', [floor, ctx.scalar(1)], {}, 'next')], {}, 'high');
    const frac = g.op('Where', [atEdge, ctx.scalar(0), g.op('Sub', [clamped, floor], {}, 'diff')], {}, 'frac');
    const validF = g.op('Cast', [valid], { to: ctx.dtype === 'float64' ? 11 : 1 }, 'valid_f');
    const wLow = g.op('Mul', [g.op('Sub', [ctx.scalar(1), frac], {}, 'one_minus'), validF], {}, 'w_low');
    const wHigh = g.op('Mul', [frac, validF], {}, 'w_high');
    const last4 = g.constInt64([3]);
    const pair = (a: Blob, b: Blob, what: string): Blob =>
      g.op('Concat', [g.op('Unsqueeze', [a, last4], {}, `${what}_a`), g.op('Unsqueeze', [b, last4], {}, `${what}_b`)], { axis: 3 }, what);
    return {
      weights: pair(wLow, wHigh, 'weights'),
      positions: g.op('Cast', [pair(low, high, 'coords')], { to: 7 }, 'positions'),
    };
  });
}

/** Installs the RoiAlign rule. */
export function installRoiAlignRule(register: typeof registerGradientRule): void {
  register('RoiAlign', {
    differentiableInputs: [0],
    backward(ctx) {
      const g = ctx.graph;
      if (ctx.stringAttribute('mode', 'avg') !== 'avg') ctx.fail('only mode "avg" is differentiable');
      const x = ctx.inputs[0]!;
      const rois = ctx.inputs[1]!;
      const batchIndex = ctx.inputs[2]!;
      const ph = ctx.intAttribute('output_height', 1);
      const pw = ctx.intAttribute('output_width', 1);
      const samplingRatio = ctx.intAttribute('sampling_ratio', 0);
      const spatialScale = ctx.floatAttribute('spatial_scale', 1);
      const halfPixel = ctx.stringAttribute('coordinate_transformation_mode', 'half_pixel') === 'half_pixel';
      const to = ctx.dtype === 'float64' ? 11 : 1;

      const shape = g.op('Shape', [x], {}, 'x_shape');
      const dimAt = (i: number, name: string): Blob => g.op('Shape', [x], { start: i, end: i + 1 }, name);
      const [n, c, h, w] = [dimAt(0, 'n'), dimAt(1, 'c'), dimAt(2, 'h'), dimAt(3, 'w')];
      const hF = g.op('Cast', [h], { to }, 'h_f');
      const wF = g.op('Cast', [w], { to }, 'w_f');

      const [x1, y1, x2, y2] = g.node('Split', [rois, g.constInt64([1, 1, 1, 1])], { axis: 1 }, { outputs: 4, name: 'corner' });
      const scaled = (v: Blob, name: string): Blob => {
        const s = g.op('Mul', [v, ctx.scalar(spatialScale)], {}, name);
        return halfPixel ? g.op('Sub', [s, ctx.scalar(0.5)], {}, `${name}_offset`) : s;
      };
      const [sx, sy, ex, ey] = [scaled(x1, 'x1'), scaled(y1, 'y1'), scaled(x2, 'x2'), scaled(y2, 'y2')];
      let width = g.op('Sub', [ex, sx], {}, 'roi_w');
      let height = g.op('Sub', [ey, sy], {}, 'roi_h');
      if (!halfPixel) {
        // output_half_pixel (torchvision aligned=false) makes every RoI at least 1x1.
        width = g.op('Max', [width, ctx.scalar(1)], {}, 'roi_w_min1');
        height = g.op('Max', [height, ctx.scalar(1)], {}, 'roi_h_min1');
      }

      // Samples per bin: fixed, or ceil(bin size) per RoI padded to the largest.
      let gridH: Blob;
      let gridW: Blob;
      let iotaH: Blob;
      let iotaW: Blob;
      if (samplingRatio > 0) {
        gridH = ctx.scalar(samplingRatio);
        gridW = gridH;
        iotaH = floatIota(ctx, samplingRatio, [1, 1, samplingRatio]);
        iotaW = iotaH;
      } else {
        const adaptive = (size: Blob, bins: number, name: string): [Blob, Blob] => {
          const per = g.op('Ceil', [g.op('Div', [size, ctx.scalar(bins)], {}, `${name}_bin`)], {}, `${name}_grid`);
          const most = g.op(
            'ReduceMax',
            [g.op('Concat', [g.op('Reshape', [per, g.constInt64([-1])], {}, `${name}_flat`), ctx.constantOf([1])], { axis: 0 }, `${name}_all`)],
            { keepdims: 0 },
            `${name}_most`,
          );
          const count = g.op('Cast', [most], { to: 7 }, `${name}_count`);
          const iota = g.op(
            'Reshape',
            [
              g.op('Cast', [g.op('Range', [g.constInt64(0, []), count, g.constInt64(1, [])], {}, `${name}_range`)], { to }, `${name}_range_f`),
              g.constInt64([1, 1, -1]),
            ],
            {},
            `${name}_iota`,
          );
          return [g.op('Reshape', [per, g.constInt64([-1, 1, 1])], {}, `${name}_grid3`), iota];
        };
        [gridH, iotaH] = adaptive(height, ph, 'grid_h');
        [gridW, iotaW] = adaptive(width, pw, 'grid_w');
      }
      const ys = axisSamples(ctx, 'y', sy, height, ph, gridH, iotaH, hF);
      const xs = axisSamples(ctx, 'x', sx, width, pw, gridW, iotaW, wF);

      // count = max(grid_h * grid_w, 1) per RoI, as [R,1,1,1,1,1,1] (or a scalar when fixed).
      const count =
        samplingRatio > 0
          ? ctx.scalar(samplingRatio * samplingRatio)
          : g.op(
              'Reshape',
              [g.op('Max', [g.op('Mul', [gridH, gridW], {}, 'samples'), ctx.scalar(1)], {}, 'count'), g.constInt64([-1, 1, 1, 1, 1, 1, 1])],
              {},
              'count7',
            );
      // [R, ph, 1, Gh, 1, 2, 1] x [R, 1, pw, 1, Gw, 1, 2] -> [R, ph, pw, Gh, Gw, 2, 2].
      const yAxes = g.constInt64([2, 4, 6]);
      const xAxes = g.constInt64([1, 3, 5]);
      const weight = g.op(
        'Div',
        [g.op('Mul', [g.op('Unsqueeze', [ys.weights, yAxes], {}, 'wy'), g.op('Unsqueeze', [xs.weights, xAxes], {}, 'wx')], {}, 'wyx'), count],
        {},
        'weight',
      );
      const hw = g.op('Mul', [h, w], {}, 'hw');
      const image = g.op('Reshape', [g.op('Mul', [batchIndex, hw], {}, 'image_base'), g.constInt64([-1, 1, 1, 1, 1, 1, 1])], {}, 'image');
      const row = g.op('Mul', [g.op('Unsqueeze', [ys.positions, yAxes], {}, 'py'), w], {}, 'row');
      const position = g.op('Add', [g.op('Add', [image, row], {}, 'image_row'), g.op('Unsqueeze', [xs.positions, xAxes], {}, 'px')], {}, 'position');

      // Updates [E, C]: each (RoI, bin)'s gradient row times each of its sample weights — built and
      // scattered in ROI_ALIGN_BACKWARD_CHUNKS channel blocks, one after the other, so that only one
      // block's updates is alive at a time (all of them at once: 411 MB for the box head of an
      // R-50-FPN Mask R-CNN with 512 RoIs, at the step's memory peak). Channels are independent, so
      // the sums are the same as in one scatter.
      const grad = g.op('Transpose', [ctx.outputGradient(0)], { perm: [0, 2, 3, 1] }, 'grad_rows');
      const weight8 = g.op('Unsqueeze', [weight, g.constInt64([7])], {}, 'weight8');
      const weightShape = g.op('Shape', [weight], {}, 'weight_shape');
      const pairs = g.op('ReduceProd', [weightShape], { keepdims: 1 }, 'pairs');
      const indices = g.op('Reshape', [g.op('Expand', [position, weightShape], {}, 'position_full'), g.constInt64([-1, 1])], {}, 'indices');
      const cells = g.op('Mul', [n, hw], {}, 'cells');
      const blocks = ROI_ALIGN_BACKWARD_CHUNKS;
      // Block k holds channels [floor(k·C/K), floor((k+1)·C/K)): sizes differ by at most one (some are empty when C < K).
      const bound = (k: number): Blob => g.op('Div', [g.op('Mul', [c, g.constInt64([k])], {}, `bound${k}_scaled`), g.constInt64([blocks])], {}, `bound${k}`);
      const channelAxis = g.constInt64([3]);
      const maps: Blob[] = [];
      let lo = g.constInt64([0]);
      for (let k = 0; k < blocks; k++) {
        const hi = k === blocks - 1 ? c : bound(k + 1);
        g.withScope(`block${k}`, () => {
          const width = g.op('Sub', [hi, lo], {}, 'channels');
          const rows = g.op('Slice', [grad, lo, hi, channelAxis], {}, 'grad_rows');
          const grad8 = g.op('Unsqueeze', [rows, g.constInt64([3, 4, 5, 6])], {}, 'grad8');
          const updates8 = g.op('Mul', [grad8, weight8], {}, 'updates8');
          // allowzero: an empty block's width 0 is a size here, not "copy the input's dimension".
          const updates = g.op('Reshape', [updates8, g.op('Concat', [pairs, width], { axis: 0 }, 'updates_shape')], { allowzero: 1 }, 'updates');
          // The zeros' width is read off this block's own updates, not the shared channel bounds:
          // onnxruntime merges identical subexpressions, so zeros shaped from the feature map alone
          // would be one tensor shared by every head that pools the same level, made when the first
          // head's backward needs it and alive until the last one's (ScatterND copies its data input,
          // so sharing saves nothing) — 53 MB at the step's memory peak for P2 of an R-50-FPN.
          const zeros = ctx.filled(g.op('Concat', [cells, g.op('Shape', [updates], { start: 1 }, 'updates_width')], { axis: 0 }, 'map_shape'), 0, 'zeros');
          maps.push(g.op('ScatterND', [zeros, indices, updates], { reduction: 'add' }, 'scatter'));
        });
        lo = hi;
      }
      const map = g.op('Concat', maps, { axis: 1 }, 'map');
      const nhwc = g.op('Reshape', [map, g.op('Gather', [shape, g.constInt64([0, 2, 3, 1])], { axis: 0 }, 'nhwc_shape')], {}, 'nhwc');
      return [g.op('Transpose', [nhwc], { perm: [0, 3, 1, 2] }, 'gx')];
    },
  });
}
