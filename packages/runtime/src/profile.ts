/**
 * Reading onnxruntime's profiler output (the JSON trace a session writes when created with
 * `profile`): kernel time per operator type and where each node ran. The placement is what to
 * check before trusting GPU timings: with the CUDA execution provider, operators it has no kernel
 * for (or declines, such as shape arithmetic) run on the CPU with copies in between
 * (onnxruntime issues 21990, 17434), and the trace records the provider of every node it ran.
 */
import { readFile } from 'node:fs/promises';

/** One event of an onnxruntime profile (the fields rcnn-node reads). */
export interface OrtProfileEvent {
  readonly cat: string;
  readonly name: string;
  /** Start, microseconds since the profile began. */
  readonly ts: number;
  /** Duration, microseconds. */
  readonly dur: number;
  readonly args?: {
    readonly op_name?: string;
    readonly provider?: string;
    readonly input_type_shape?: readonly Readonly<Record<string, readonly number[]>>[];
    readonly output_type_shape?: readonly Readonly<Record<string, readonly number[]>>[];
    /** Bytes of the node's allocator in use after the kernel ran (decimal string; onnxruntime ≥ 1.2x). */
    readonly mem_bytes_in_use?: string;
    /** Bytes the allocator's arena holds (reserved from the system) after the kernel ran. */
    readonly mem_arena_held?: string;
  };
}

/** A node's kernel execution in one run. */
export interface KernelEvent {
  /** Node name as onnxruntime reports it (fused and layout-transformed nodes get new names). */
  readonly node: string;
  readonly op: string;
  readonly provider: string;
  /** The kernel's duration; for an If / Loop / Scan this includes the nodes of its subgraph. */
  readonly ms: number;
  /** The duration minus that of the nodes run inside it (their own events): what the node itself took. */
  readonly selfMs: number;
  readonly inputShapes: readonly (readonly number[])[];
  readonly outputShapes: readonly (readonly number[])[];
  /** The allocator's bytes in use after the kernel, where the profile records it. */
  readonly bytesInUse?: number;
  /** The allocator's arena size after the kernel, where the profile records it. */
  readonly arenaHeldBytes?: number;
}

/** The memory of one run as the profile records it per kernel (see {@link runMemory}). */
export interface RunMemory {
  /** The largest allocator use after any kernel, and the kernel after which it was reached. */
  readonly peakInUseBytes: number;
  readonly peakNode: string;
  /** The largest arena size: what the allocator reserved (and the process may keep resident). */
  readonly arenaHeldBytes: number;
}

/**
 * The peak memory in use and the arena size of a run's kernels (from {@link runKernels}), or
 * undefined when the profile has no memory fields. What tells activations kept too long (the peak
 * and where) from the arena's power-of-two growth (held against peak) — docs/performance.md, round 5.
 */
export function runMemory(kernels: readonly KernelEvent[]): RunMemory | undefined {
  let peak: KernelEvent | undefined;
  let held = 0;
  for (const k of kernels) {
    if (k.bytesInUse !== undefined && (peak === undefined || k.bytesInUse > peak.bytesInUse!)) peak = k;
    held = Math.max(held, k.arenaHeldBytes ?? 0);
  }
  return peak ? { peakInUseBytes: peak.bytesInUse!, peakNode: peak.node, arenaHeldBytes: held } : undefined;
}

