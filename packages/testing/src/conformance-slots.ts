/**
 * What the conformance kit knows about each slot: which stage inputs it feeds (as graph inputs
 * holding synthetic data), how it calls the implementation, and which properties of the outputs
 * the slot's contract (core's `model/contracts.ts`) promises.
 */
import {
  type Blob,
  type BoxHeadOutput,
  type BuildContext,
  type ConvBody,
  DIMS,
  type Dim,
  type DataType,
  type Detections,
  type FeatureMaps,
  type FeaturePyramid,
  type HostTensor,
  type Proposals,
  type RcnnConfig,
  type RoiBoxHead,
  type RoiBoxOutputs,
  type RoiKeypointHead,
  type RoiMaskHead,
  type RpnHead,
  SLOTS,
  type Slot,
  type TapLayout,
  featureMapDims,
} from '@rcnn/core';
import {
  type ConformanceCase,
  type FeatureSpec,
  defaultBottomUp,
  defaultFeatures,
  flatRows,
  gaussian,
  levelSize,
  paddedProposals,
  randomFloat,
} from './conformance-inputs.js';

/** Slot ids the kit checks (every model slot; host-side slots are not graph stages). */
export type ConformanceSlotId = 'conv-body' | 'fpn' | 'rpn-head' | 'roi-box-head' | 'roi-box-outputs' | 'roi-mask-head' | 'roi-keypoint-head';

/** Expected sizes a slot's outputs are checked against (defaults come from the config). */
export interface ConformanceExpectations {
  /** Mask side M of `maskProbs` [D,1,M,M] (default MRCNN.RESOLUTION). */
  readonly maskResolution?: number;
  /** Heatmap side S of `heatmaps` [D,K,S,S] (default KRCNN.HEATMAP_SIZE). */
  readonly heatmapSize?: number;
  /** Keypoints K (default KRCNN.NUM_KEYPOINTS). */
  readonly numKeypoints?: number;
}

/** Settings shared by every adapter in one run. */
export interface AdapterEnv {
  readonly config: RcnnConfig;
  /** Features fed to the stage (bottom-up maps for the FPN); empty means the slot default. */
  readonly features: readonly FeatureSpec[] | undefined;
  /** Width of the box-head representation fed to `roi-box-outputs`. */
  readonly boxHeadDim: number;
  readonly expect: ConformanceExpectations;
}

/** A feature map an implementation returned, and the graph output it was exposed as. */
export interface DeclaredMap {
  readonly name: string;
  readonly channels: number;
  readonly spatialScale: number;
  readonly level: number;
  readonly output: string;
}

/** What the implementation declared about its outputs (checked against what ORT computes). */
export type Declared =
  | { readonly kind: 'features'; readonly maps: readonly DeclaredMap[]; readonly isFpn: boolean }
  | { readonly kind: 'proposals' }
  | { readonly kind: 'box-head'; readonly dim: number }
  | { readonly kind: 'detections' }
  | { readonly kind: 'masks'; readonly hostPostprocessor: string }
  | { readonly kind: 'keypoints'; readonly hostPostprocessor: string };

/** A stage built by an adapter: its outputs to expose and what it declared. */
export interface StageIO {
  readonly outputs: readonly { readonly name: string; readonly blob: Blob; readonly dtype: DataType; readonly dims: readonly Dim[] }[];
  readonly declared: Declared;
}

