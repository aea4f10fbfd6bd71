/**
 * The parts of the shapes benchmark (`bench.ts`) that are plain data handling, kept apart so the
 * tests can check them: the plan file, the loss curve summary of a `metrics.json`, the SVG of the
 * curves and the goal verdicts.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { lineChart, parseMetrics as parseTrainingMetrics } from '@rcnn/runtime/training';

/** COCO iou types `rcnn eval` computes. */
export type BenchIouType = 'bbox' | 'segm' | 'keypoints';

/** One model of the benchmark plan. */
export interface BenchModel {
  /** Output folder name and label. */
  readonly name: string;
  /** Absolute path of its `rcnn` config (YAML). */
  readonly config: string;
  readonly iouTypes: readonly BenchIouType[];
  /** OKS sigma per keypoint (`rcnn eval --oks-sigmas`), keypoint models only. */
  readonly oksSigmas?: readonly number[];
  /** Lower bounds, by metric name (`bbox/AP50`, `segm/AP`, …). */
  readonly goals: Readonly<Record<string, number>>;
}

/** The benchmark plan (`tools/shapes/configs/bench.yaml`). */
export interface BenchPlan {
  readonly dataset: { readonly train: number; readonly val: number; readonly seed: number; readonly width: number; readonly height: number };
  /** Bound on the training wall time of one model. */
  readonly timeLimitMinutes: number;
  readonly models: readonly BenchModel[];
}

const IOU_TYPES: readonly BenchIouType[] = ['bbox', 'segm', 'keypoints'];
/** Metric names a goal may use: `<iou type>/<stat>`. */
export const STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl'] as const;

function fail(path: string, key: string, message: string): never {
  throw new Error(`${path}: ${key} ${message}`);
}