/** A profile's decimal-string byte count as a number (undefined when absent or not a count). */
function byteCount(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

const KERNEL_SUFFIX = '_kernel_time';

/** Reads a profile file written by onnxruntime. */
export async function readOrtProfile(path: string): Promise<OrtProfileEvent[]> {
  const events = JSON.parse(await readFile(path, 'utf8')) as unknown;
  if (!Array.isArray(events)) throw new Error(`${path} is not an onnxruntime profile (expected a JSON array of events)`);
  return events as OrtProfileEvent[];
}

/** Shapes of a profile event's type/shape list ([{"float": [1, 3]}, …]). */
const shapes = (list: readonly Readonly<Record<string, readonly number[]>>[] | undefined): number[][] => (list ?? []).map((entry) => [...(Object.values(entry)[0] ?? [])]);

/**
 * The kernel events of run `run` of the profile (0 = first; negative counts from the end: -1 =
 * the last run). Runs are the `model_run` session events; a node belongs to the run whose span
 * contains its start.
 */
export function runKernels(events: readonly OrtProfileEvent[], run = -1): KernelEvent[] {
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  if (runs.length === 0) throw new Error('the profile has no model_run event (was the session run before it was released?)');
  const span = runs[run < 0 ? runs.length + run : run];
  if (!span) throw new Error(`the profile has ${runs.length} run(s); run ${run} does not exist`);
  const kernels = events
    .filter((e) => e.cat === 'Node' && e.name.endsWith(KERNEL_SUFFIX) && e.ts >= span.ts && e.ts <= span.ts + span.dur)
    .sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  // Control-flow nodes (If, Loop) span the nodes of their subgraphs, which have events of their
  // own: each event's direct children are the events starting inside it, found with a stack of
  // the enclosing spans, and only its remaining (exclusive) time counts as its own.
  const childUs = new Array<number>(kernels.length).fill(0);
  const open: number[] = [];
  kernels.forEach((e, i) => {
    while (open.length > 0) {
      const top = kernels[open[open.length - 1]!]!;
      if (e.ts < top.ts + top.dur) break;
      open.pop();
    }
    if (open.length > 0) childUs[open[open.length - 1]!]! += e.dur;
    open.push(i);
  });
  return kernels.map((e, i) => ({
    node: e.name.slice(0, -KERNEL_SUFFIX.length),
    op: e.args?.op_name ?? '?',
    provider: e.args?.provider ?? '?',
    ms: e.dur / 1000,
    selfMs: Math.max(0, e.dur - childUs[i]!) / 1000,
    inputShapes: shapes(e.args?.input_type_shape),
    outputShapes: shapes(e.args?.output_type_shape),
    ...optionalBytes('bytesInUse', byteCount(e.args?.mem_bytes_in_use)),
    ...optionalBytes('arenaHeldBytes', byteCount(e.args?.mem_arena_held)),
  }));
}

const optionalBytes = <K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> => (value === undefined ? {} : ({ [key]: value } as Record<K, number>));

/** Kernel time per operator type (exclusive: a subgraph's nodes count for their own types), largest first. */
export function opTimes(kernels: readonly KernelEvent[]): { readonly op: string; readonly ms: number; readonly share: number; readonly nodes: number }[] {
  const byOp = new Map<string, { ms: number; nodes: number }>();
  let total = 0;
  for (const k of kernels) {
    const entry = byOp.get(k.op) ?? { ms: 0, nodes: 0 };
    entry.ms += k.selfMs;
    entry.nodes++;
    byOp.set(k.op, entry);
    total += k.selfMs;
  }
  return [...byOp].map(([op, v]) => ({ op, ms: v.ms, share: total > 0 ? v.ms / total : 0, nodes: v.nodes })).sort((a, b) => b.ms - a.ms);
}

/** Where the nodes of one run executed. */
export interface NodePlacement {
  /** Per execution provider: nodes and their kernel time. */
  readonly providers: readonly { readonly provider: string; readonly nodes: number; readonly ms: number }[];
  /** Nodes that ran on the CPU provider (all of them when no other provider ran anything). */
  readonly cpuNodes: readonly { readonly node: string; readonly op: string; readonly ms: number }[];
  /** Copies between devices that onnxruntime inserted (MemcpyToHost / MemcpyFromHost). */
  readonly copies: readonly { readonly node: string; readonly op: string; readonly ms: number; readonly shape: readonly number[] }[];
}

/** The placement of every node of a run (see the module doc). */
export function nodePlacement(kernels: readonly KernelEvent[]): NodePlacement {
  const byProvider = new Map<string, { nodes: number; ms: number }>();
  for (const k of kernels) {
    const entry = byProvider.get(k.provider) ?? { nodes: 0, ms: 0 };
    entry.nodes++;
    entry.ms += k.selfMs;
    byProvider.set(k.provider, entry);
  }
  return {
    providers: [...byProvider].map(([provider, v]) => ({ provider, ...v })).sort((a, b) => b.ms - a.ms),
    cpuNodes: kernels.filter((k) => k.provider === 'CPUExecutionProvider').map((k) => ({ node: k.node, op: k.op, ms: k.selfMs })),
    copies: kernels.filter((k) => k.op.startsWith('Memcpy')).map((k) => ({ node: k.node, op: k.op, ms: k.selfMs, shape: k.outputShapes[0] ?? [] })),
  };
}

/** A one-screen report of {@link nodePlacement}: providers, the CPU nodes grouped by operator, the copies. */
export function describePlacement(p: NodePlacement): string {
  const lines: string[] = [];
  const total = p.providers.reduce((a, b) => a + b.nodes, 0);
  for (const e of p.providers) lines.push(`${e.provider}: ${e.nodes} of ${total} nodes, ${e.ms.toFixed(1)} ms`);
  const others = p.providers.some((e) => e.provider !== 'CPUExecutionProvider');
  if (others && p.cpuNodes.length > 0) {
    const byOp = new Map<string, { n: number; ms: number }>();
    for (const c of p.cpuNodes) {
      const e = byOp.get(c.op) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += c.ms;
      byOp.set(c.op, e);
    }
    lines.push('on the CPU (by operator, kernel time):');
    for (const [op, e] of [...byOp].sort((a, b) => b[1].ms - a[1].ms)) lines.push(`  ${op.padEnd(24)} ${String(e.n).padStart(4)} node(s) ${e.ms.toFixed(2).padStart(9)} ms`);
  }
  if (p.copies.length > 0) {
    const ms = p.copies.reduce((a, c) => a + c.ms, 0);
    lines.push(`device copies: ${p.copies.length}, ${ms.toFixed(2)} ms`);
  }
  if (!others) lines.push('every node ran on the CPU execution provider');
  return lines.join('\n');
}
