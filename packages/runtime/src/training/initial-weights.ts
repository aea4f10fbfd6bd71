/**
 * Initial weights of a fine-tuning run: any weights `rcnn predict` reads (safetensors, `.pth`,
 * Detectron2 / Detectron `.pkl` through @rcnn/checkpoint's readers), where every tensor the model
 * asks for with another shape than the file's (the class-dependent layers of a checkpoint trained
 * on another number of classes: `roi_heads.box_predictor.*`, `roi_heads.mask_predictor.mask_fcn_logits.*`,
 * …), or that the file lacks (a head the checkpoint never had), is drawn afresh with the init its
 * stage asks for — and reported, as Detectron2 reports the layers it skips.
 */
import { type RandomInit, type WeightStore, drawRandom } from '@rcnn/core';

/** A tensor that did not come from the initial weights. */
export interface ReinitialisedTensor {
  readonly key: string;
  /** Shape the model needs. */
  readonly shape: readonly number[];
  /** Shape in the weights file, or undefined when the file does not have the key. */
  readonly fileShape: readonly number[] | undefined;
}

/** One line per re-initialised tensor, for the user. */
export function describeReinitialised(t: ReinitialisedTensor): string {
  const need = `[${t.shape.join(', ')}]`;
  return t.fileShape === undefined ? `${t.key}: not in the weights, initialised as ${need}` : `${t.key}: [${t.fileShape.join(', ')}] in the weights, the model needs ${need}: re-initialised`;
}

/**
 * A view of `store` for building a model to fine-tune: `take` / `takeOptional` return the file's
 * tensor when its shape fits, and otherwise a seeded random draw with the requested init
 * (recorded in `reinitialised`). Random stores (no weights file) pass through unchanged.
 */
export function refittingWeights(store: WeightStore, seed: number, reinitialised: ReinitialisedTensor[]): WeightStore {
  if (store.isRandom) return store;
  const fileShape = (key: string): readonly number[] | undefined => store.shapeOf(key);
  const refit = (key: string, shape: readonly number[], init: RandomInit): Float32Array => {
    reinitialised.push({ key, shape: [...shape], fileShape: store.has(key) ? fileShape(key) : undefined });
    store.markUsed(key);
    return drawRandom(shape, init, seed, key);
  };
  const fits = (key: string, shape: readonly number[]): boolean => {
    if (!store.has(key)) return false;
    const have = fileShape(key);
    return have !== undefined && have.length === shape.length && have.every((d, i) => d === shape[i]);
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'take') {
        return (key: string, shape: readonly number[], init: RandomInit = { kind: 'he' }) => (fits(key, shape) ? target.take(key, shape, init) : refit(key, shape, init));
      }
      if (prop === 'takeOptional') {
        // An optional tensor the file lacks stays absent (a bias-free layer); one of the wrong shape is re-drawn.
        return (key: string, shape: readonly number[], init: RandomInit = { kind: 'constant', value: 0 }) =>
          !target.has(key) ? undefined : fits(key, shape) ? target.take(key, shape, init) : refit(key, shape, init);
      }
      if (prop === 'fork') return () => refittingWeights(target.fork(), seed, reinitialised);
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
