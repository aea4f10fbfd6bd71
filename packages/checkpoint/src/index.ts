/**
 * @rcnn/checkpoint: reads the weights users actually have, safely. PyTorch `.pth` (zip and legacy
 * formats), Detectron2 / Detectron `.pkl` and safetensors, through a restricted unpickler that
 * executes nothing; maps Detectron2 and Detectron names (and torchvision's own legacy names) to
 * torchvision state-dict names; and reports every key it renamed, rewrote, ignored or could not map.
 *
 * The name-rule tables and the unpickler allow-list are exported as data (docs/weights.md prints
 * them; `ZipArchive` is the bounded zip reader the reliability suite re-zips checkpoints with).
 * Writing numpy pickles is test tooling: `writeNumpyPickle` lives in `@rcnn/testing`.
 */
export { CheckpointError, type CheckpointErrorReason } from './errors.js';
export {
  type CheckpointResult,
  type ConvertOptions,
  type ExportOptions,
  type ReadCheckpointOptions,
  checkpointWeightSource,
  convertCheckpointFile,
  convertToSafetensors,
  exportCheckpoint,
  openCheckpoint,
  readCheckpoint,
} from './checkpoint.js';
export {
  type AffineChannelForm,
  CHECKPOINT_FORMATS,
  type CheckpointFormat,
  type CheckpointReport,
  type ConfigHints,
  formatReport,
} from './report.js';
export { inferredConfigLayer, suggestedConfigLayer } from './config-layer.js';
export { type AnchorGrid, DETECTRON2_RULES } from './maps/detectron2.js';
export type { ContainerKind } from './containers.js';
export type { UnpickleLimits } from './pickle/unpickler.js';
export { DETECTRON_RULES } from './maps/detectron.js';
export { TORCHVISION_RULES } from './maps/torchvision.js';
export { type NameRule, rulesTable } from './maps/rules.js';
export { ALLOWED_GLOBALS, type AllowedGlobal } from './pickle/allow-list.js';
export { ZipArchive, type ZipEntry } from './zip.js';
export { CHECKPOINT_READER_FORMAT, register } from './register.js';
