/** Per-operator times over several profiled runs: the median of each operator's time across the runs. */
import { type OrtProfileEvent, opTimes, runKernels } from '@rcnn/runtime';
import { median } from './stats.js';

/** Operator times of the profile's last `runs` runs, each the median over those runs; shares of their sum. */
export function medianOpTimes(events: readonly OrtProfileEvent[], runs: number): { ops: ReturnType<typeof opTimes>; kernelMs: number; runMs: number } {
  const spans = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const n = Math.max(1, Math.min(runs, spans.length));
  const perRun = Array.from({ length: n }, (_, i) => opTimes(runKernels(events, -1 - i)));
  const names = new Set(perRun.flatMap((r) => r.map((o) => o.op)));
  const rows = [...names].map((op) => {
    const ms = median(perRun.map((r) => r.find((o) => o.op === op)?.ms ?? 0));
    return { op, ms, nodes: perRun[0]!.find((o) => o.op === op)?.nodes ?? 0 };
  });
  const kernelMs = rows.reduce((a, r) => a + r.ms, 0);
  const ops = rows.map((r) => ({ ...r, share: kernelMs > 0 ? r.ms / kernelMs : 0 })).sort((a, b) => b.ms - a.ms);
  const runMs = median(spans.slice(-n).map((s) => s.dur / 1000));
  return { ops, kernelMs, runMs };
}
