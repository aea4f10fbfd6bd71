/**
 * The benchmark of one perf case: rcnn-node against the baseline, alternating A B A B in separate
 * processes, then profiles, the FLOP count, a conv probe and throughput.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childResult, runNode } from './child.js';
import { type PeerProfile, type PeerSetup, type PeerSteady, profilePeer, timePeer } from './peer.js';
import type { ConvProbeResult, ProfileResult, RcnnTask, SteadyResult, ThroughputResult } from './rcnn-child.js';
import { median, ratio } from './stats.js';

/** Sections of the benchmark. */
export const SECTIONS = ['steady', 'profile', 'conv', 'throughput'] as const;
/** A section of the benchmark. */
export type Section = (typeof SECTIONS)[number];

/** Settings of a benchmark run. */
export interface BenchOptions {
  /** A B rounds (each side one process per round). */
  readonly rounds: number;
  /** Timed runs per process after the first. */
  readonly runs: number;
  /** onnxruntime intra-op threads, both sides. */
  readonly threads: number;
  readonly sections: readonly Section[];
  /** The baseline, or undefined to time rcnn-node alone. */
  readonly peer: PeerSetup | undefined;
  /** Images per throughput measurement. */
  readonly throughputImages: number;
  readonly batches: readonly number[];
  readonly replicas: readonly number[];
  /** The conv probe's [C, H, W]. */
  readonly probe: readonly [number, number, number];
  /** Profiled runs per side (per-operator medians over them). */
  readonly profileRuns: number;
}

/** Medians of one side. */
export interface SideSummary {
  /** Steady-state time per image (rcnn-node: file → results; baseline: session.run), ms. */
  readonly steadyMs: number;
  /** onnxruntime InferenceSession.create, ms. */
  readonly sessionCreateMs: number;
  /** Process start → ready to run (rcnn-node: module loading + createDetector; baseline: until its session exists), ms. */
  readonly readyMs: number;
  /** Process start → first result, ms. */
  readonly firstResultAtMs: number;
  /** The first run alone, ms. */
  readonly firstRunMs: number;
  readonly peakRssMb: number;
}

/** Everything measured on one case. */
export interface CaseReport {
  readonly name: string;
  readonly caseDir: string;
  readonly image: { readonly width: number; readonly height: number };
  readonly options: Omit<BenchOptions, 'peer'> & { readonly peer: string | undefined };
  readonly rcnn: { readonly steady: readonly SteadyResult[]; readonly summary: SideSummary | undefined; readonly stages: Readonly<Record<string, number>> | undefined };
  readonly peer: { readonly steady: readonly PeerSteady[]; readonly summary: SideSummary | undefined; readonly check: PeerSteady['check'] | undefined; readonly profile: PeerProfile | undefined } | undefined;
  readonly profile: ProfileResult | undefined;
  readonly conv: ConvProbeResult | undefined;
  readonly throughput: readonly ThroughputResult[];
  /** Peer images/s (1 / its steady time), for the throughput table. */
  readonly peerImagesPerSecond: number | undefined;
}

const here = dirname(fileURLToPath(import.meta.url));

/** Runs one rcnn-node task in a fresh process. */
export async function rcnnTask<T>(task: RcnnTask): Promise<T> {
  return childResult<T>(await runNode([join(here, 'rcnn-child.js'), JSON.stringify(task)], { timeoutMs: 20 * 60_000 }));
}

function rcnnSummary(s: readonly SteadyResult[]): SideSummary {
  return {
    steadyMs: median(s.flatMap((r) => r.runs.map((x) => x.totalMs))),
    sessionCreateMs: median(s.map((r) => r.sessionCreateMs)),
    readyMs: median(s.map((r) => r.startupMs + r.createMs)),
    firstResultAtMs: median(s.map((r) => r.firstResultAtMs)),
    firstRunMs: median(s.map((r) => r.firstMs)),
    peakRssMb: median(s.map((r) => r.peakRssMb)),
  };
}

function peerSummary(s: readonly PeerSteady[]): SideSummary {
  return {
    steadyMs: median(s.flatMap((r) => r.runsMs)),
    sessionCreateMs: median(s.map((r) => r.createMs)),
    readyMs: median(s.map((r) => r.firstResultAtMs - r.firstMs)),
    firstResultAtMs: median(s.map((r) => r.firstResultAtMs)),
    firstRunMs: median(s.map((r) => r.firstMs)),
    peakRssMb: median(s.map((r) => r.peakRssMb)),
  };
}

