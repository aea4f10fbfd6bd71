/**
 * `rcnn train --val`: the COCO numbers of every checkpoint on a validation set, computed exactly
 * as `rcnn eval` computes them (the detector on the validation images with the checkpoint's
 * weights, then `@rcnn/coco`'s pycocotools-equal evaluation). Both halves belong to `rcnn eval`
 * (its `predictCocoResults` and `@rcnn/coco`'s `evaluateCoco`); they are imported at run time so
 * that this command builds where they are not installed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type DependencyContainer, type RcnnConfig, configToObject } from '@rcnn/core';
import { type Detector, createDetector } from '@rcnn/runtime';
import { type CheckpointFiles, TrainingError } from '@rcnn/runtime/training';
import type { CliIO } from '../io.js';

interface CocoJson {
  readonly images: readonly { readonly id: number; readonly file_name: string }[];
}

interface EvalModule {
  predictCocoResults(detector: Detector, dataset: CocoJson, paths: readonly string[], imageIds: readonly number[], labelMap: 'auto', io: CliIO): Promise<{ results: unknown[]; types: string[] }>;
}

interface CocoEvalModule {
  evaluateCoco(gt: CocoJson, results: readonly unknown[], iouType: string): { readonly stats: readonly number[] };
}

async function optionalImport<T>(specifier: string, what: string): Promise<T> {
  try {
    return (await import(specifier)) as T;
  } catch (e) {
    throw new TrainingError(`--val needs ${what}, which this checkout does not have`, { hint: 'train without --val and run rcnn eval on the checkpoints', cause: e });
  }
}

/** Streams that swallow the evaluation's progress output while training draws its own. */
const QUIET: CliIO = {
  stdout: { write: () => true } as unknown as NodeJS.WritableStream,
  stderr: { write: () => true } as unknown as NodeJS.WritableStream,
};

/**
 * A `validate` hook for the engine: AP and AP50 of every iou type the model outputs
 * (`bbox/AP`, `bbox/AP50`, `segm/AP`, …), for the validation set `dataset` / `images`.
 */
export async function cocoValidator(options: { dataset: string; images: string; config: RcnnConfig; container: DependencyContainer; threads?: number }): Promise<(files: CheckpointFiles) => Promise<Record<string, number>>> {
  const evalCommand = await optionalImport<EvalModule>(new URL('../commands/eval.js', import.meta.url).href, 'rcnn eval');
  const coco = await optionalImport<CocoEvalModule>('@rcnn/coco', '@rcnn/coco');
  const gt = JSON.parse(await readFile(options.dataset, 'utf8')) as CocoJson;
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
      const predicted = await evalCommand.predictCocoResults(detector, gt, paths, imageIds, 'auto', QUIET);
      const out: Record<string, number> = {};
      for (const type of predicted.types) {
        const { stats } = coco.evaluateCoco(gt, predicted.results, type);
        out[`${type}/AP`] = stats[0];
        out[`${type}/AP50`] = stats[1];
      }
      return out;
    } finally {
      await detector.close();
    }
  };
}
