/**
 * The end-of-run report of `rcnn train`: a self-contained HTML page (inline SVG, no external
 * assets, like the bench report) with the loss curves, the learning rate and the validation
 * numbers, made from the `metrics.json` lines so that a resumed run's report covers the whole run.
 */
import { readFile } from 'node:fs/promises';

/** One parsed line of `metrics.json`: an iteration's numbers, or a checkpoint's validation. */
export type MetricsEntry =
  | { readonly kind: 'iteration'; readonly iteration: number; readonly values: Readonly<Record<string, number>> }
  | { readonly kind: 'validation'; readonly iteration: number; readonly values: Readonly<Record<string, number>> };

/** Parses `metrics.json` text; lines that are not JSON objects with an iteration are skipped (a torn last line). */
export function parseMetrics(text: string): MetricsEntry[] {
  const out: MetricsEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim().length === 0) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof obj !== 'object' || obj === null) continue;
    const rec = obj as Record<string, unknown>;
    if (typeof rec.iteration !== 'number') continue;
    if (typeof rec.validation === 'object' && rec.validation !== null) {
      out.push({ kind: 'validation', iteration: rec.iteration, values: numbers(rec.validation as Record<string, unknown>) });
    } else out.push({ kind: 'iteration', iteration: rec.iteration, values: numbers(rec) });
  }
  // A resumed run appends: keep the last record of each iteration (an interrupted tail is re-run).
  const last = new Map<string, MetricsEntry>();
  for (const e of out) last.set(`${e.kind}:${e.iteration}`, e);
  return [...last.values()].sort((a, b) => a.iteration - b.iteration);
}

function numbers(rec: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(rec)) if (typeof v === 'number' && k !== 'iteration') out[k] = v;
  return out;
}

/** Reads and parses a `metrics.json` file. */
export async function readMetrics(path: string): Promise<MetricsEntry[]> {
  return parseMetrics(await readFile(path, 'utf8'));
}

const COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number): string => (v === 0 ? '0' : Math.abs(v) >= 1000 || Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toPrecision(3));

/** A line chart of several series over iterations (inline SVG). */
export function lineChart(title: string, series: readonly { name: string; points: readonly (readonly [number, number])[] }[], options: { log?: boolean } = {}): string {
  const width = 760;
  const height = 280;
  const left = 64;
  const right = 150;
  const top = 24;
  const bottom = 34;
  const all = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y) && (!options.log || y > 0));
  if (all.length === 0) return `<p>${esc(title)}: no data</p>`;
  const tx = (y: number): number => (options.log ? Math.log10(y) : y);
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => tx(y));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (!options.log) y0 = Math.min(0, y0);
  if (y1 - y0 < 1e-12) y1 = y0 + 1;
  const px = (x: number): number => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const py = (y: number): number => top + (1 - (tx(y) - y0) / (y1 - y0)) * (height - top - bottom);
  const parts: string[] = [
    `<text x="${left}" y="14" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#888"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#888"/>`,
  ];
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    const v = y0 + t * (y1 - y0);
    const shown = options.log ? 10 ** v : v;
    const y = top + (1 - t) * (height - top - bottom);
    parts.push(`<line x1="${left}" y1="${y.toFixed(1)}" x2="${width - right}" y2="${y.toFixed(1)}" stroke="#eee"/><text x="${left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmt(shown)}</text>`);
    const xv = x0 + t * (x1 - x0);
    parts.push(`<text x="${px(xv).toFixed(1)}" y="${height - bottom + 16}" text-anchor="middle">${Math.round(xv)}</text>`);
  }
  parts.push(`<text x="${(width - right + left) / 2}" y="${height - 4}" text-anchor="middle">iteration</text>`);
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts = s.points.filter(([, y]) => Number.isFinite(y) && (!options.log || y > 0));
    if (pts.length === 0) return;
    const d = pts.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.5"><title>${esc(s.name)}</title></path>`);
    if (pts.length === 1) parts.push(`<circle cx="${px(pts[0]![0]).toFixed(1)}" cy="${py(pts[0]![1]).toFixed(1)}" r="3" fill="${colour}"/>`);
    const ly = top + 6 + i * 18;
    parts.push(`<rect x="${width - right + 10}" y="${ly - 9}" width="12" height="12" fill="${colour}"/><text x="${width - right + 26}" y="${ly + 1}">${esc(s.name)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">${parts.join('')}</svg>`;
}

/** What the report says about the run besides the metrics. */
export interface TrainingReportInfo {
  readonly title?: string;
  /** Lines shown under the title (config, devices, weights, data …). */
  readonly details?: readonly (readonly [string, string])[];
}

/** The HTML report of a run from its metrics entries. */
export function trainingReportHtml(entries: readonly MetricsEntry[], info: TrainingReportInfo = {}): string {
  const iterations = entries.filter((e) => e.kind === 'iteration');
  const validations = entries.filter((e) => e.kind === 'validation');
  const lossKeys = [...new Set(iterations.flatMap((e) => Object.keys(e.values).filter((k) => k === 'total_loss' || k.startsWith('loss_'))))];
  const series = (key: string): (readonly [number, number])[] => iterations.filter((e) => key in e.values).map((e) => [e.iteration, e.values[key]!] as const);
  const losses = lineChart('Losses', lossKeys.map((k) => ({ name: k, points: series(k) })), { log: true });
  const lr = lineChart('Learning rate', [{ name: 'lr', points: series('lr') }]);
  const valKeys = [...new Set(validations.flatMap((e) => Object.keys(e.values)))];
  const valChart = validations.length > 0 ? lineChart('Validation', valKeys.map((k) => ({ name: k, points: validations.filter((e) => k in e.values).map((e) => [e.iteration, e.values[k]!] as const) }))) : '';
  const lastIt = iterations.at(-1);
  const firstIt = iterations[0]!;
  const summary: [string, string][] = [
    ['iterations', iterations.length > 0 ? `${firstIt.iteration} … ${lastIt!.iteration}` : 'none'],
    ...(lastIt && 'total_loss' in lastIt.values ? [['total loss (first → last)', `${fmt(firstIt.values.total_loss!)} → ${fmt(lastIt.values.total_loss!)}`] as [string, string]] : []),
    ...(iterations.length > 0 ? [['time per iteration (mean)', `${fmt(iterations.reduce((a, e) => a + (e.values.time ?? 0), 0) / iterations.length)} s`] as [string, string]] : []),
    ...(info.details ?? []).map(([k, v]) => [k, v] as [string, string]),
  ];
  const table = `<table>${summary.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
  const valTable =
    validations.length > 0
      ? `<h2>Validation</h2><table><tr><th>iteration</th>${valKeys.map((k) => `<th>${esc(k)}</th>`).join('')}</tr>${validations
          .map((e) => `<tr><td>${e.iteration + 1}</td>${valKeys.map((k) => `<td>${k in e.values ? fmt(e.values[k]!) : ''}</td>`).join('')}</tr>`)
          .join('')}</table>`
      : '';
  const title = esc(info.title ?? 'rcnn train report');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title><style>
body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}
</style></head><body><h1>${title}</h1>${table}${losses}${lr}${valChart}${valTable}</body></html>
`;
}