/** Runs the benchmark on `caseDir`; `log` gets one line per finished measurement. */
export async function benchCase(caseDir: string, o: BenchOptions, log: (line: string) => void = () => undefined): Promise<CaseReport> {
  const caseJson = JSON.parse(readFileSync(join(caseDir, 'case.json'), 'utf8')) as { name?: string; images: { width: number; height: number }[] };
  const name = caseJson.name ?? basename(caseDir);
  const has = (s: Section): boolean => o.sections.includes(s);
  const rcnnSteady: SteadyResult[] = [];
  const peerSteady: PeerSteady[] = [];

  if (has('steady')) {
    for (let round = 0; round < o.rounds; round++) {
      const a = await rcnnTask<SteadyResult>({ mode: 'steady', caseDir, threads: o.threads, runs: o.runs });
      rcnnSteady.push(a);
      log(`${name} round ${round + 1}/${o.rounds} A rcnn-node: ${a.runs.map((r) => r.totalMs.toFixed(0)).join(', ')} ms`);
      if (o.peer) {
        const b = await timePeer(o.peer, caseDir, { runs: o.runs, threads: o.threads });
        peerSteady.push(b);
        log(`${name} round ${round + 1}/${o.rounds} B baseline:  ${b.runsMs.map((r) => r.toFixed(0)).join(', ')} ms`);
      }
    }
  }

  let peerCheck: PeerSteady['check'];
  let peerProfile: PeerProfile | undefined;
  let profile: ProfileResult | undefined;
  if (has('profile')) {
    profile = await rcnnTask<ProfileResult>({ mode: 'profile', caseDir, threads: o.threads, runs: o.profileRuns });
    log(`${name} rcnn-node profiled (${profile.runMs.toFixed(0)} ms run, ${(profile.flops.total / 1e9).toFixed(1)} GFLOP)`);
    if (o.peer) {
      peerCheck = (await timePeer(o.peer, caseDir, { runs: 0, threads: o.threads, check: true })).check;
      peerProfile = await profilePeer(caseDir, o.threads, o.profileRuns);
      log(`${name} baseline profiled (${peerProfile.runMs.toFixed(0)} ms run)`);
    }
  }

  let conv: ConvProbeResult | undefined;
  if (has('conv')) {
    const [channels, height, width] = o.probe;
    conv = await rcnnTask<ConvProbeResult>({ mode: 'conv', threads: o.threads, channels, height, width, runs: 3 });
    log(`conv probe: ${conv.gflopPerSecond.toFixed(0)} GFLOP/s`);
  }

  const throughput: ThroughputResult[] = [];
  if (has('throughput')) {
    const configs = [...o.batches.map((batch) => ({ batch, replicas: 1 })), ...o.replicas.filter((r) => r !== 1).map((replicas) => ({ batch: 1, replicas }))];
    for (const c of configs) {
      // The images split evenly over batches and replicas.
      const unit = c.batch * c.replicas;
      const images = Math.max(unit, Math.ceil(o.throughputImages / unit) * unit);
      // One replica gets every thread; several split them (the runtime's default).
      const t = await rcnnTask<ThroughputResult>({ mode: 'throughput', caseDir, batch: c.batch, replicas: c.replicas, images, ...(c.replicas === 1 ? { threads: o.threads } : {}) });
      throughput.push(t);
      log(`${name} throughput batch ${c.batch} x ${c.replicas} replica(s): ${t.imagesPerSecond.toFixed(3)} images/s`);
    }
  }

  const peerSum = peerSteady.length > 0 ? peerSummary(peerSteady) : undefined;
  return {
    name,
    caseDir,
    image: { width: caseJson.images[0]!.width, height: caseJson.images[0]!.height },
    options: { ...o, peer: o.peer?.tool },
    rcnn: {
      steady: rcnnSteady,
      summary: rcnnSteady.length > 0 ? rcnnSummary(rcnnSteady) : undefined,
      stages:
        rcnnSteady.length > 0
          ? Object.fromEntries(
              (['decodeMs', 'preprocessMs', 'sessionMs', 'transferMs', 'postprocessMs'] as const).map((k) => [k, median(rcnnSteady.flatMap((r) => r.runs.map((x) => x[k])))]),
            )
          : undefined,
    },
    peer: o.peer ? { steady: peerSteady, summary: peerSum, check: peerCheck, profile: peerProfile } : undefined,
    profile,
    conv,
    throughput,
    peerImagesPerSecond: peerSum ? 1000 / peerSum.steadyMs : undefined,
  };
}

