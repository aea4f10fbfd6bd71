/**
 * The one error type of @rcnn/checkpoint. It is a core {@link WeightsError} (code `E_WEIGHTS`),
 * so callers that only know core keep working, plus a stable machine-readable `reason` so a test
 * or a service can tell a hostile pickle from a truncated download without parsing messages.
 */
import { WeightsError } from '@rcnn/core';

/** Why a checkpoint was refused. Stable across versions (tests and services match on it). */
export type CheckpointErrorReason =
  /** The file could not be read from disk. */
  | 'io'
  /** Not a zip, pickle or safetensors file, or an unsupported container (TorchScript, legacy tar). */
  | 'unrecognized-file'
  /** Zip structure is damaged: no end-of-central-directory record, bad offsets, truncated headers. */
  | 'zip-corrupt'
  /** A zip entry's data lies (partly) past the end of the file. */
  | 'zip-entry-out-of-bounds'
  /** A zip entry uses a compression method or feature this reader does not implement. */
  | 'zip-unsupported'
  /** A zip entry's CRC-32 or inflated size does not match its header. */
  | 'zip-checksum'
  /** The pickle stream ends in the middle of an opcode or a declared length runs past its end. */
  | 'pickle-truncated'
  /** An opcode this restricted unpickler does not implement (or one that is never allowed). */
  | 'pickle-opcode'
  /** A GLOBAL / STACK_GLOBAL names something outside the allow-list. */
  | 'pickle-global'
  /** The pickle is well-formed bytes but not a valid program (stack underflow, bad argument types). */
  | 'pickle-malformed'
  /** Nesting, stack or integer sizes beyond the reader's limits. */
  | 'pickle-limit'
  /** A tensor storage (`data/<key>`) is absent from the archive. */
  | 'storage-missing'
  /** A storage's bytes do not match the element count the pickle declares. */
  | 'storage-size'
  /** A tensor view (size, stride, offset) reaches past the end of its storage. */
  | 'view-out-of-bounds'
  /** Big-endian data (the reader only handles little-endian checkpoints). */
  | 'byte-order'
  /** An element type the reader cannot represent. */
  | 'dtype'
  /** The file holds no state dict the reader can find (wrong top-level structure). */
  | 'structure'
  /** The naming convention could not be detected, or a name map failed (shape mismatch, clash). */
  | 'name-map';

/** A checkpoint could not be read safely; `reason` says why and the message names the file/entry/global. */
export class CheckpointError extends WeightsError {
  /** Machine-readable cause. */
  readonly reason: CheckpointErrorReason;
  /** For `pickle-global`: the dotted name that was refused (e.g. `posix.system`). */
  readonly global: string | undefined;

  constructor(
    reason: CheckpointErrorReason,
    message: string,
    options?: { file?: string; key?: string; hint?: string; cause?: unknown; global?: string },
  ) {
    super(message, options);
    this.reason = reason;
    this.global = options?.global;
  }
}
