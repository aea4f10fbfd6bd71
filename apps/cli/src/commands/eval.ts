/** `rcnn eval`: COCO AP/AR (pycocotools' numbers) of a results file, or of a model run on a dataset. */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CategoryMap,
  type CocoDatasetJson,
  type CocoEvalResult,
  type CocoResultJson,
  IOU_TYPES,
  type IouType,
  alignResults,
  evaluateCoco,
  formatSummary,
} from '@rcnn/coco';
import { InputError } from '@rcnn/core';
import { type Detector, type ModelLabels, type PredictOutcome, createDetector, readKeypoints, readMasks } from '@rcnn/runtime';
import { type Command, MODEL_OPTIONS, MODEL_OPTIONS_HELP, RUN_OPTIONS, RUN_OPTIONS_HELP, optFlag, optInt, optString } from '../command.js';
import { EXIT, UsageError, describeError } from '../errors.js';
import { type CliIO, ProgressBar, say, warn } from '../io.js';
import { detectorOptions } from '../model-options.js';

/** How model classes become dataset category ids (`--label-map`). */
export const LABEL_MAPS = ['auto', 'name', 'contiguous', 'id'] as const;
/** One of {@link LABEL_MAPS}. */
export type LabelMapKind = (typeof LABEL_MAPS)[number];

const HELP = `Usage: rcnn eval --dataset <gt.json> --results <results.json> [options]
       rcnn eval --dataset <val.json> --images <dir> --config <preset|file> [--weights <file>] [options]

COCO evaluation: the 12 numbers of pycocotools' COCOeval.summarize() for bbox and segm (10 for
keypoints) and the AP of every category, equal to pycocotools' (crowd regions, area ranges,
max detections, OKS sigmas included). See docs/evaluation.md.

Data:
      --dataset <file>      COCO ground truth: images, annotations, categories (required)
      --results <file>      COCO results list (image_id, category_id, score, bbox, segmentation,
                            keypoints), or the document rcnn predict --out writes (its images
                            are matched to the dataset's by file name)
      --images <dir>        instead of --results: run the model on the dataset's images
                            (<dir>/<file_name>) and evaluate its detections
      --max-images <n>      with --images: only the first n images (by id); the evaluation is
                            restricted to them
      --label-map <how>     with --images: model class -> dataset category id: auto (default),
                            name (class names = category names), contiguous (class i = i-th
                            category by id, as training numbers them), id (the model's own ids)
      --save-results <file> with --images: also write the results list that was evaluated

Evaluation:
      --iou-type <types>    comma-separated ${IOU_TYPES.join(', ')} (default: bbox, plus segm and
                            keypoints when the results have masks / keypoints)
      --oks-sigmas <list>   comma-separated OKS sigma per keypoint (default: COCO's 17 person
                            sigmas; needed for any other keypoint count)
      --segm-box-areas      segm: keep the results' bbox, so pycocotools' box areas decide
                            small/medium/large (default: dropped, mask areas, as Detectron2)
      --json <file>         the numbers as JSON: {"bbox": [12], "segm": [12], "keypoints": [10],
                            "per_category": {"bbox": {"<category id>": AP}}}; "-" = stdout

${MODEL_OPTIONS_HELP}

${RUN_OPTIONS_HELP}

Examples:
  rcnn eval --dataset instances_val2017.json --results coco_instances_results.json --json ap.json
  rcnn eval --dataset val.json --images val/ --config maskrcnn_resnet50_fpn --weights w.safetensors`;

async function readJsonFile(path: string, what: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new InputError(`${what} ${path} is not valid JSON: ${(e as Error).message}`, { source: path, hint: 'give a COCO JSON file' });
  }
}

function parseIouTypes(raw: string | undefined): IouType[] | undefined {
  if (raw === undefined) return undefined;
  const types = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of types) if (!(IOU_TYPES as readonly string[]).includes(t)) throw new UsageError(`--iou-type: unknown type "${t}"; types: ${IOU_TYPES.join(', ')}`);
  if (types.length === 0) throw new UsageError(`--iou-type needs at least one of ${IOU_TYPES.join(', ')}`);
  return [...new Set(types as IouType[])];
}

