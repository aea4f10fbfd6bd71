/**
 * Contiguous training labels for COCO category ids. COCO ids have gaps (1..90 for 80 classes);
 * a model's classifier has one output per class, torchvision-style: label 0 is the background and
 * labels 1..K are the categories sorted by id (Detectron2 sorts the same way). The map is saved
 * with a checkpoint and used to write results back with the dataset's ids.
 */
import { InputError } from '@rcnn/core';
import type { CocoCategoryJson } from './types.js';

/** The serialisable form of a {@link CategoryMap}. */
export interface CategoryMapJson {
  /** COCO category id of labels 1..K (index 0 = label 1). */
  readonly categoryIds: readonly number[];
  /** Name of labels 1..K. */
  readonly names: readonly string[];
}

/** Category id <-> contiguous label (1..K, 0 = background). */
export class CategoryMap {
  /** COCO category id of each label; index 0 (background) is 0. */
  readonly categoryIds: readonly number[];
  /** Name of each label; index 0 is `__background__`. */
  readonly names: readonly string[];
  private readonly labels: ReadonlyMap<number, number>;

  private constructor(ids: readonly number[], names: readonly string[]) {
    this.categoryIds = [0, ...ids];
    this.names = ['__background__', ...names];
    this.labels = new Map(ids.map((id, i) => [id, i + 1]));
  }

  /** Labels 1..K for the categories sorted by id. Duplicate ids are an error. */
  static fromCategories(categories: readonly CocoCategoryJson[]): CategoryMap {
    const sorted = [...categories].sort((a, b) => a.id - b.id);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.id === sorted[i - 1]!.id) throw new InputError(`categories: id ${sorted[i]!.id} appears twice ("${sorted[i - 1]!.name}", "${sorted[i]!.name}")`);
    }
    for (const c of sorted) if (!Number.isInteger(c.id)) throw new InputError(`categories: id ${JSON.stringify(c.id)} of "${c.name}" is not an integer`);
    return new CategoryMap(
      sorted.map((c) => c.id),
      sorted.map((c) => String(c.name)),
    );
  }

  /** Restores a saved map. */
  static fromJSON(json: CategoryMapJson): CategoryMap {
    if (!Array.isArray(json?.categoryIds) || !Array.isArray(json.names) || json.categoryIds.length !== json.names.length) {
      throw new InputError('category map: needs "categoryIds" and "names" arrays of equal length');
    }
    return new CategoryMap(json.categoryIds, json.names);
  }

  /** Classes including the background (K + 1): MODEL.NUM_CLASSES of a model trained on the map. */
  get numClasses(): number {
    return this.categoryIds.length;
  }

  /** The label of a category id, or undefined when the id is not a category of the map. */
  labelOf(categoryId: number): number | undefined {
    return this.labels.get(categoryId);
  }

  /** The category id of a label 1..K. */
  categoryIdOf(label: number): number {
    if (!Number.isInteger(label) || label < 1 || label >= this.categoryIds.length) {
      throw new InputError(`label ${label} is outside the category map (1..${this.categoryIds.length - 1})`);
    }
    return this.categoryIds[label]!;
  }

  /** The serialisable form. */
  toJSON(): CategoryMapJson {
    return { categoryIds: this.categoryIds.slice(1), names: this.names.slice(1) };
  }
}
