/**
 * Typed errors of rcnn-node. Every failure the project detects itself is one of these, so a
 * service can tell "bad input" (reject the request) from "bug" (anything else) with `instanceof`.
 * Messages name the file, key, shape or value at fault and, where it helps, the allowed values.
 */

/** Base class of every error rcnn-node raises on purpose. `code` is stable across versions. */
export class RcnnError extends Error {
  /** Machine-readable category, e.g. `E_CONFIG`. */
  readonly code: string;
  /** One line a user can act on (what to do next), shown by the CLI under the message. */
  readonly hint: string | undefined;

  constructor(code: string, message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options?.hint;
  }
}

/** A configuration key is unknown, has the wrong type, or contradicts another key. */
export class ConfigError extends RcnnError {
  /** The dotted key at fault (`MODEL.NUM_CLASSES`), when there is one. */
  readonly key: string | undefined;
  constructor(message: string, options?: { key?: string; hint?: string; cause?: unknown }) {
    super('E_CONFIG', message, options);
    this.key = options?.key;
  }
}

/** A weights file is malformed, or a tensor is missing, extra, of the wrong shape/dtype or not finite. */
export class WeightsError extends RcnnError {
  /** The file the weights came from, when known. */
  readonly file: string | undefined;
  /** The tensor key at fault, when there is one. */
  readonly key: string | undefined;
  constructor(message: string, options?: { file?: string; key?: string; hint?: string; cause?: unknown }) {
    super('E_WEIGHTS', message, options);
    this.file = options?.file;
    this.key = options?.key;
  }
}

/** A registry lookup failed (unknown implementation name) or a registration was invalid. */
export class RegistryError extends RcnnError {
  constructor(message: string, options?: { hint?: string }) {
    super('E_REGISTRY', message, options);
  }
}

/** The graph being built is inconsistent (unknown blob, duplicate name, bad attribute). A bug in a head. */
export class GraphError extends RcnnError {
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super('E_GRAPH', message, options);
  }
}

/** An input image or tensor cannot be used (corrupt, empty, too large, wrong layout). */
export class InputError extends RcnnError {
  /** The file or input index at fault, when known. */
  readonly source: string | undefined;
  constructor(message: string, options?: { source?: string; hint?: string; cause?: unknown }) {
    super('E_INPUT', message, options);
    this.source = options?.source;
  }
}

/** Training targets (GT boxes, labels, masks, keypoints) are invalid for the model or the image. */
export class TargetError extends RcnnError {
  /** The image index (in the batch) and the target field at fault, e.g. `image 0 boxes[3]`. */
  readonly source: string | undefined;
  constructor(message: string, options?: { source?: string; hint?: string; cause?: unknown }) {
    super('E_TARGET', message, options);
    this.source = options?.source;
  }
}

/**
 * An output file cannot be written (no space, no permission, its directory is missing, it is a
 * directory, or it is one of the inputs). Nothing was left at `file`: a failed write never leaves a
 * truncated file behind.
 */
export class OutputError extends RcnnError {
  /** The output path at fault. */
  readonly file: string;
  /** The system error code (`ENOSPC`, `EACCES`, …) when a system call failed. */
  readonly errno: string | undefined;
  constructor(message: string, options: { file: string; errno?: string; hint?: string; cause?: unknown }) {
    super('E_OUTPUT', message, options);
    this.file = options.file;
    this.errno = options.errno;
  }
}

/**
 * `items[index]` where the caller's own logic guarantees the index is in range (an output it
 * declared, a level it enumerated, a list it checked the length of). Under
 * `noUncheckedIndexedAccess` an index read is `T | undefined`; this states the invariant and checks
 * it. Out of range is a bug in rcnn-node, not bad input, so it throws a plain `RangeError` (not an
 * {@link RcnnError}) naming `what`, the index and the length. Input read from users, configs and
 * files is checked where it is read instead, with the typed error naming the key. Not for hot
 * per-element loops (those rely on their loop bound).
 */
export function at<T>(items: ArrayLike<T>, index: number, what: string): T {
  if (!Number.isInteger(index) || index < 0 || index >= items.length) {
    throw new RangeError(`${what}: index ${index} out of range (length ${items.length})`);
  }
  return items[index] as T;
}
