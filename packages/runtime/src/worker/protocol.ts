/** Messages between the runtime and a session worker (one worker thread per replica). */
import type { HostTensor } from '@rcnn/core';

/** Everything a worker needs to open its onnxruntime session. */
export interface SessionInit {
  /** Serialised ModelProto (transferred, not copied), or a path to an .onnx file. */
  readonly model: Uint8Array | string;
  readonly device: { readonly kind: 'cpu' | 'cuda'; readonly id: number; readonly name: string };
  readonly intraOp: number;
  readonly interOp: number;
  readonly graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  /** onnxruntime's process-wide log level, applied before the first session of the process. */
  readonly logLevel: 'verbose' | 'info' | 'warning' | 'error' | 'fatal' | undefined;
  /** When CUDA cannot be used: create the session on CPU (true) or fail (strict mode). */
  readonly cpuFallback: boolean;
  /** onnxruntime profiling: JSON file prefix; the profile is written when the session is released. */
  readonly profilePrefix?: string;
}

/** Main thread → worker. */
export type WorkerRequest =
  | {
      readonly type: 'run';
      readonly id: number;
      readonly feeds: Readonly<Record<string, HostTensor>>;
      readonly fetches?: readonly string[];
      /** Feeds whose buffers go back to the main thread with the reply (lent, not given). */
      readonly lend?: readonly string[];
    }
  | { readonly type: 'release' };

/** A value's metadata as onnxruntime reports it. */
export interface ValueInfo {
  readonly name: string;
  readonly type: string | undefined;
  readonly shape: readonly (number | string)[] | undefined;
}

/** An error as it crosses the thread boundary. */
export interface WorkerFailure {
  readonly name: string;
  readonly message: string;
}

/** Worker → main thread. */
export type WorkerReply =
  | {
      readonly type: 'ready';
      readonly provider: 'cpu' | 'cuda';
      /** onnxruntime's reason when CUDA was asked for but the session had to be created on CPU. */
      readonly fallbackReason: string | undefined;
      readonly inputs: readonly ValueInfo[];
      readonly outputs: readonly ValueInfo[];
      readonly createMs: number;
    }
  | { readonly type: 'init-failed'; readonly error: WorkerFailure; readonly cudaError: string | undefined }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly outputs: Readonly<Record<string, HostTensor>>;
      readonly sessionMs: number;
      /** The lent feeds, moved back. */
      readonly returned?: Readonly<Record<string, HostTensor>>;
    }
  | { readonly type: 'run-failed'; readonly id: number; readonly error: WorkerFailure; readonly returned?: Readonly<Record<string, HostTensor>> }
  | { readonly type: 'released' };