/** Steady-state targets of the issue (rcnn-node / baseline), by case name prefix. */
export const STEADY_TARGETS: Readonly<Record<string, number>> = { maskrcnn: 0.75, keypointrcnn: 0.85 };

/** Operators that are matrix-multiplication kernels (Conv, ConvTranspose, Gemm and their fused forms). */
export const GEMM_CLASS = new Set(['Conv', 'FusedConv', 'ConvTranspose', 'Gemm', 'FusedGemm', 'MatMul', 'FusedMatMul']);

/** Share of kernel time outside Conv / ConvTranspose / Gemm (and MatMul) kernels. */
export function outsideShare(ops: readonly { readonly op: string; readonly ms: number }[]): number {
  const total = ops.reduce((a, o) => a + o.ms, 0);
  const inside = ops.filter((o) => GEMM_CLASS.has(o.op)).reduce((a, o) => a + o.ms, 0);
  return total > 0 ? 1 - inside / total : Number.NaN;
}

/** A target and whether it is met. */
export interface TargetCheck {
  readonly name: string;
  readonly target: string;
  readonly value: string;
  readonly met: boolean | undefined;
}

/** The targets for one case, judged on its report. */
export function checkTargets(r: CaseReport): TargetCheck[] {
  const out: TargetCheck[] = [];
  const a = r.rcnn.summary;
  const b = r.peer?.summary;
  const steadyTarget = Object.entries(STEADY_TARGETS).find(([prefix]) => r.name.startsWith(prefix))?.[1];
  if (a && b) {
    const steady = ratio(a.steadyMs, b.steadyMs);
    if (steadyTarget !== undefined) out.push({ name: 'steady-state time per image', target: `≤ ${steadyTarget.toFixed(2)}x baseline`, value: `${steady.toFixed(2)}x`, met: steady <= steadyTarget });
    const create = ratio(a.sessionCreateMs, b.sessionCreateMs);
    out.push({ name: 'session creation', target: '≤ 1.00x baseline', value: `${create.toFixed(2)}x`, met: create <= 1 });
    const rss = ratio(a.peakRssMb, b.peakRssMb);
    out.push({ name: 'peak RSS', target: '≤ 1.00x baseline', value: `${rss.toFixed(2)}x`, met: rss <= 1 });
    out.push({ name: 'process start → first result', target: 'reported', value: `${(a.firstResultAtMs / 1000).toFixed(2)} s vs ${(b.firstResultAtMs / 1000).toFixed(2)} s`, met: true });
  }
  if (r.profile) {
    const share = outsideShare(r.profile.ops);
    out.push({ name: 'time outside Conv/ConvTranspose/Gemm', target: '≤ 10% of the forward', value: `${(100 * share).toFixed(1)}%`, met: share <= 0.1 });
    const failed = r.profile.check.filter((c) => !c.pass);
    out.push({ name: 'outputs vs reference (parity tolerances)', target: 'all det.* within tolerance', value: failed.length === 0 ? `${r.profile.check.length} checks pass` : `${failed.length} fail`, met: failed.length === 0 });
  }
  if (r.throughput.length > 0) {
    // "Scales without regressions": more images per batch or more replicas never lose more than
    // the run-to-run noise (5%) of images/s against batch 1 on one replica.
    const base = r.throughput.find((t) => t.batch === 1 && t.replicas === 1);
    if (base) {
      const worst = Math.min(...r.throughput.map((t) => t.imagesPerSecond / base.imagesPerSecond));
      out.push({ name: 'throughput vs batch 1, 1 replica', target: 'no config below 0.95x', value: `worst ${worst.toFixed(2)}x`, met: worst >= 0.95 });
    }
  }
  return out;
}
