/**
 * Training checkpoints. Each checkpoint is two safetensors files written atomically:
 *
 * - `model_<iter>.safetensors`: the whole state dict under torchvision names (trained parameters
 *   and the fixed tensors), plain float32 tensors plus string metadata (`rcnn.iteration`,
 *   `rcnn.seed`, `rcnn.config` as JSON, `rcnn.categories` as JSON when known). `rcnn predict
 *   --weights` reads it like any torchvision safetensors file and so does PyTorch
 *   (`safetensors.torch.load_file` → `model.load_state_dict`).
 * - `model_<iter>.solver.safetensors`: the optimizer state, `momentum.<name>` per parameter, with
 *   the same iteration and seed, so the model file stays a clean state dict.
 *
 * `last_checkpoint` (Detectron2's name) holds the model file's name and is written last: it only
 * ever points at a complete pair, and `--resume` starts from it.
 */
import { open, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type HostTensor, MAX_SAFETENSORS_HEADER_BYTES, WeightsError, decodeEntry, readSafetensorsFile, writeFileAtomic, writeSafetensors } from '@rcnn/core';
import { TrainingError } from './errors.js';

/** Name of the file that points at the newest checkpoint. */
export const LAST_CHECKPOINT_FILE = 'last_checkpoint';
/** Prefix of the momentum tensors in the solver file. */
export const MOMENTUM_PREFIX = 'momentum.';
/** Metadata keys of checkpoint files. */
export const CHECKPOINT_METADATA = {
  format: 'rcnn.format',
  iteration: 'rcnn.iteration',
  seed: 'rcnn.seed',
  config: 'rcnn.config',
  categories: 'rcnn.categories',
} as const;
/** Value of `rcnn.format` in checkpoints this version writes. */
export const CHECKPOINT_FORMAT = 'rcnn-node-train-1';

/** The state a checkpoint holds and `--resume` restores. */
export interface TrainingState {
  /** Iterations completed (the next one to run is this index). */
  readonly iteration: number;
  /** The run's seed (data order, augmentation and sampling draws derive from it). */
  readonly seed: number;
  /** Current value of every trainable parameter. */
  readonly parameters: ReadonlyMap<string, Float32Array>;
  /** SGD momentum buffers. */
  readonly momentum: ReadonlyMap<string, Float32Array>;
}

/** Paths of a written checkpoint. */
export interface CheckpointFiles {
  readonly model: string;
  readonly solver: string;
  readonly iteration: number;
}

/** File name of the checkpoint after `iteration` iterations (`model_0000100.safetensors`), or `model_final.safetensors`. */
export function checkpointName(iteration: number, final = false): string {
  return final ? 'model_final.safetensors' : `model_${String(iteration).padStart(7, '0')}.safetensors`;
}

/** The solver file that goes with a model file. */
export function solverPath(modelPath: string): string {
  return modelPath.replace(/\.safetensors$/, '') + '.solver.safetensors';
}

/**
 * Writes a checkpoint into `dir`: solver file, then model file, then `last_checkpoint`, each
 * atomically. `shapes` gives each trainable parameter's dims; `metadata` is added to both files.
 */
export async function writeCheckpoint(
  dir: string,
  fileName: string,
  state: TrainingState,
  shapes: ReadonlyMap<string, readonly number[]>,
  fixed: ReadonlyMap<string, HostTensor>,
  metadata: Readonly<Record<string, string>> = {},
): Promise<CheckpointFiles> {
  const meta = {
    ...metadata,
    [CHECKPOINT_METADATA.format]: CHECKPOINT_FORMAT,
    [CHECKPOINT_METADATA.iteration]: String(state.iteration),
    [CHECKPOINT_METADATA.seed]: String(state.seed),
  };
  const tensor = (name: string, data: Float32Array): HostTensor => {
    const dims = shapes.get(name);
    if (!dims) throw new TrainingError(`checkpoint: no shape for parameter "${name}"`);
    return { dtype: 'float32', dims, data };
  };
  const modelTensors: [string, HostTensor][] = [];
  for (const [name, data] of state.parameters) modelTensors.push([name, tensor(name, data)]);
  for (const [name, t] of fixed) if (!state.parameters.has(name)) modelTensors.push([name, t]);
  const momentumTensors: [string, HostTensor][] = [...state.momentum].map(([name, data]) => [`${MOMENTUM_PREFIX}${name}`, tensor(name, data)]);
  const model = join(dir, fileName);
  const solver = solverPath(model);
  await writeFileAtomic(solver, writeSafetensors(momentumTensors, meta));
  await writeFileAtomic(model, writeSafetensors(modelTensors, meta));
  await writeFileAtomic(join(dir, LAST_CHECKPOINT_FILE), `${fileName}\n`);
  return { model, solver, iteration: state.iteration };
}

/** The model file `last_checkpoint` in `dir` points at, or undefined when there is none. */
export async function lastCheckpoint(dir: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, LAST_CHECKPOINT_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const name = text.trim();
  if (name.length === 0 || basename(name) !== name) throw new TrainingError(`${join(dir, LAST_CHECKPOINT_FILE)} does not name a checkpoint file (got "${name}")`);
  return join(dir, name);
}

/** A checkpoint read back: its state, every tensor of the model file and the metadata. */
export interface LoadedCheckpoint {
  readonly state: TrainingState;
  readonly tensors: ReadonlyMap<string, HostTensor>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly files: CheckpointFiles;
}