/** Per-slot knowledge of the kit. */
export interface SlotAdapter {
  readonly slot: Slot<unknown>;
  /** Scope buildModel runs the stage in (`conv_body`, `rpn`, `box_head`, …). */
  readonly stageScope: string;
  /** The stage may only read the `images` input (a conv body must build in the features-only net). */
  readonly imagesOnly: boolean;
  /** The stage works on RoIs / detections, so it is also run with none. */
  readonly roiLevel: boolean;
  /** Builds the stage on `ctx` (declaring its own graph inputs). */
  build(ctx: BuildContext, value: unknown, env: AdapterEnv): StageIO;
  /** Synthetic feeds of the stage inputs for a case (the batch inputs are fed by the runner). */
  feeds(c: ConformanceCase, env: AdapterEnv, rand: () => number): Record<string, HostTensor>;
  /** Contract violations in the outputs of a case (empty when it conforms). */
  check(c: ConformanceCase, out: ReadonlyMap<string, HostTensor>, io: StageIO, env: AdapterEnv): string[];
  /** Rows a tap of `layout` must have in this case (undefined: not checked). */
  tapRows(layout: TapLayout, c: ConformanceCase, out: ReadonlyMap<string, HostTensor>): number | undefined;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const fmt = (dims: readonly (number | null)[]): string => `[${dims.map((d) => (d === null ? '*' : d)).join(', ')}]`;

/** Numbers of a tensor (int64 as Number). */
export function values(t: HostTensor): ArrayLike<number> {
  return t.dtype === 'int64' ? Array.from(t.data as BigInt64Array, Number) : (t.data as ArrayLike<number>);
}

/** Problems with a tensor's dtype and shape (`null` entries of `dims` are not checked). */
function expectTensor(problems: string[], what: string, t: HostTensor | undefined, dtype: DataType, dims: readonly (number | null)[]): t is HostTensor {
  if (!t) {
    problems.push(`${what}: missing from the outputs`);
    return false;
  }
  if (t.dtype !== dtype) problems.push(`${what}: dtype ${t.dtype}, expected ${dtype}`);
  const ok = t.dims.length === dims.length && dims.every((d, i) => d === null || d === t.dims[i]);
  if (!ok) problems.push(`${what}: shape ${fmt(t.dims)}, expected ${fmt(dims)}`);
  return ok && t.dtype === dtype;
}

function expectFinite(problems: string[], what: string, t: HostTensor): void {
  const v = values(t);
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) {
      problems.push(`${what}: non-finite value ${v[i]} at flat index ${i}`);
      return;
    }
  }
}

/** Graph inputs for feature maps of `specs`, named `conformance.features.<name>`. */
function featureInputs(ctx: BuildContext, specs: readonly FeatureSpec[]): FeatureMaps {
  return specs.map((s, i) => ({
    name: s.name,
    blob: ctx.graph.input(`conformance.features.${s.name}`, 'float32', ['N', s.channels, `H${i}`, `W${i}`]),
    channels: s.channels,
    spatialScale: s.spatialScale ?? 2 ** -s.level,
    level: s.level,
  }));
}

function featureFeeds(specs: readonly FeatureSpec[], c: ConformanceCase, rand: () => number): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const s of specs) {
    const [h, w] = levelSize(c.padded, s.spatialScale ?? 2 ** -s.level);
    feeds[`conformance.features.${s.name}`] = randomFloat([c.batch, s.channels, h, w], rand);
  }
  return feeds;
}

function declareMaps(maps: FeatureMaps, isFpn: boolean): StageIO {
  const declared: DeclaredMap[] = maps.map((m, i) => ({ name: m.name, channels: m.channels, spatialScale: m.spatialScale, level: m.level, output: `conformance.features_out.${i}` }));
  return {
    outputs: maps.map((m, i) => ({ name: declared[i]!.output, blob: m.blob, dtype: 'float32' as const, dims: featureMapDims(m) })),
    declared: { kind: 'features', maps: declared, isFpn },
  };
}

/** Output maps: [N, channels, ~H·scale, ~W·scale] float32, finite. */
function checkMaps(c: ConformanceCase, out: ReadonlyMap<string, HostTensor>, io: StageIO): string[] {
  const problems: string[] = [];
  if (io.declared.kind !== 'features') return problems;
  for (const m of io.declared.maps) {
    const t = out.get(m.output);
    const what = `feature map '${m.name}'`;
    if (!expectTensor(problems, what, t, 'float32', [c.batch, m.channels, null, null])) continue;
    const [, , h, w] = t.dims;
    const [hp, wp] = c.padded;
    // A strided conv / pool gives floor or ceil of size · scale depending on its padding.
    const fits = (size: number, padded: number): boolean => size === Math.floor(padded * m.spatialScale) || size === Math.ceil(padded * m.spatialScale);
    if (h === undefined || w === undefined || !fits(h, hp) || !fits(w, wp)) {
      problems.push(`${what}: spatial size ${h}x${w} does not match its declared spatialScale ${m.spatialScale} of the ${hp}x${wp} input (expected ${Math.ceil(hp * m.spatialScale)}x${Math.ceil(wp * m.spatialScale)})`);
    }
    expectFinite(problems, what, t);
  }
  return problems;
}