/** `--oks-sigmas`: comma-separated positive numbers (undefined when not given). */
export function parseSigmas(raw: string | undefined): number[] | undefined {
  if (raw === undefined) return undefined;
  const sigmas = raw.split(',').map((s) => Number(s.trim()));
  if (sigmas.length === 0 || sigmas.some((s) => !Number.isFinite(s) || s <= 0)) throw new UsageError(`--oks-sigmas must be comma-separated positive numbers, got "${raw}"`);
  return sigmas;
}

/** The iou types results support, judged by their first detection (as pycocotools' loadRes). */
function supportedTypes(results: readonly CocoResultJson[]): IouType[] {
  const first = results[0];
  const types: IouType[] = ['bbox'];
  if (first?.segmentation !== undefined) types.push('segm');
  if (first?.keypoints !== undefined) types.push('keypoints');
  return types;
}

/** Model class index -> dataset category id (undefined: the class is not a dataset category). */
export function labelMapper(labels: ModelLabels, dataset: CocoDatasetJson, kind: LabelMapKind): { kind: Exclude<LabelMapKind, 'auto'>; map: (label: number) => number | undefined } {
  const byName = new Map(dataset.categories.map((c) => [c.name, c.id]));
  const classes = labels.categories.slice(1).filter((n) => n !== 'N/A');
  let chosen: Exclude<LabelMapKind, 'auto'>;
  if (kind !== 'auto') chosen = kind;
  else if (classes.length > 0 && dataset.categories.every((c) => classes.includes(c.name))) chosen = 'name';
  else if (labels.categories.length - 1 === dataset.categories.length) chosen = 'contiguous';
  else chosen = 'id';
  if (chosen === 'name') return { kind: chosen, map: (l) => byName.get(labels.categories[l] ?? '') };
  if (chosen === 'contiguous') {
    const cm = CategoryMap.fromCategories(dataset.categories);
    return { kind: chosen, map: (l) => (l >= 1 && l < cm.numClasses ? cm.categoryIdOf(l) : undefined) };
  }
  const ids = new Set(dataset.categories.map((c) => c.id));
  return { kind: chosen, map: (l) => (ids.has(labels.categoryIds[l] ?? l) ? (labels.categoryIds[l] ?? l) : undefined) };
}

/** The images of `imageIds` as paths under `imagesDir`; missing files fail before any model is built. */
async function datasetImagePaths(dataset: CocoDatasetJson, imagesDir: string, imageIds: readonly number[]): Promise<string[]> {
  const byId = new Map(dataset.images.map((img) => [img.id, img]));
  const paths = imageIds.map((id) => join(imagesDir, byId.get(id)!.file_name));
  const missing: string[] = [];
  for (const p of paths) {
    try {
      await stat(p);
    } catch {
      missing.push(p);
    }
  }
  if (missing.length > 0) {
    throw new InputError(`${missing.length} of the dataset's ${paths.length} images are missing, e.g. ${missing.slice(0, 3).join(', ')}`, {
      source: missing[0],
      hint: '--images must be the folder the dataset\'s file_name entries are relative to',
    });
  }
  return paths;
}

/** What {@link predictCocoResults} returns. */
export interface PredictedResults {
  /** A COCO results list with the dataset's image and category ids. */
  readonly results: CocoResultJson[];
  /** Images that could not be processed (evaluated as images without detections). */
  readonly failed: number;
  /** The iou types the model's outputs support. */
  readonly types: IouType[];
  /** The class -> category mapping used. */
  readonly labelMap: Exclude<LabelMapKind, 'auto'>;
}

/**
 * Runs a detector on dataset images (`paths[i]` is image `imageIds[i]`) and returns its
 * detections as a COCO results list in the dataset's ids (for `rcnn eval`, and for evaluating
 * during training).
 */