function integerMeta(metadata: Readonly<Record<string, string>>, key: string, file: string): number {
  const raw = metadata[key];
  const n = Number(raw);
  if (raw === undefined || !Number.isSafeInteger(n) || n < 0) {
    throw new TrainingError(`${file} is not a training checkpoint of rcnn-node (metadata ${key} is ${raw === undefined ? 'missing' : JSON.stringify(raw)})`, {
      hint: 'resume from a checkpoint that rcnn train wrote; use --weights for other weights',
    });
  }
  return n;
}

/**
 * Reads a checkpoint (model file and its solver file). `trainable` names the parameters the run
 * trains: their values come back as `state.parameters` (a missing one is an error), the rest of
 * the model file as `tensors`.
 */
export async function readCheckpoint(modelPath: string, trainable: readonly string[]): Promise<LoadedCheckpoint> {
  const modelFile = readSafetensorsFile(modelPath);
  const solverFilePath = solverPath(modelPath);
  let solverFile;
  try {
    solverFile = readSafetensorsFile(solverFilePath);
  } catch (e) {
    throw new TrainingError(`checkpoint ${modelPath} has no readable solver state ${solverFilePath}: ${(e as Error).message}`, {
      hint: 'both files of a checkpoint are needed to resume; start a new run with --weights to fine-tune from the model file alone',
      cause: e,
    });
  }
  const iteration = integerMeta(modelFile.metadata, CHECKPOINT_METADATA.iteration, modelPath);
  const solverIteration = integerMeta(solverFile.metadata, CHECKPOINT_METADATA.iteration, solverFilePath);
  if (iteration !== solverIteration) {
    throw new TrainingError(`checkpoint ${modelPath} is at iteration ${iteration} but its solver state ${solverFilePath} at ${solverIteration}`);
  }
  const seed = integerMeta(modelFile.metadata, CHECKPOINT_METADATA.seed, modelPath);
  const tensors = new Map<string, HostTensor>();
  for (const [name, entry] of modelFile.entries) tensors.set(name, decodeEntry(entry, modelPath));
  const float32 = (t: HostTensor, name: string, file: string): Float32Array => {
    if (t.dtype !== 'float32') throw new WeightsError(`${file}: tensor "${name}" is ${t.dtype}, a training checkpoint holds float32`, { file, key: name });
    // Own copies: the engine updates them in place and the file buffer must not change.
    return (t.data as Float32Array).slice();
  };
  const parameters = new Map<string, Float32Array>();
  for (const name of trainable) {
    const t = tensors.get(name);
    if (!t) throw new TrainingError(`checkpoint ${modelPath} has no tensor "${name}", which this run trains`, { hint: 'resume with the config the checkpoint was trained with' });
    parameters.set(name, float32(t, name, modelPath));
  }
  const momentum = new Map<string, Float32Array>();
  for (const [key, entry] of solverFile.entries) {
    if (!key.startsWith(MOMENTUM_PREFIX)) continue;
    const name = key.slice(MOMENTUM_PREFIX.length);
    if (!parameters.has(name)) throw new TrainingError(`solver state ${solverFilePath} has momentum for "${name}", which this run does not train`, { hint: 'resume with the config the checkpoint was trained with' });
    momentum.set(name, float32(decodeEntry(entry, solverFilePath), key, solverFilePath));
  }
  return {
    state: { iteration, seed, parameters, momentum },
    tensors,
    metadata: modelFile.metadata,
    files: { model: modelPath, solver: solverFilePath, iteration },
  };
}

/** The string metadata of a safetensors file, reading only its header (checkpoints can be large). */
export async function readSafetensorsMetadata(path: string): Promise<Readonly<Record<string, string>>> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(8);
    if ((await handle.read(head, 0, 8, 0)).bytesRead < 8) return {};
    const length = Number(head.readBigUInt64LE(0));
    const size = (await handle.stat()).size;
    if (length > size - 8 || length > MAX_SAFETENSORS_HEADER_BYTES) return {};
    const header = Buffer.alloc(length);
    await handle.read(header, 0, length, 8);
    const parsed = JSON.parse(header.toString('utf8')) as { __metadata__?: unknown };
    const meta = parsed.__metadata__;
    if (typeof meta !== 'object' || meta === null) return {};
    return Object.fromEntries(Object.entries(meta).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    // Not a readable safetensors header: the weights reader reports that properly.
    return {};
  } finally {
    await handle.close();
  }
}

/** A checkpoint's category map (`rcnn.categories`: `{categoryIds, names}` of labels 1..K), if it has a valid one. */
export function checkpointCategories(metadata: Readonly<Record<string, string>>): { readonly categoryIds: readonly number[]; readonly names: readonly string[] } | undefined {
  const raw = metadata[CHECKPOINT_METADATA.categories];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as { categoryIds?: unknown; names?: unknown };
    if (!Array.isArray(v.categoryIds) || !Array.isArray(v.names) || v.categoryIds.length !== v.names.length) return undefined;
    if (!v.categoryIds.every((x) => Number.isInteger(x)) || !v.names.every((x) => typeof x === 'string')) return undefined;
    return { categoryIds: v.categoryIds as number[], names: v.names as string[] };
  } catch {
    return undefined;
  }
}
