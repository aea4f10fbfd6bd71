/**
 * Where a model's weights come from: a file, read by the reader registered for its extension
 * (safetensors built in; `.pth` / `.pkl` readers come from @rcnn/checkpoint's `register`), or seeded
 * random numbers — calibrated so that an untrained model still exercises every stage.
 */
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import {
  type DependencyContainer,
  type RandomInit,
  type RcnnConfig,
  WeightStore,
  type WeightStoreOptions,
  type WeightsReader,
  WeightsError,
  registeredWeightsReaders,
} from '@rcnn/core';

// The reader contract lives in core so that format packages register without importing the runtime.
export { WEIGHTS_READERS, type WeightsReader, registerWeightsReader } from '@rcnn/core';

/** The built-in safetensors reader. */
export const SAFETENSORS_READER: WeightsReader = {
  format: 'safetensors',
  extensions: ['.safetensors'],
  provider: '@rcnn/runtime',
  read: (path, options) => WeightStore.fromSafetensors(path, options),
};

/** The readers known to `container` (registered ones first, then the built-in safetensors reader). */
export function weightsReaders(container?: DependencyContainer): WeightsReader[] {
  return [...(container ? registeredWeightsReaders(container) : []), SAFETENSORS_READER];
}

/**
 * Loads a weights file with the reader registered for its extension. A missing file or an
 * extension no reader knows is a {@link WeightsError} naming the file and the known formats.
 */
export async function loadWeights(path: string, container?: DependencyContainer, options: WeightStoreOptions = {}): Promise<WeightStore> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new WeightsError(`weights ${path} is not a file`, { file: path });
  } catch (e) {
    if (e instanceof WeightsError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new WeightsError(`cannot read weights file ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { file: path, hint: 'check the path', cause: e });
  }
  const ext = extname(path).toLowerCase();
  const readers = weightsReaders(container);
  const reader = readers.find((r) => r.extensions.includes(ext));
  if (!reader) {
    const known = readers.map((r) => `${r.extensions.join('/')} (${r.format}, ${r.provider})`).join(', ');
    throw new WeightsError(`no reader for weights file ${path} (extension "${ext || 'none'}"); known formats: ${known}`, {
      file: path,
      hint: ext === '.pth' || ext === '.pkl' ? 'register @rcnn/checkpoint for PyTorch / Detectron checkpoints, or convert to safetensors' : 'convert the weights to safetensors (torchvision state-dict names)',
    });
  }
  return reader.read(path, options);
}

/** How {@link calibratedRandomWeights} shapes the random weights. */
export interface CalibrationOptions {
  /** Foreground classes that get a raised logit bias (default: up to 5 spread over the classes, class 1 first). */
  readonly classes?: readonly number[];
  /** Softmax score those classes get from the bias alone (default 2 x TEST.SCORE_THRESH, at least 0.1). */
  readonly targetScore?: number;
  /** Factor on the last norm scale of every bottleneck (default {@link RESIDUAL_GAIN}). */
  readonly residualGain?: number;
}

/**
 * Factor applied to the random scale of each bottleneck's last norm (`bn3.weight`). With the
 * backbone's fixture-style random FrozenBN every residual block roughly doubles the feature
 * variance, so 16 blocks of ResNet-50 give FPN features around 1e4 and the RPN's deltas blow every
 * proposal up to the whole image; damping the residual branches (as torchvision's
 * `zero_init_residual` does, less drastically) keeps the features O(1) like a trained model's.
 */
export const RESIDUAL_GAIN = 0.2;

/** Keys of the bottlenecks' last norm scales (torchvision names). */
const RESIDUAL_NORM_KEY = /^backbone\.body\.layer\d+\.\d+\.bn3\.weight$/;

/** torchvision's name of the class-logit bias of the box predictor. */
export const CLASS_LOGIT_BIAS_KEY = 'roi_heads.box_predictor.cls_score.bias';

/** Spreads `count` class indices over 1..numClasses-1, class 1 first, skipping `skip` (e.g. 'N/A' gaps). */
export function spreadClasses(numClasses: number, count: number, skip: ReadonlySet<number> = new Set()): number[] {
  const usable = Array.from({ length: numClasses - 1 }, (_, i) => i + 1).filter((c) => !skip.has(c));
  if (usable.length === 0) return [];
  const n = Math.min(count, usable.length);
  return Array.from({ length: n }, (_, i) => usable[Math.floor((i * usable.length) / n)]!);
}

/**
 * The class-logit bias that makes an untrained box predictor produce detections: background 0,
 * the chosen classes `b`, the others 0, with `b` such that softmax gives each chosen class
 * `targetScore` when the weights' contribution is small: e^b / (k e^b + C - k) = t.
 */
export function calibratedClassBias(numClasses: number, classes: readonly number[], targetScore: number): Float32Array {
  const k = classes.length;
  const bias = new Float32Array(numClasses);
  if (k === 0) return bias;
  const t = Math.min(targetScore, 0.99 / k);
  const b = Math.log((t * (numClasses - k)) / (1 - k * t));
  for (const c of classes) bias[c] = b;
  return bias;
}

/**
 * Seeded random weights for `config`, calibrated so that an untrained model does a trained one's
 * work (about TEST.RPN_POST_NMS_TOP_N proposals, up to TEST.DETECTIONS_PER_IM detections, masks and
 * keypoints for them): the residual branches are damped ({@link RESIDUAL_GAIN}) so features stay
 * O(1), and the class-logit bias is set (`calibratedClassBias`) so that some classes pass
 * TEST.SCORE_THRESH — with torchvision's small predictor init every class score would sit near
 * 1/NUM_CLASSES, below the threshold, and nothing after the box head would run. Every other tensor
 * is drawn as its stage requests it. The store says `random`, so every result warns.
 */
export function calibratedRandomWeights(seed: number, config: RcnnConfig, options: CalibrationOptions & { skipClasses?: ReadonlySet<number>; store?: WeightStoreOptions } = {}): WeightStore {
  const classes = options.classes ?? spreadClasses(config.MODEL.NUM_CLASSES, 5, options.skipClasses);
  const target = options.targetScore ?? Math.max(0.1, 2 * config.TEST.SCORE_THRESH);
  const gain = options.residualGain ?? RESIDUAL_GAIN;
  const bias = calibratedClassBias(config.MODEL.NUM_CLASSES, classes, target);
  const description =
    `random weights (seed ${seed}; calibrated: residual branches x${gain}, class-logit bias so that classes ` +
    `${classes.join(', ')} score ~${target.toFixed(2)})`;
  const adjust = (key: string, shape: readonly number[], data: Float32Array): Float32Array => {
    if (key === CLASS_LOGIT_BIAS_KEY && shape.length === 1 && shape[0] === bias.length) return bias.slice();
    if (RESIDUAL_NORM_KEY.test(key)) return data.map((v) => v * gain);
    return data;
  };
  const wrap = (store: WeightStore): WeightStore =>
    new Proxy(store, {
      get(target, prop) {
        if (prop === 'description') return description;
        if (prop === 'take') return (key: string, shape: readonly number[], init?: RandomInit) => adjust(key, shape, target.take(key, shape, init));
        if (prop === 'takeOptional') {
          return (key: string, shape: readonly number[], init?: RandomInit) => {
            const data = target.takeOptional(key, shape, init);
            return data === undefined ? undefined : adjust(key, shape, data);
          };
        }
        if (prop === 'fork') return () => wrap(target.fork());
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  return wrap(WeightStore.random(seed, options.store));
}