export async function predictCocoResults(
  detector: Detector,
  dataset: CocoDatasetJson,
  paths: readonly string[],
  imageIds: readonly number[],
  labelMap: LabelMapKind,
  io: CliIO,
): Promise<PredictedResults> {
  const results: CocoResultJson[] = [];
  const types = new Set<IouType>(['bbox']);
  let failed = 0;
  const { kind: used, map } = labelMapper(detector.labels, dataset, labelMap);
  const progress = new ProgressBar(io, paths.length, 'eval');
  for await (const outcome of detector.stream(paths) as AsyncIterable<PredictOutcome>) {
    progress.clear();
    progress.tick();
    if (!outcome.ok) {
      failed++;
      const { message } = describeError(outcome.error, 'eval');
      warn(io, `rcnn eval: error: ${message} (evaluated as an image without detections)`);
      continue;
    }
    const det = outcome.result.detections;
    if (!det) continue;
    const imageId = imageIds[outcome.index]!;
    const masks = readMasks(det);
    const kp = readKeypoints(det);
    if (masks) types.add('segm');
    if (kp) types.add('keypoints');
    for (let d = 0; d < det.scores.length; d++) {
      const categoryId = map(det.labels[d]!);
      if (categoryId === undefined) continue;
      const [x1, y1, x2, y2] = [det.boxes[4 * d]!, det.boxes[4 * d + 1]!, det.boxes[4 * d + 2]!, det.boxes[4 * d + 3]!];
      const r: { -readonly [K in keyof CocoResultJson]: CocoResultJson[K] } = { image_id: imageId, category_id: categoryId, score: det.scores[d]!, bbox: [x1, y1, x2 - x1, y2 - y1] };
      if (masks) r.segmentation = masks.rle(d);
      if (kp) {
        const k = kp.numKeypoints;
        r.keypoints = Array.from(kp.keypoints.subarray(d * k * 3, (d + 1) * k * 3));
      }
      results.push(r);
    }
  }
  return { results, failed, types: [...types], labelMap: used };
}

