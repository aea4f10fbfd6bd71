/** A self-contained HTML page of a benchmark report: tables and inline SVG charts, no external assets. */
import { type BenchReport, STAGES, STAGE_NAMES, type Summary } from './model.js';

const COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const ms = (v: number): string => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '–');

/** Stacked bars of the mean stage times of each device (and the total). */
function stageChart(rows: readonly [string, Summary][]): string {
  const width = 760;
  const left = 110;
  const barH = 26;
  const height = rows.length * (barH + 12) + 50;
  const maxTotal = Math.max(...rows.map(([, s]) => STAGES.reduce((a, st) => a + s.stagesMs[st].mean, 0)), 1);
  const scale = (width - left - 80) / maxTotal;
  const parts: string[] = [];
  rows.forEach(([name, s], r) => {
    const y = 10 + r * (barH + 12);
    parts.push(`<text x="${left - 8}" y="${y + barH / 2 + 4}" text-anchor="end">${esc(name)}</text>`);
    let x = left;
    STAGES.forEach((st, i) => {
      const w = s.stagesMs[st].mean * scale;
      if (w > 0) parts.push(`<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLOURS[i]}"><title>${STAGE_NAMES[st]}: ${ms(s.stagesMs[st].mean)} ms</title></rect>`);
      x += w;
    });
    parts.push(`<text x="${(x + 4).toFixed(1)}" y="${y + barH / 2 + 4}">${ms(x / scale - left / scale)} ms</text>`);
  });
  const legendY = height - 18;
  STAGES.forEach((st, i) => {
    const x = left + i * 130;
    parts.push(`<rect x="${x}" y="${legendY - 10}" width="12" height="12" fill="${COLOURS[i]}"/><text x="${x + 16}" y="${legendY}">${STAGE_NAMES[st]}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">${parts.join('')}</svg>`;
}

/** One bar per timed image (latency), coloured by device, with the p50 / p95 lines. */
function latencyChart(report: BenchReport): string {
  const m = report.measurements;
  const width = 760;
  const height = 240;
  const left = 50;
  const bottom = 30;
  const maxV = Math.max(...m.map((x) => x.totalMs), 1) * 1.1;
  const bw = Math.max(2, Math.min(40, (width - left - 10) / Math.max(1, m.length) - 2));
  const devices = [...new Set(m.map((x) => x.device))];
  const y = (v: number): number => height - bottom - (v / maxV) * (height - bottom - 10);
  const parts: string[] = [`<line x1="${left}" y1="${height - bottom}" x2="${width}" y2="${height - bottom}" stroke="#888"/>`];
  for (const t of [0.25, 0.5, 0.75, 1]) parts.push(`<text x="${left - 6}" y="${y(maxV * t) + 4}" text-anchor="end">${ms(maxV * t)}</text>`);
  m.forEach((x, i) => {
    const c = COLOURS[devices.indexOf(x.device) % COLOURS.length];
    parts.push(`<rect x="${(left + 4 + i * (bw + 2)).toFixed(1)}" y="${y(x.totalMs).toFixed(1)}" width="${bw.toFixed(1)}" height="${(height - bottom - y(x.totalMs)).toFixed(1)}" fill="${c}"><title>${esc(x.image)} run ${x.run} on ${esc(x.device)}: ${ms(x.totalMs)} ms</title></rect>`);
  });
  for (const [label, v, colour] of [
    ['p50', report.total.latencyMs.p50, '#222'],
    ['p95', report.total.latencyMs.p95, '#c00'],
  ] as const) {
    parts.push(`<line x1="${left}" y1="${y(v).toFixed(1)}" x2="${width}" y2="${y(v).toFixed(1)}" stroke="${colour}" stroke-dasharray="4 3"/><text x="${width - 4}" y="${(y(v) - 4).toFixed(1)}" text-anchor="end" fill="${colour}">${label} ${ms(v)} ms</text>`);
  }
  devices.forEach((d, i) => parts.push(`<rect x="${left + i * 120}" y="${height - 14}" width="12" height="12" fill="${COLOURS[i % COLOURS.length]}"/><text x="${left + 16 + i * 120}" y="${height - 4}">${esc(d)}</text>`));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">${parts.join('')}</svg>`;
}

function baselineChart(report: BenchReport): string {
  const b = report.baseline!;
  const width = 760;
  const left = 150;
  const rows: [string, number][] = [
    ['rcnn-node p50', b.oursMs.p50],
    ['baseline p50', b.baselineMs.p50],
  ];
  const maxV = Math.max(...rows.map((r) => r[1]), 1);
  const parts = rows.map(([name, v], i) => {
    const w = (v / maxV) * (width - left - 90);
    return `<text x="${left - 8}" y="${22 + i * 36}" text-anchor="end">${name}</text><rect x="${left}" y="${8 + i * 36}" width="${w.toFixed(1)}" height="24" fill="${COLOURS[i]}"/><text x="${(left + w + 6).toFixed(1)}" y="${24 + i * 36}">${ms(v)} ms</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="84" font-family="sans-serif" font-size="12">${parts.join('')}</svg>`;
}

function summaryRow(name: string, s: Summary): string {
  const cells = STAGES.map((st) => `<td>${ms(s.stagesMs[st].mean)}</td>`).join('');
  return `<tr><th>${esc(name)}</th><td>${s.images}</td>${cells}<td>${ms(s.latencyMs.p50)}</td><td>${ms(s.latencyMs.p95)}</td><td>${s.imagesPerSecond.toFixed(3)}</td></tr>`;
}

/** The report as one HTML document. */
export function renderHtml(report: BenchReport): string {
  const devices = Object.entries(report.perDevice);
  const rows: [string, Summary][] = devices.length > 1 ? [...devices, ['total', report.total]] : devices;
  const warnings = report.warnings.map((w) => `<p class="warn">${esc(w)}</p>`).join('');
  const baseline = report.baseline
    ? `<h2>Baseline</h2><p>${esc(report.baseline.model)} (${esc(report.baseline.inputMode)} input, ${esc(report.baseline.device)}), timed alternately with rcnn-node on the same images.
       Ratio baseline / rcnn-node (p50 per image): <b>${report.baseline.ratio.toFixed(2)}</b>; session run only: ${report.baseline.sessionRatio.toFixed(2)}.</p>${baselineChart(report)}`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rcnn bench: ${esc(report.model.config)}</title>
<style>
body{font-family:sans-serif;margin:24px;color:#222;max-width:900px}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{text-align:left;background:#f4f4f4}
.warn{background:#c00;color:#fff;padding:8px 12px;font-weight:bold}
code{background:#f4f4f4;padding:1px 4px}
</style></head><body>
<h1>rcnn bench</h1>
${warnings}
<p><b>${esc(report.model.config)}</b>, weights: ${esc(report.model.weights)}<br>
${report.replicas.map((r) => `${esc(r.device)} (${esc(r.provider)}, ${r.threads} threads)`).join(', ')};
${report.settings.runs} run(s) of ${report.settings.images.length} image(s), batch ${report.settings.batch}, ${report.settings.warmup} warm-up image(s) per replica<br>
host: ${esc(report.host.cpuModel)} x ${report.host.cpus}, ${report.host.memoryGb} GB, Node ${esc(report.host.node)}, onnxruntime ${esc(report.host.onnxruntime)}; ${esc(report.date)}</p>
<p>start-up (model build + sessions) ${ms(report.startupMs)} ms, warm-up ${ms(report.warmupMs)} ms, timed phase ${ms(report.wallMs)} ms</p>
<h2>Per image (mean ms per stage)</h2>
<table><tr><th></th><th>images</th>${STAGES.map((s) => `<th>${STAGE_NAMES[s]}</th>`).join('')}<th>p50</th><th>p95</th><th>images/s</th></tr>
${rows.map(([n, s]) => summaryRow(n, s)).join('\n')}</table>
${stageChart(rows)}
<h2>Latency of each timed image</h2>
${latencyChart(report)}
${baseline}
<h2>Images</h2><ul>${report.settings.images.map((i) => `<li><code>${esc(i.file)}</code> ${i.width} x ${i.height}</li>`).join('')}</ul>
</body></html>
`;
}
