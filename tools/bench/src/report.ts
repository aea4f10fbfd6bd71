/** The benchmark's printed report: one block per case, plain text that also reads as Markdown. */
import { type CaseReport, checkTargets, outsideShare } from './bench.js';
import { formatMs, ratio } from './stats.js';

const pad = (s: string, n: number): string => s.padEnd(n);
const padL = (s: string, n: number): string => s.padStart(n);
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const fmtRatio = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}x` : '-');

/** Formats one case's report. */
export function formatCase(r: CaseReport): string {
  const lines: string[] = [];
  const o = r.options;
  lines.push(`## ${r.name}: ${r.image.height}x${r.image.width} image, ${o.threads} intra-op thread(s), ${o.rounds} round(s) x ${o.runs} run(s), A (rcnn-node) B (baseline) alternating`);
  lines.push('');
  const a = r.rcnn.summary;
  const b = r.peer?.summary;
  if (a) {
    lines.push('```');
    lines.push(`${pad('median', 38)}${padL('rcnn-node', 12)}${padL('baseline', 12)}${padL('rcnn/baseline', 15)}`);
    const row = (label: string, x: number, y: number | undefined, unit: 'ms' | 'MB' = 'ms'): void => {
      const f = (v: number | undefined): string => (v === undefined ? '-' : unit === 'MB' ? `${v.toFixed(0)} MB` : formatMs(v));
      lines.push(`${pad(label, 38)}${padL(f(x), 12)}${padL(f(y), 12)}${padL(y === undefined ? '-' : fmtRatio(ratio(x, y)), 15)}`);
    };
    row('steady-state time per image', a.steadyMs, b?.steadyMs);
    row('session creation (InferenceSession)', a.sessionCreateMs, b?.sessionCreateMs);
    row('process start → ready to run', a.readyMs, b?.readyMs);
    row('first run', a.firstRunMs, b?.firstRunMs);
    row('process start → first result', a.firstResultAtMs, b?.firstResultAtMs);
    row('peak RSS', a.peakRssMb, b?.peakRssMb, 'MB');
    lines.push('```');
    const s = r.rcnn.stages!;
    lines.push(
      `rcnn-node steady state = file → results on the main thread: decode ${formatMs(s.decodeMs!)}, preprocess ${formatMs(s.preprocessMs!)}, ` +
        `session ${formatMs(s.sessionMs!)}, thread transfer ${formatMs(s.transferMs!)}, post-process ${formatMs(s.postprocessMs!)} (medians). ` +
        'Baseline = its session.run on input.f32 (its graph includes the transform and the mask paste / keypoint decode; no PNG decoding). ' +
        'Ready = process start → detector created (Node start-up, module loading, weights, graph build, serialisation, session) vs process start → InferenceSession created.',
    );
    lines.push('');
  }
  if (r.profile) {
    const p = r.profile;
    const sessionMs = r.rcnn.stages?.sessionMs ?? p.runMs;
    const f = p.flops;
    lines.push(
      `forward: ${(f.total / 1e9).toFixed(1)} GFLOP (conv ${(f.conv / 1e9).toFixed(1)}, deconv ${(f.deconv / 1e9).toFixed(1)}, gemm ${(f.gemm / 1e9).toFixed(1)}, matmul ${(f.matmul / 1e9).toFixed(2)}; ${f.nodes} nodes, counted at this image's shapes) ` +
        `in ${formatMs(sessionMs)} = ${(f.total / 1e9 / (sessionMs / 1000)).toFixed(0)} GFLOP/s` +
        (r.conv ? `; one 3x3 conv ${r.conv.gflop.toFixed(1)} GFLOP: ${r.conv.gflopPerSecond.toFixed(0)} GFLOP/s (forward at ${pct(f.total / 1e9 / (sessionMs / 1000) / r.conv.gflopPerSecond)} of it)` : ''),
    );
    lines.push('');
    const opLine = (ops: readonly { op: string; ms: number; share: number }[]): string =>
      ops
        .filter((x) => x.share >= 0.001)
        .map((x) => `${x.op} ${pct(x.share)}`)
        .join(', ');
    lines.push(`ORT profile, rcnn-node (median of ${o.profileRuns} run(s), ${formatMs(p.kernelMs)} of kernels): ${opLine(p.ops)}; outside Conv/ConvTranspose/Gemm kernels: ${pct(outsideShare(p.ops))}`);
    if (r.peer?.profile) {
      const q = r.peer.profile;
      lines.push('');
      lines.push(`ORT profile, baseline (median of ${o.profileRuns} run(s), ${formatMs(q.kernelMs)} of kernels): ${opLine(q.ops)}; outside Conv/ConvTranspose/Gemm kernels: ${pct(outsideShare(q.ops))}`);
    }
    lines.push('');
    lines.push(`rcnn-node vs reference (parity harness rules): ${p.check.map((c) => `${c.pass ? 'ok' : 'FAIL'} ${c.name} (${c.detail})`).join('; ')}`);
    if (r.peer?.check) {
      const c = r.peer.check;
      lines.push(`baseline vs reference (time_peer.cjs --check): ${c.pass ? 'pass' : 'FAIL'} ${JSON.stringify(c)}`);
    }
    lines.push('');
  } else if (r.conv) {
    lines.push(`one 3x3 conv ${r.conv.gflop.toFixed(1)} GFLOP: ${r.conv.gflopPerSecond.toFixed(0)} GFLOP/s`);
    lines.push('');
  }
  if (r.throughput.length > 0) {
    lines.push('```');
    lines.push(`${pad('throughput (rcnn-node, same image)', 42)}${padL('images', 8)}${padL('images/s', 10)}${padL('vs b1 r1', 10)}${padL('peak RSS', 11)}`);
    const base = r.throughput.find((t) => t.batch === 1 && t.replicas === 1);
    for (const t of r.throughput) {
      const threads = t.replicas === 1 ? `${o.threads} threads` : `${Math.max(1, Math.floor(o.threads / t.replicas))} thread(s) each`;
      lines.push(
        `${pad(`batch ${t.batch}, ${t.replicas} replica(s) (${threads})`, 42)}${padL(String(t.images), 8)}${padL(t.imagesPerSecond.toFixed(3), 10)}${padL(base ? fmtRatio(t.imagesPerSecond / base.imagesPerSecond) : '-', 10)}${padL(`${t.peakRssMb.toFixed(0)} MB`, 11)}`,
      );
    }
    if (r.peerImagesPerSecond !== undefined) lines.push(`${pad('baseline (batch 1, 1 session)', 42)}${padL('-', 8)}${padL(r.peerImagesPerSecond.toFixed(3), 10)}`);
    lines.push('```');
    lines.push('');
  }
  const targets = checkTargets(r);
  if (targets.length > 0) {
    lines.push('```');
    lines.push(`${pad('target', 44)}${pad('goal', 30)}${pad('measured', 28)}met`);
    for (const t of targets) lines.push(`${pad(t.name, 44)}${pad(t.target, 30)}${pad(t.value, 28)}${t.met === undefined ? '-' : t.met ? 'yes' : 'NO'}`);
    lines.push('```');
  }
  return lines.join('\n');
}