/** The JSON form of the numbers (the same shape as the eval fixtures' stats.json). */
export function statsJson(evals: readonly CocoEvalResult[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const perCategory: Record<string, Record<string, number | null>> = {};
  for (const e of evals) {
    out[e.iouType] = [...e.stats];
    perCategory[e.iouType] = Object.fromEntries([...e.perCategory].map(([id, ap]) => [String(id), ap]));
  }
  out.per_category = perCategory;
  return out;
}

function categoryTable(e: CocoEvalResult, dataset: CocoDatasetJson): string {
  const names = new Map(dataset.categories.map((c) => [c.id, c.name]));
  const width = Math.max(8, ...e.categoryIds.map((id) => (names.get(id) ?? String(id)).length));
  const rows = e.categoryIds.map((id) => {
    const ap = e.perCategory.get(id);
    return `  ${(names.get(id) ?? String(id)).padEnd(width)}  ${String(id).padStart(5)}  ${ap === null || ap === undefined ? '  nan' : (ap * 100).toFixed(3).padStart(7)}`;
  });
  return [`  ${'category'.padEnd(width)}     id       AP`, ...rows].join('\n');
}

async function run(values: Parameters<Command['run']>[0], _positionals: readonly string[], io: CliIO): Promise<number> {
  const datasetPath = optString(values, 'dataset');
  if (!datasetPath) throw new UsageError('--dataset is required', 'rcnn eval --dataset gt.json --results results.json');
  const resultsPath = optString(values, 'results');
  const imagesDir = optString(values, 'images');
  if ((resultsPath === undefined) === (imagesDir === undefined)) {
    throw new UsageError('give either --results <file> or --images <dir> (with --config) to evaluate', 'rcnn eval --help');
  }
  if (imagesDir === undefined) {
    for (const o of ['max-images', 'save-results', 'label-map', 'config', 'weights']) {
      if (values[o] !== undefined) throw new UsageError(`--${o} needs --images (it concerns running the model on the dataset)`);
    }
  }
  const wanted = parseIouTypes(optString(values, 'iou-type'));
  const sigmas = parseSigmas(optString(values, 'oks-sigmas'));
  const jsonOut = optString(values, 'json');
  const report: CliIO = jsonOut === '-' ? { stdout: io.stderr, stderr: io.stderr } : io;

  const dataset = (await readJsonFile(datasetPath, 'dataset')) as CocoDatasetJson;
  if (!dataset || !Array.isArray(dataset.images) || !Array.isArray(dataset.annotations) || !Array.isArray(dataset.categories)) {
    throw new InputError(`dataset ${datasetPath} is not a COCO dataset: it needs "images", "annotations" and "categories" arrays`, { source: datasetPath });
  }
  let results: CocoResultJson[];
  let available: IouType[];
  let imageIds: number[] | undefined;
  let failed = 0;
  if (resultsPath !== undefined) {
    results = alignResults(await readJsonFile(resultsPath, 'results'), dataset, resultsPath);
    available = supportedTypes(results);
  } else {
    const maxImages = optInt(values, 'max-images', 1);
    imageIds = dataset.images.map((i) => i.id).sort((a, b) => a - b);
    if (maxImages !== undefined) imageIds = imageIds.slice(0, maxImages);
    const paths = await datasetImagePaths(dataset, imagesDir!, imageIds);
    const labelMap = (optString(values, 'label-map') ?? 'auto') as LabelMapKind;
    if (!(LABEL_MAPS as readonly string[]).includes(labelMap)) throw new UsageError(`--label-map must be one of ${LABEL_MAPS.join(', ')}, got "${labelMap}"`);
    const detector = await createDetector(await detectorOptions(values, report));
    let predicted: PredictedResults;
    try {
      if (detector.randomWeights) warn(report, 'rcnn eval: RANDOM WEIGHTS are used (no --weights): the numbers are meaningless');
      predicted = await predictCocoResults(detector, dataset, paths, imageIds, labelMap, report);
    } finally {
      await detector.close();
    }
    warn(report, `rcnn eval: model classes -> dataset categories by ${predicted.labelMap}`);
    ({ results, failed } = predicted);
    available = predicted.types;
    const save = optString(values, 'save-results');
    if (save) await writeFile(save, `${JSON.stringify(results)}\n`);
  }
  const types = wanted ?? available;
  for (const t of types) {
    if (!available.includes(t) && results.length > 0) throw new UsageError(`--iou-type ${t}: the results have no ${t === 'segm' ? 'segmentation' : 'keypoints'}`);
  }
  const evals: CocoEvalResult[] = [];
  for (const iouType of types) {
    const e = evaluateCoco(dataset, results, iouType, {
      ...(imageIds ? { imageIds } : {}),
      ...(sigmas ? { params: { kptOksSigmas: sigmas } } : {}),
      keepSegmBoxes: optFlag(values, 'segm-box-areas'),
    });
    evals.push(e);
    say(report, `Evaluate annotation type *${iouType}* (${e.imageIds.length} images, ${results.length} detections)`);
    say(report, formatSummary(e));
    say(report, categoryTable(e, dataset));
    say(report);
  }
  if (jsonOut) {
    const json = `${JSON.stringify(statsJson(evals), null, 1)}\n`;
    if (jsonOut === '-') io.stdout.write(json);
    else await writeFile(jsonOut, json);
  }
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

/** The `eval` command. */
export const evalCommand: Command = {
  name: 'eval',
  summary: 'COCO AP/AR of results or of a model on a dataset (equal to pycocotools)',
  help: HELP,
  options: {
    ...MODEL_OPTIONS,
    ...RUN_OPTIONS,
    dataset: { type: 'string' },
    results: { type: 'string' },
    images: { type: 'string' },
    'max-images': { type: 'string' },
    'label-map': { type: 'string' },
    'save-results': { type: 'string' },
    'iou-type': { type: 'string' },
    'oks-sigmas': { type: 'string' },
    'segm-box-areas': { type: 'boolean' },
    json: { type: 'string' },
  },
  positionals: false,
  run,
};