const ROW_TOL = 1e-3;

/** Boxes [rows,4] lie inside their image (0..w, 0..h) with x1 <= x2 and y1 <= y2. */
function checkBoxesInside(problems: string[], what: string, boxes: ArrayLike<number>, row: number, size: readonly [number, number]): boolean {
  const [x1, y1, x2, y2] = [boxes[4 * row]!, boxes[4 * row + 1]!, boxes[4 * row + 2]!, boxes[4 * row + 3]!];
  const [h, w] = size;
  const ok =
    [x1, y1, x2, y2].every(Number.isFinite) &&
    x1 <= x2 + ROW_TOL &&
    y1 <= y2 + ROW_TOL &&
    x1 >= -ROW_TOL &&
    y1 >= -ROW_TOL &&
    x2 <= w + ROW_TOL &&
    y2 <= h + ROW_TOL;
  if (!ok) problems.push(`${what} row ${row}: box (${x1}, ${y1}, ${x2}, ${y2}) is not inside its ${h}x${w} image`);
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Adapters

const convBody: SlotAdapter = {
  slot: SLOTS.convBody as Slot<unknown>,
  stageScope: 'conv_body',
  imagesOnly: true,
  roiLevel: false,
  build(ctx, value) {
    const body = value as ConvBody;
    return declareMaps(body.build(ctx, ctx.batch.images), body.isFpn);
  },
  feeds: () => ({}),
  check: (c, out, io) => checkMaps(c, out, io),
  tapRows: (layout, c) => (layout === 'per-image' ? c.batch : undefined),
};

const fpn: SlotAdapter = {
  slot: SLOTS.fpn as Slot<unknown>,
  stageScope: 'fpn',
  imagesOnly: true,
  roiLevel: false,
  build(ctx, value, env) {
    const bottomUp = featureInputs(ctx, env.features ?? defaultBottomUp(env.config));
    return declareMaps((value as FeaturePyramid).build(ctx, bottomUp), true);
  },
  feeds: (c, env, rand) => featureFeeds(env.features ?? defaultBottomUp(env.config), c, rand),
  check: (c, out, io) => checkMaps(c, out, io),
  tapRows: (layout, c) => (layout === 'per-image' ? c.batch : undefined),
};

const PROPOSAL_OUTPUTS = ['conformance.proposals_out.boxes', 'conformance.proposals_out.scores', 'conformance.proposals_out.valid', 'conformance.proposals_out.counts'] as const;

/** Proposals: [N,K,…], K ≤ TEST.RPN_POST_NMS_TOP_N, valid slots first and sorted, padding -inf, boxes inside each image. */
function checkProposals(c: ConformanceCase, out: ReadonlyMap<string, HostTensor>, config: RcnnConfig): string[] {
  const problems: string[] = [];
  const [bName, sName, vName, cName] = PROPOSAL_OUTPUTS;
  const boxes = out.get(bName);
  const k = boxes?.dims[1] ?? -1;
  const n = c.batch;
  const okB = expectTensor(problems, 'proposals.boxes', boxes, 'float32', [n, null, 4]);
  const okS = expectTensor(problems, 'proposals.scores', out.get(sName), 'float32', [n, k]);
  const okV = expectTensor(problems, 'proposals.valid', out.get(vName), 'bool', [n, k]);
  const okC = expectTensor(problems, 'proposals.counts', out.get(cName), 'int64', [n]);
  if (!(okB && okS && okV && okC)) return problems;
  if (k > config.TEST.RPN_POST_NMS_TOP_N) problems.push(`proposals: K = ${k} slots exceeds TEST.RPN_POST_NMS_TOP_N = ${config.TEST.RPN_POST_NMS_TOP_N}`);
  const b = values(boxes!);
  const s = values(out.get(sName)!);
  const v = values(out.get(vName)!);
  const counts = values(out.get(cName)!);
  for (let i = 0; i < n; i++) {
    const count = counts[i]!;
    if (!(count >= 0 && count <= k)) {
      problems.push(`proposals.counts[${i}] = ${count} is outside [0, K = ${k}]`);
      continue;
    }
    for (let j = 0; j < k; j++) {
      const slot = i * k + j;
      if (Boolean(v[slot]) !== j < count) {
        problems.push(`proposals.valid[${i}, ${j}] = ${Boolean(v[slot])} but counts[${i}] = ${count} (valid slots must come first)`);
        break;
      }
      if (j < count) {
        if (j > 0 && !(s[slot]! <= s[slot - 1]!)) problems.push(`proposals.scores of image ${i} are not sorted at slot ${j} (${s[slot - 1]} then ${s[slot]})`);
        if (!Number.isFinite(s[slot])) problems.push(`proposals.scores[${i}, ${j}] = ${s[slot]} in a valid slot`);
        if (!checkBoxesInside(problems, `proposals.boxes of image ${i}`, b, slot, c.imageSizes[i]!)) break;
      } else if (s[slot] !== -Infinity) {
        problems.push(`proposals.scores[${i}, ${j}] = ${s[slot]} in a padding slot (must be -inf)`);
        break;
      }
    }
  }
  return problems;
}

const rpnHead: SlotAdapter = {
  slot: SLOTS.rpnHead as Slot<unknown>,
  stageScope: 'rpn',
  imagesOnly: false,
  roiLevel: false,
  build(ctx, value, env) {
    const features = featureInputs(ctx, env.features ?? defaultFeatures(env.config, 'rpn'));
    const p: Proposals = (value as RpnHead).build(ctx, features);
    const [b, s, v, c] = PROPOSAL_OUTPUTS;
    return {
      outputs: [
        { name: b, blob: p.boxes, dtype: 'float32', dims: [DIMS.images, DIMS.proposals, 4] },
        { name: s, blob: p.scores, dtype: 'float32', dims: [DIMS.images, DIMS.proposals] },
        { name: v, blob: p.valid, dtype: 'bool', dims: [DIMS.images, DIMS.proposals] },
        { name: c, blob: p.counts, dtype: 'int64', dims: [DIMS.images] },
      ],
      declared: { kind: 'proposals' },
    };
  },
  feeds: (c, env, rand) => featureFeeds(env.features ?? defaultFeatures(env.config, 'rpn'), c, rand),
  check: (c, out, _io, env) => checkProposals(c, out, env.config),
  tapRows(layout, c, out) {
    if (layout === 'per-image' || layout === 'per-image-proposals') return c.batch;
    if (layout === 'proposal-rows') return c.batch * (out.get(PROPOSAL_OUTPUTS[0])?.dims[1] ?? 0);
    return undefined;
  },
};

function roiInputs(ctx: BuildContext): { boxes: Blob; batchIndex: Blob } {
  return {
    boxes: ctx.graph.input('conformance.rois.boxes', 'float32', ['R', 4]),
    batchIndex: ctx.graph.input('conformance.rois.batch_index', 'int64', ['R']),
  };
}

function roiFeeds(c: ConformanceCase, rand: () => number): Record<string, HostTensor> {
  const rows = flatRows(c, rand);
  return { 'conformance.rois.boxes': rows.boxes, 'conformance.rois.batch_index': rows.batchIndex };
}

const totalRows = (c: ConformanceCase): number => c.rowsPerImage.reduce((a, b) => a + b, 0);

const roiBoxHead: SlotAdapter = {
  slot: SLOTS.roiBoxHead as Slot<unknown>,
  stageScope: 'box_head',
  imagesOnly: false,
  roiLevel: true,
  build(ctx, value, env) {
    const features = featureInputs(ctx, env.features ?? defaultFeatures(env.config, 'roi'));
    const head: BoxHeadOutput = (value as RoiBoxHead).build(ctx, features, roiInputs(ctx));
    return { outputs: [{ name: 'conformance.box_head_out.features', blob: head.features, dtype: 'float32', dims: [DIMS.rois, head.dim] }], declared: { kind: 'box-head', dim: head.dim } };
  },
  feeds: (c, env, rand) => ({ ...featureFeeds(env.features ?? defaultFeatures(env.config, 'roi'), c, rand), ...roiFeeds(c, rand) }),
  check(c, out, io) {
    const problems: string[] = [];
    const dim = io.declared.kind === 'box-head' ? io.declared.dim : -1;
    const t = out.get('conformance.box_head_out.features');
    if (expectTensor(problems, 'box head features', t, 'float32', [totalRows(c), dim])) expectFinite(problems, 'box head features', t!);
    return problems;
  },
  tapRows(layout, c) {
    if (layout === 'proposal-rows') return totalRows(c);
    return layout === 'per-image' ? c.batch : undefined;
  },
};

const DETECTION_NAMES = ['conformance.det_out.boxes', 'conformance.det_out.scores', 'conformance.det_out.labels', 'conformance.det_out.batch_index'] as const;

/** Detections: [D,…] with one D, batch index non-decreasing in [0,N), labels 1..C-1, per-image count bounded, boxes inside. */
function checkDetections(c: ConformanceCase, out: ReadonlyMap<string, HostTensor>, config: RcnnConfig): string[] {
  const problems: string[] = [];
  const [bName, sName, lName, iName] = DETECTION_NAMES;
  const boxes = out.get(bName);
  const d = boxes?.dims[0] ?? -1;
  const ok = [
    expectTensor(problems, 'detections.boxes', boxes, 'float32', [null, 4]),
    expectTensor(problems, 'detections.scores', out.get(sName), 'float32', [d]),
    expectTensor(problems, 'detections.labels', out.get(lName), 'int64', [d]),
    expectTensor(problems, 'detections.batchIndex', out.get(iName), 'int64', [d]),
  ].every(Boolean);
  if (!ok) return problems;
  const b = values(boxes!);
  const s = values(out.get(sName)!);
  const l = values(out.get(lName)!);
  const bi = values(out.get(iName)!);
  const perImage = new Array<number>(c.batch).fill(0);
  for (let r = 0; r < d; r++) {
    if (!(bi[r]! >= 0 && bi[r]! < c.batch) || (r > 0 && bi[r]! < bi[r - 1]!)) {
      problems.push(`detections.batchIndex[${r}] = ${bi[r]}: must be non-decreasing and in [0, ${c.batch})`);
      break;
    }
    perImage[bi[r]!]!++;
    if (!(l[r]! >= 1 && l[r]! <= config.MODEL.NUM_CLASSES - 1)) {
      problems.push(`detections.labels[${r}] = ${l[r]}: must be in 1..MODEL.NUM_CLASSES-1 = ${config.MODEL.NUM_CLASSES - 1}`);
      break;
    }
    if (!Number.isFinite(s[r])) problems.push(`detections.scores[${r}] = ${s[r]}`);
    if (!checkBoxesInside(problems, 'detections.boxes', b, r, c.imageSizes[bi[r]!]!)) break;
  }
  perImage.forEach((count, i) => {
    if (count > config.TEST.DETECTIONS_PER_IM) problems.push(`image ${i} has ${count} detections, more than TEST.DETECTIONS_PER_IM = ${config.TEST.DETECTIONS_PER_IM}`);
  });
  return problems;
}

const roiBoxOutputs: SlotAdapter = {
  slot: SLOTS.roiBoxOutputs as Slot<unknown>,
  stageScope: 'box_outputs',
  imagesOnly: false,
  roiLevel: true,
  build(ctx, value, env) {
    const g = ctx.graph;
    const head: BoxHeadOutput = { features: g.input('conformance.box_head.features', 'float32', ['R', env.boxHeadDim]), dim: env.boxHeadDim };
    const proposals: Proposals = {
      boxes: g.input('conformance.proposals.boxes', 'float32', ['N', 'K', 4]),
      scores: g.input('conformance.proposals.scores', 'float32', ['N', 'K']),
      valid: g.input('conformance.proposals.valid', 'bool', ['N', 'K']),
      counts: g.input('conformance.proposals.counts', 'int64', ['N']),
    };
    const det: Detections = (value as RoiBoxOutputs).build(ctx, head, proposals);
    const [b, s, l, i] = DETECTION_NAMES;
    return {
      outputs: [
        { name: b, blob: det.boxes, dtype: 'float32', dims: [DIMS.detections, 4] },
        { name: s, blob: det.scores, dtype: 'float32', dims: [DIMS.detections] },
        { name: l, blob: det.labels, dtype: 'int64', dims: [DIMS.detections] },
        { name: i, blob: det.batchIndex, dtype: 'int64', dims: [DIMS.detections] },
      ],
      declared: { kind: 'detections' },
    };
  },
  feeds(c, env, rand) {
    const { feeds, k } = paddedProposals(c, rand);
    // Box-head features are ReLU outputs: non-negative.
    const normal = gaussian(rand);
    const data = Float32Array.from({ length: c.batch * k * env.boxHeadDim }, () => Math.abs(normal()));
    return { ...feeds, 'conformance.box_head.features': { dtype: 'float32', dims: [c.batch * k, env.boxHeadDim], data } };
  },
  check: (c, out, _io, env) => checkDetections(c, out, env.config),
  tapRows(layout, c, out) {
    if (layout === 'proposal-rows') return c.batch * Math.max(0, ...c.rowsPerImage);
    if (layout === 'per-image-detections') return out.get(DETECTION_NAMES[0])?.dims[0];
    return layout === 'per-image' ? c.batch : undefined;
  },
};

function detectionInputs(ctx: BuildContext): Detections {
  const g = ctx.graph;
  return {
    boxes: g.input('conformance.detections.boxes', 'float32', ['D', 4]),
    scores: g.input('conformance.detections.scores', 'float32', ['D']),
    labels: g.input('conformance.detections.labels', 'int64', ['D']),
    batchIndex: g.input('conformance.detections.batch_index', 'int64', ['D']),
  };
}

function detectionFeeds(c: ConformanceCase, config: RcnnConfig, rand: () => number): Record<string, HostTensor> {
  const rows = flatRows(c, rand);
  const classes = config.MODEL.NUM_CLASSES;
  return {
    'conformance.detections.boxes': rows.boxes,
    'conformance.detections.scores': { dtype: 'float32', dims: [rows.total], data: Float32Array.from({ length: rows.total }, () => 0.05 + 0.95 * rand()) },
    'conformance.detections.labels': { dtype: 'int64', dims: [rows.total], data: BigInt64Array.from({ length: rows.total }, (_, r) => BigInt(1 + (r % (classes - 1)))) },
    'conformance.detections.batch_index': rows.batchIndex,
  };
}

const roiMaskHead: SlotAdapter = {
  slot: SLOTS.roiMaskHead as Slot<unknown>,
  stageScope: 'mask_head',
  imagesOnly: false,
  roiLevel: true,
  build(ctx, value, env) {
    const head = value as RoiMaskHead;
    const features = featureInputs(ctx, env.features ?? defaultFeatures(env.config, 'roi'));
    const { maskProbs } = head.build(ctx, features, detectionInputs(ctx));
    return { outputs: [{ name: 'conformance.mask_out.probs', blob: maskProbs, dtype: 'float32', dims: [DIMS.detections, 1, DIMS.maskSize, DIMS.maskSize] }], declared: { kind: 'masks', hostPostprocessor: head.hostPostprocessor } };
  },
  feeds: (c, env, rand) => ({ ...featureFeeds(env.features ?? defaultFeatures(env.config, 'roi'), c, rand), ...detectionFeeds(c, env.config, rand) }),
  check(c, out, _io, env) {
    const problems: string[] = [];
    const m = env.expect.maskResolution ?? env.config.MRCNN.RESOLUTION;
    const t = out.get('conformance.mask_out.probs');
    if (!expectTensor(problems, 'maskProbs', t, 'float32', [totalRows(c), 1, m, m])) return problems;
    const v = values(t!);
    for (let i = 0; i < v.length; i++) {
      if (!(v[i]! >= 0 && v[i]! <= 1)) {
        problems.push(`maskProbs holds ${v[i]} at flat index ${i}: mask probabilities must be in [0, 1]`);
        break;
      }
    }
    return problems;
  },
  tapRows(layout, c) {
    if (layout === 'per-image-detections') return totalRows(c);
    return layout === 'per-image' ? c.batch : undefined;
  },
};

const roiKeypointHead: SlotAdapter = {
  slot: SLOTS.roiKeypointHead as Slot<unknown>,
  stageScope: 'keypoint_head',
  imagesOnly: false,
  roiLevel: true,
  build(ctx, value, env) {
    const head = value as RoiKeypointHead;
    const features = featureInputs(ctx, env.features ?? defaultFeatures(env.config, 'roi'));
    const { heatmaps } = head.build(ctx, features, detectionInputs(ctx));
    return {
      outputs: [{ name: 'conformance.keypoint_out.heatmaps', blob: heatmaps, dtype: 'float32', dims: [DIMS.detections, DIMS.keypoints, DIMS.heatmapSize, DIMS.heatmapSize] }],
      declared: { kind: 'keypoints', hostPostprocessor: head.hostPostprocessor },
    };
  },
  feeds: (c, env, rand) => ({ ...featureFeeds(env.features ?? defaultFeatures(env.config, 'roi'), c, rand), ...detectionFeeds(c, env.config, rand) }),
  check(c, out, _io, env) {
    const problems: string[] = [];
    const k = env.expect.numKeypoints ?? env.config.KRCNN.NUM_KEYPOINTS;
    const s = env.expect.heatmapSize ?? env.config.KRCNN.HEATMAP_SIZE;
    const t = out.get('conformance.keypoint_out.heatmaps');
    if (expectTensor(problems, 'heatmaps', t, 'float32', [totalRows(c), k, s, s])) expectFinite(problems, 'heatmaps', t!);
    return problems;
  },
  tapRows(layout, c) {
    if (layout === 'per-image-detections') return totalRows(c);
    return layout === 'per-image' ? c.batch : undefined;
  },
};

/** The adapter of every slot the kit checks, by slot id. */
export const SLOT_ADAPTERS: Readonly<Record<ConformanceSlotId, SlotAdapter>> = {
  'conv-body': convBody,
  fpn,
  'rpn-head': rpnHead,
  'roi-box-head': roiBoxHead,
  'roi-box-outputs': roiBoxOutputs,
  'roi-mask-head': roiMaskHead,
  'roi-keypoint-head': roiKeypointHead,
};

/** Checks on what a feature-producing stage declared, independent of any run. */
export function checkDeclaredMaps(declared: Declared): string[] {
  if (declared.kind !== 'features') return [];
  const problems: string[] = [];
  const maps = declared.maps;
  if (maps.length === 0) problems.push('returned no feature maps');
  const names = new Set<string>();
  maps.forEach((m, i) => {
    if (names.has(m.name)) problems.push(`feature map name '${m.name}' is used twice`);
    names.add(m.name);
    if (!(m.channels > 0 && Number.isInteger(m.channels))) problems.push(`map '${m.name}': channels ${m.channels} is not a positive integer`);
    if (!(m.spatialScale > 0 && m.spatialScale <= 1)) problems.push(`map '${m.name}': spatialScale ${m.spatialScale} is not in (0, 1]`);
    if (Math.abs(2 ** -m.level - m.spatialScale) > 1e-9 * m.spatialScale) {
      problems.push(`map '${m.name}': level ${m.level} does not match spatialScale ${m.spatialScale} (level must be log2(1 / spatialScale))`);
    }
    if (i > 0 && m.spatialScale > maps[i - 1]!.spatialScale) problems.push(`maps are not ordered finest to coarsest ('${maps[i - 1]!.name}' then '${m.name}')`);
  });
  if (declared.isFpn && maps.some((m) => m.channels !== maps[0]!.channels)) {
    problems.push(`a pyramid's levels must share one width (the RPN head is shared across them): ${maps.map((m) => `'${m.name}': ${m.channels}`).join(', ')}`);
  }
  return problems;
}
