/** onnxruntime thread settings per replica, split sensibly between the replicas of one process. */
import { availableParallelism } from 'node:os';
import type { Device } from './devices.js';

/** Threads of one onnxruntime session. */
export interface ThreadSettings {
  /** Threads inside one operator (onnxruntime `intraOpNumThreads`). */
  readonly intraOp: number;
  /** Threads running independent operators in parallel (only used with the parallel execution mode). */
  readonly interOp: number;
}

/**
 * Default threads for each replica: the cores are split evenly between the CPU replicas (each
 * gets at least one); a GPU replica gets the cores' share left for the few operators that
 * onnxruntime runs on the host, but at most 2 so it never competes with the CPU replicas.
 * `overrides` (e.g. `--threads`) win.
 */
export function defaultThreads(devices: readonly Device[], overrides: Partial<ThreadSettings> = {}, cores = availableParallelism()): ThreadSettings[] {
  const cpuReplicas = devices.filter((d) => d.kind === 'cpu').length;
  const perCpu = Math.max(1, Math.floor(cores / Math.max(1, cpuReplicas)));
  const perGpu = Math.max(1, Math.min(2, Math.floor(cores / Math.max(1, devices.length))));
  return devices.map((d) => ({
    intraOp: overrides.intraOp ?? (d.kind === 'cpu' ? perCpu : perGpu),
    interOp: overrides.interOp ?? 1,
  }));
}
