/**
 * Reading a results file for evaluation: a plain COCO results list, or a results document with
 * its own `images` (what `rcnn predict --out` writes: image ids are input positions, file names
 * are the paths given), whose image ids are mapped to the dataset's by file name.
 */
import { basename } from 'node:path';
import { InputError } from '@rcnn/core';
import type { CocoDatasetJson, CocoResultJson } from './types.js';

/** A results document with its images (e.g. `rcnn predict --out`). */
export interface CocoResultsDocumentJson {
  readonly images?: readonly { readonly id: number; readonly file_name: string }[];
  readonly annotations: readonly CocoResultJson[];
}

/**
 * The detections of `results` with the dataset's image ids. A plain list is returned as is. For
 * a document with `images`, each image is found in the dataset by its file name (the whole
 * `file_name`, else the base name); an image not in the dataset is an error naming it.
 */
export function alignResults(results: unknown, dataset: CocoDatasetJson, source = 'results'): CocoResultJson[] {
  if (Array.isArray(results)) return results as CocoResultJson[];
  const doc = results as CocoResultsDocumentJson | null;
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.annotations)) {
    throw new InputError(`${source} is neither a COCO results list nor a results document with "annotations"`, { source });
  }
  if (!Array.isArray(doc.images)) return [...doc.annotations];
  const byName = new Map<string, number>();
  const byBase = new Map<string, number | null>();
  for (const img of dataset.images) {
    byName.set(img.file_name, img.id);
    const b = basename(img.file_name);
    // A base name shared by two dataset images cannot identify either.
    byBase.set(b, byBase.has(b) ? null : img.id);
  }
  const ids = new Map<number, number>();
  for (const img of doc.images) {
    const id = byName.get(img.file_name) ?? byBase.get(basename(img.file_name));
    if (id === undefined || id === null) {
      throw new InputError(`${source}: image "${img.file_name}" is not an image of the dataset${id === null ? ' (its base name is ambiguous there)' : ''}`, { source });
    }
    ids.set(img.id, id);
  }
  return doc.annotations.map((a, i) => {
    const id = ids.get(a.image_id);
    if (id === undefined) throw new InputError(`${source}: annotations[${i}] has image_id ${a.image_id}, which is not in its "images"`, { source });
    return { ...a, image_id: id };
  });
}