function positiveInt(v: unknown, path: string, key: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(path, key, `must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads and checks a plan; `config` paths are resolved against the plan's folder. */
export function readBenchPlan(path: string): BenchPlan {
  const raw = parseYaml(readFileSync(path, 'utf8')) as Record<string, unknown> | null;
  if (raw === null || typeof raw !== 'object') fail(path, 'the file', 'is not a YAML mapping');
  const ds = raw.dataset as Record<string, unknown> | undefined;
  if (!ds || typeof ds !== 'object') fail(path, 'dataset', 'is missing (train, val, seed, width, height)');
  const dataset = {
    train: positiveInt(ds.train, path, 'dataset.train'),
    val: positiveInt(ds.val, path, 'dataset.val'),
    seed: typeof ds.seed === 'number' && Number.isInteger(ds.seed) && ds.seed >= 0 ? ds.seed : fail(path, 'dataset.seed', `must be an integer >= 0, got ${JSON.stringify(ds.seed)}`),
    width: positiveInt(ds.width, path, 'dataset.width'),
    height: positiveInt(ds.height, path, 'dataset.height'),
  };
  const limit = raw.timeLimitMinutes;
  if (typeof limit !== 'number' || !(limit > 0)) fail(path, 'timeLimitMinutes', `must be a positive number, got ${JSON.stringify(limit)}`);
  if (!Array.isArray(raw.models) || raw.models.length === 0) fail(path, 'models', 'must be a non-empty list');
  const models = (raw.models as unknown[]).map((m, i): BenchModel => {
    const key = `models[${i}]`;
    if (!m || typeof m !== 'object') fail(path, key, 'must be a mapping');
    const r = m as Record<string, unknown>;
    if (typeof r.name !== 'string' || !/^[\w.-]+$/.test(r.name)) fail(path, `${key}.name`, `must be a folder-safe name, got ${JSON.stringify(r.name)}`);
    if (typeof r.config !== 'string') fail(path, `${key}.config`, 'must be the path of an rcnn config');
    const types = r.iouTypes;
    if (!Array.isArray(types) || types.length === 0 || types.some((t) => !IOU_TYPES.includes(t as BenchIouType))) {
      fail(path, `${key}.iouTypes`, `must list some of ${IOU_TYPES.join(', ')}, got ${JSON.stringify(types)}`);
    }
    let oksSigmas: number[] | undefined;
    if (r.oksSigmas !== undefined) {
      if (!Array.isArray(r.oksSigmas) || r.oksSigmas.some((s) => typeof s !== 'number' || !(s > 0))) fail(path, `${key}.oksSigmas`, 'must be a list of positive numbers');
      oksSigmas = r.oksSigmas as number[];
    }
    if ((types as string[]).includes('keypoints') && !oksSigmas) fail(path, `${key}.oksSigmas`, 'is needed to evaluate keypoints');
    const goals: Record<string, number> = {};
    for (const [metric, bound] of Object.entries((r.goals ?? {}) as Record<string, unknown>)) {
      const [type, stat] = metric.split('/');
      if (!(types as string[]).includes(type ?? '') || !(STAT_NAMES as readonly string[]).includes(stat ?? '')) {
        fail(path, `${key}.goals.${metric}`, `must be <one of ${(types as string[]).join(', ')}>/<one of ${STAT_NAMES.join(', ')}>`);
      }
      if (typeof bound !== 'number' || bound < 0 || bound > 1) fail(path, `${key}.goals.${metric}`, `must be a number in [0, 1], got ${JSON.stringify(bound)}`);
      goals[metric] = bound;
    }
    return { name: r.name, config: resolve(dirname(path), r.config), iouTypes: types as BenchIouType[], ...(oksSigmas ? { oksSigmas } : {}), goals };
  });
  return { dataset, timeLimitMinutes: limit, models };
}

/** One line of `metrics.json` that records an iteration. */
export interface IterationMetrics {
  readonly iteration: number;
  readonly total_loss: number;
  readonly lr: number;
  readonly time?: number;
  readonly [loss: `loss_${string}`]: number;
}

/**
 * The iteration lines of a `metrics.json` (validation lines are left out), read by the training
 * report's parser: a resumed run's re-run iterations count once (the last record wins).
 */
export function parseMetrics(text: string): IterationMetrics[] {
  return parseTrainingMetrics(text).flatMap((e) => (e.kind === 'iteration' && typeof e.values.total_loss === 'number' ? [{ ...e.values, iteration: e.iteration } as IterationMetrics] : []));
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The loss at one point of the run: medians over the window of iterations ending there. */
export interface LossPoint {
  /** 1-based: iterations done. */
  readonly iterations: number;
  readonly total: number;
  /** Each `loss_*`. */
  readonly losses: Readonly<Record<string, number>>;
}

/**
 * The curve at `points` evenly spaced places (the first iteration, then every 1/(points − 1) of
 * the run): at each, the median of every loss over the `window` iterations ending there, as
 * Detectron2 logs them (a single step's loss is noisy: a few RoIs decide it).
 */
export function lossSummary(entries: readonly IterationMetrics[], points = 11, window = 20): LossPoint[] {
  if (entries.length === 0) return [];
  const n = entries.length;
  const ends = new Set<number>([1]);
  for (let p = 1; p < points; p++) ends.add(Math.max(1, Math.round((n * p) / (points - 1))));
  const names = Object.keys(entries[0]!).filter((k) => k.startsWith('loss_'));
  return [...ends].sort((a, b) => a - b).map((end) => {
    const slice = entries.slice(Math.max(0, end - window), end);
    const losses: Record<string, number> = {};
    for (const k of names) losses[k] = median(slice.map((e) => e[k as `loss_${string}`] ?? Number.NaN));
    return { iterations: end, total: median(slice.map((e) => e.total_loss)), losses };
  });
}

/** A curve for {@link lossCurveSvg}: running medians of the total loss. */
export interface LossCurve {
  readonly name: string;
  readonly entries: readonly IterationMetrics[];
}

/**
 * A small self-contained SVG of the total loss (running median over `window` iterations, log
 * scale) of each curve, at most `maxPoints` points per curve so the file stays a few KB. Drawn by
 * the training report's own chart ({@link lineChart}), so the benchmark's figure and `report.html`
 * look alike.
 */
export function lossCurveSvg(curves: readonly LossCurve[], options: { title: string; window?: number; maxPoints?: number }): string {
  const window = options.window ?? 20;
  const maxPoints = options.maxPoints ?? 200;
  const series = curves.map((c) => {
    const n = c.entries.length;
    const step = Math.max(1, Math.ceil(n / maxPoints));
    const at = (end: number): [number, number] => [end, median(c.entries.slice(Math.max(0, end - window), end).map((e) => e.total_loss))];
    const points: [number, number][] = [];
    for (let end = 1; end <= n; end += step) points.push(at(end));
    if (n > 0 && points[points.length - 1]![0] !== n) points.push(at(n));
    return { name: c.name, points };
  });
  return `${lineChart(`${options.title} (median of the last ${window} iterations, log scale)`, series, { log: true })}\n`;
}

/** The COCO numbers of one model by name (`bbox/AP50` …) from `rcnn eval --json`. */
export function namedStats(json: Readonly<Record<string, unknown>>, types: readonly BenchIouType[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const type of types) {
    const stats = json[type];
    if (!Array.isArray(stats)) throw new Error(`rcnn eval's JSON has no "${type}" numbers`);
    // summarize() order: AP, AP50, AP75, then small / medium / large (keypoints: medium / large only).
    const names = type === 'keypoints' ? ['AP', 'AP50', 'AP75', 'APm', 'APl'] : ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl'];
    names.forEach((n, i) => {
      out[`${type}/${n}`] = stats[i] as number;
    });
  }
  return out;
}

/** A goal and whether it was met. */
export interface GoalVerdict {
  readonly metric: string;
  readonly goal: number;
  readonly value: number | undefined;
  readonly met: boolean;
}

/** Each goal against the measured numbers (a missing number is not met). */
export function judgeGoals(goals: Readonly<Record<string, number>>, stats: Readonly<Record<string, number>>): GoalVerdict[] {
  return Object.entries(goals).map(([metric, goal]) => {
    const value = stats[metric];
    return { metric, goal, value, met: value !== undefined && value >= goal };
  });
}
