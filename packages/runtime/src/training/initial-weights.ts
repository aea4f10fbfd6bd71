/**
 * Initial weights of a fine-tuning run: any weights `rcnn predict` reads (safetensors, `.pth`,
 * Detectron2 / Detectron `.pkl` through @rcnn/checkpoint's readers), where every tensor the model
 * asks for with another shape than the file's (the class-dependent layers of a checkpoint trained
 * on another number of classes: `roi_heads.box_predictor.*`, `roi_heads.mask_predictor.mask_fcn_logits.*`,
 * …), or that the file lacks (a head the checkpoint never had), is drawn afresh with the init its
 * stage asks for — and reported, as Detectron2 reports the layers it skips.
 *
 * It takes two builds: a first one against recording random weights lists every tensor the model
 * requests (key, shape, init, optional or not); {@link fitInitialWeights} then makes a store of
 * exactly those tensors, from the file where they fit, for the real build. The real build's store
 * is a plain {@link WeightStore}, so everything that traces weights by identity (trainable
 * parameters becoming graph inputs) works unchanged.
 */
import { type HostTensor, type RandomInit, WeightStore, drawRandom } from '@rcnn/core';

/** A tensor a model build asked its weights for. */
export interface WeightRequest {
  readonly key: string;
  readonly shape: readonly number[];
  readonly init: RandomInit;
  /** Asked with `takeOptional` (a bias a layer may lack). */
  readonly optional: boolean;
}

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
 * Random weights (seed `seed`) that record every request, for a first build that lists what a
 * model needs ({@link fitInitialWeights}).
 */
export function recordingWeights(seed = 0): { store: WeightStore; requests: WeightRequest[] } {
  const requests: WeightRequest[] = [];
  const seen = new Set<string>();
  const note = (key: string, shape: readonly number[], init: RandomInit, optional: boolean): void => {
    if (seen.has(key)) return;
    seen.add(key);
    requests.push({ key, shape: [...shape], init, optional });
  };
  const base = WeightStore.random(seed);
  const store = new Proxy(base, {
    get(target, prop) {
      if (prop === 'take') {
        return (key: string, shape: readonly number[], init: RandomInit = { kind: 'he' }) => {
          note(key, shape, init, false);
          return target.take(key, shape, init);
        };
      }
      if (prop === 'takeOptional') {
        return (key: string, shape: readonly number[], init: RandomInit = { kind: 'constant', value: 0 }) => {
          note(key, shape, init, true);
          return target.takeOptional(key, shape, init);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store, requests };
}

/** What {@link fitInitialWeights} made. */
export interface FittedWeights {
  /** Every requested tensor (and every other tensor of the file), for the real build. */
  readonly store: WeightStore;
  /** Tensors drawn afresh because the file lacks them or has another shape. */
  readonly reinitialised: readonly ReinitialisedTensor[];
  /** Every tensor of {@link store}, by key (what a checkpoint writes besides the trained values). */
  readonly tensors: ReadonlyMap<string, HostTensor>;
}

/**
 * The initial weights for `requests`: the file's tensor where it has the key with the requested
 * shape, else a seeded draw with the request's init (an optional tensor the file lacks stays
 * absent). `file` undefined means no weights file: everything is drawn. The file's other tensors
 * (buffers such as `num_batches_tracked`) are kept so checkpoints stay whole state dicts.
 */
export function fitInitialWeights(file: WeightStore | undefined, requests: readonly WeightRequest[], seed = 0): FittedWeights {
  const tensors = new Map<string, HostTensor>();
  const reinitialised: ReinitialisedTensor[] = [];
  const fromFile = file !== undefined && !file.isRandom ? file : undefined;
  for (const r of requests) {
    const have = fromFile?.shapeOf(r.key);
    if (have !== undefined && have.length === r.shape.length && have.every((d, i) => d === r.shape[i])) {
      tensors.set(r.key, { dtype: 'float32', dims: r.shape, data: fromFile!.take(r.key, r.shape, r.init).slice() });
      continue;
    }
    if (r.optional && fromFile && have === undefined) continue;
    if (fromFile) reinitialised.push({ key: r.key, shape: r.shape, fileShape: have });
    tensors.set(r.key, { dtype: 'float32', dims: r.shape, data: drawRandom(r.shape, r.init, seed, r.key) });
  }
  if (fromFile) {
    for (const key of fromFile.keys()) {
      if (tensors.has(key) || reinitialised.some((t) => t.key === key)) continue;
      const shape = fromFile.shapeOf(key);
      if (shape === undefined) continue;
      try {
        tensors.set(key, { dtype: 'float32', dims: shape, data: fromFile.take(key, shape).slice() });
      } catch {
        // Not a float tensor (an int64 counter): a checkpoint of this model does not need it.
      }
    }
  }
  const description = fromFile ? `${fromFile.description} (fitted to the model)` : `random weights (seed ${seed})`;
  return { store: WeightStore.fromTensors(tensors, description), reinitialised, tensors };
}
