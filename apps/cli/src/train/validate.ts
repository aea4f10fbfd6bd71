/**
 * `rcnn train --val`: the COCO numbers of every checkpoint on a validation set, computed exactly
 * as `rcnn eval` computes them: the detector on the validation images with the checkpoint's
 * weights (`rcnn eval`'s `predictCocoResults`), then `@rcnn/coco`'s pycocotools-equal evaluation.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type DependencyContainer, type RcnnConfig, configToObject } from '@rcnn/core';
import { createDetector } from '@rcnn/runtime';
import type { CheckpointFiles } from '@rcnn/runtime/training';
import { COCO_PERSON_OKS_SIGMAS, type CocoDatasetJson, evaluateCoco } from '@rcnn/coco';
import { predictCocoResults } from '../commands/eval.js';
import { UsageError } from '../errors.js';
import type { CliIO } from '../io.js';

/** Streams that swallow the evaluation's progress output while training draws its own. */
const QUIET: CliIO = {
  stdout: { write: () => true } as unknown as NodeJS.WritableStream,
  stderr: { write: () => true } as unknown as NodeJS.WritableStream,
};

/**
 * The OKS sigmas keypoint validation uses: `oksSigmas` (one per keypoint), or COCO's person sigmas
 * for a 17-keypoint model. Checked before training starts: a keypoint count without sigmas would
 * otherwise stop the run at its first checkpoint.
 */
export function validationOksSigmas(config: RcnnConfig, oksSigmas: readonly number[] | undefined): readonly number[] | undefined {
  if (!config.MODEL.KEYPOINTS_ON) return undefined;
  const k = config.KRCNN.NUM_KEYPOINTS;
  if (oksSigmas === undefined) {
    if (k === COCO_PERSON_OKS_SIGMAS.length) return undefined;
    throw new UsageError(
      `--val evaluates keypoints with one OKS sigma per keypoint; COCO's default sigmas are for the ${COCO_PERSON_OKS_SIGMAS.length} person keypoints, the model has KRCNN.NUM_KEYPOINTS ${k}`,
      `give --oks-sigmas with ${k} comma-separated values (e.g. ${new Array<string>(k).fill('0.05').join(',')})`,
    );
  }
  if (oksSigmas.length !== k) throw new UsageError(`--oks-sigmas has ${oksSigmas.length} values, the model has KRCNN.NUM_KEYPOINTS ${k}`, 'give one sigma per keypoint');
  return oksSigmas;
}

/**
 * A `validate` hook for the engine: AP and AP50 of every iou type the model outputs
 * (`bbox/AP`, `bbox/AP50`, `segm/AP`, …), for the validation set `dataset` / `images`; keypoints
 * with `oksSigmas` (needed unless the model has COCO's 17 person keypoints).
 */
export async function cocoValidator(options: {
  dataset: string;
  images: string;
  config: RcnnConfig;
  container: DependencyContainer;
  threads?: number;
  oksSigmas?: readonly number[];
}): Promise<(files: CheckpointFiles) => Promise<Record<string, number>>> {
  const sigmas = validationOksSigmas(options.config, options.oksSigmas);
  const gt = JSON.parse(await readFile(options.dataset, 'utf8')) as CocoDatasetJson;
  const imageIds = gt.images.map((im) => im.id);
  const paths = gt.images.map((im) => join(options.images, im.file_name));
  return async (files) => {
    const detector = await createDetector({
      config: configToObject(options.config),
      weights: files.model,
      container: options.container,
      devices: 'cpu',
      ...(options.threads === undefined ? {} : { threads: { intraOp: options.threads } }),
      logLevel: 'fatal',
      onWarning: () => undefined,
    });
    try {
      const predicted = await predictCocoResults(detector, gt, paths, imageIds, 'auto', QUIET);
      const out: Record<string, number> = {};
      for (const type of predicted.types) {
        const { stats } = evaluateCoco(gt, predicted.results, type, type === 'keypoints' && sigmas ? { params: { kptOksSigmas: sigmas } } : {});
        out[`${type}/AP`] = stats[0]!;
        out[`${type}/AP50`] = stats[1]!;
      }
      return out;
    } finally {
      await detector.close();
    }
  };
}
