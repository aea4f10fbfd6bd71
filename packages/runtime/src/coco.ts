/**
 * Results as COCO-style JSON: `images`, `categories` and `annotations` (bbox [x, y, w, h], score,
 * category id and name, RLE segmentation from the pasted masks, keypoints [x, y, v] * K), plus the
 * images that failed and, for random weights, a warning that no one can miss. The `annotations`
 * array is a valid COCO results list (pycocotools `loadRes`).
 */
import type { RcnnConfig } from '@rcnn/core';
import type { ModelLabels } from './categories.js';
import { RANDOM_WEIGHTS_WARNING, type ImageResult, type PredictOutcome, type StageTimings } from './detector.js';
import { type CocoAnnotation, cocoAnnotations, round, xywh } from './coco-annotations.js';

export type { CocoAnnotation };

/** One image of the results. */
export interface CocoImage {
  readonly id: number;
  readonly file_name: string;
  readonly width: number;
  readonly height: number;
  readonly device?: string;
  readonly timings?: StageTimings;
}

/** One proposal of an RPN-only model. */
export interface CocoProposal {
  readonly image_id: number;
  readonly bbox: readonly number[];
  readonly score: number;
}

/** The whole results document. */
export interface CocoResults {
  /** Present (and first) when the weights were random. */
  readonly warning?: string;
  readonly info: { readonly description: string; readonly config: string; readonly weights: string; readonly random_weights: boolean; readonly date_created: string };
  readonly images: CocoImage[];
  readonly categories: { readonly id: number; readonly name: string; readonly keypoints?: readonly string[]; readonly skeleton?: readonly (readonly number[])[] }[];
  readonly annotations: CocoAnnotation[];
  readonly proposals?: CocoProposal[];
  /** Images that could not be processed, with the reason. */
  readonly failures: { readonly image_id: number; readonly file_name: string; readonly error: string; readonly code: string | undefined }[];
}

/** Options of {@link CocoResultsBuilder}. */
export interface CocoOptions {
  readonly labels: ModelLabels;
  readonly config: RcnnConfig;
  /** Where the config came from (preset, file). */
  readonly configSource: string;
  readonly weightsDescription: string;
  readonly randomWeights: boolean;
  /** Include per-image timings and devices in `images` (default true). */
  readonly timings?: boolean;
}

/** Collects outcomes one at a time (so large runs need not keep masks in memory) into {@link CocoResults}. */
export class CocoResultsBuilder {
  private readonly images: CocoImage[] = [];
  private readonly annotations: CocoAnnotation[] = [];
  private readonly proposals: CocoProposal[] = [];
  private readonly failures: CocoResults['failures'] = [];
  private readonly options: CocoOptions;

  constructor(options: CocoOptions) {
    this.options = options;
  }

  /** Adds one image's outcome. Image ids are the input positions + 1 (COCO ids start at 1). */
  add(outcome: PredictOutcome): void {
    const imageId = outcome.index + 1;
    if (!outcome.ok) {
      const code = (outcome.error as { code?: unknown }).code;
      this.failures.push({ image_id: imageId, file_name: outcome.source, error: outcome.error.message, code: typeof code === 'string' ? code : undefined });
      return;
    }
    const r = outcome.result;
    this.images.push({
      id: imageId,
      file_name: r.source,
      width: r.width,
      height: r.height,
      ...(this.options.timings === false ? {} : { device: r.device, timings: r.timings }),
    });
    if (r.proposals) {
      const p = r.proposals;
      for (let i = 0; i < p.count; i++) this.proposals.push({ image_id: imageId, bbox: xywh(p.boxes, i), score: round(p.scores[i]!, 5) });
    }
    if (r.detections) this.addDetections(imageId, r);
  }

  private addDetections(imageId: number, r: ImageResult): void {
    this.annotations.push(...cocoAnnotations(imageId, r.detections!, this.options.labels, this.annotations.length + 1));
  }

  /** The results document. */
  toJSON(): CocoResults {
    const o = this.options;
    const { labels } = o;
    const categories = labels.categories.flatMap((name, i) =>
      i === 0 || name === 'N/A'
        ? []
        : [{ id: labels.categoryIds[i] ?? i, name, ...(labels.keypointNames ? { keypoints: labels.keypointNames, skeleton: (labels.skeleton ?? []).map(([a, b]) => [a + 1, b + 1]) } : {}) }],
    );
    return {
      ...(o.randomWeights ? { warning: RANDOM_WEIGHTS_WARNING } : {}),
      info: {
        description: 'rcnn-node results',
        config: o.configSource,
        weights: o.weightsDescription,
        random_weights: o.randomWeights,
        date_created: new Date().toISOString(),
      },
      images: this.images,
      categories,
      annotations: this.annotations,
      ...(o.config.MODEL.RPN_ONLY ? { proposals: this.proposals } : {}),
      failures: this.failures,
    };
  }
}
