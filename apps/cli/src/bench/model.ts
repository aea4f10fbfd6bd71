/** The data of a benchmark run, as written to the JSON report and drawn in the HTML one. */
import type { Distribution } from './stats.js';

/** Stages timed per image (milliseconds). */
export const STAGES = ['decodeMs', 'preprocessMs', 'sessionMs', 'transferMs', 'postprocessMs'] as const;

/** A timed stage. */
export type Stage = (typeof STAGES)[number];

/** Human names of the stages. */
export const STAGE_NAMES: Readonly<Record<Stage, string>> = {
  decodeMs: 'decode',
  preprocessMs: 'preprocess',
  sessionMs: 'session run',
  transferMs: 'thread transfer',
  postprocessMs: 'post-process',
};

/** One timed image. */
export interface Measurement {
  readonly image: string;
  readonly run: number;
  readonly device: string;
  readonly decodeMs: number;
  readonly preprocessMs: number;
  readonly sessionMs: number;
  /** Moving tensors to and from the session's worker thread (run minus session time). */
  readonly transferMs: number;
  readonly postprocessMs: number;
  /** All stages of this image (its batch's share is not divided: a batch's stages count for each image). */
  readonly totalMs: number;
  readonly batchSize: number;
  /** Detections (or proposals) found. */
  readonly found: number;
}

/** Statistics of a set of measurements. */
export interface Summary {
  readonly images: number;
  /** Images per second over the timed phase's wall time. */
  readonly imagesPerSecond: number;
  readonly latencyMs: Distribution;
  readonly stagesMs: Readonly<Record<Stage, Distribution>>;
  readonly found: Distribution;
}

/** The user's baseline model timed on the same images. */
export interface BaselineReport {
  readonly model: string;
  readonly inputMode: string;
  readonly device: string;
  /** Per image: rcnn-node's time (preprocess + run + post-process) and the baseline's (input tensor + run), alternating. */
  readonly pairs: readonly { readonly image: string; readonly run: number; readonly oursMs: number; readonly baselineMs: number; readonly oursSessionMs: number; readonly baselineSessionMs: number }[];
  readonly oursMs: Distribution;
  readonly baselineMs: Distribution;
  /** baseline p50 / rcnn-node p50: above 1 means rcnn-node is faster. */
  readonly ratio: number;
  readonly sessionRatio: number;
}

/** The whole benchmark report. */
export interface BenchReport {
  readonly tool: string;
  readonly date: string;
  readonly host: { readonly cpus: number; readonly cpuModel: string; readonly memoryGb: number; readonly node: string; readonly onnxruntime: string; readonly platform: string };
  readonly model: { readonly config: string; readonly weights: string; readonly randomWeights: boolean; readonly resolved: Readonly<Record<string, string>> };
  readonly warnings: readonly string[];
  readonly replicas: readonly { readonly device: string; readonly provider: string; readonly threads: number; readonly sessionCreateMs: number }[];
  readonly settings: { readonly runs: number; readonly warmup: number; readonly batch: number; readonly images: readonly { readonly file: string; readonly width: number; readonly height: number }[] };
  readonly startupMs: number;
  readonly warmupMs: number;
  readonly wallMs: number;
  readonly measurements: readonly Measurement[];
  readonly total: Summary;
  readonly perDevice: Readonly<Record<string, Summary>>;
  readonly baseline?: BaselineReport;
}
