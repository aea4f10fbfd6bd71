/**
 * Errors of the runtime that core's error classes do not cover. Like every rcnn-node error they
 * extend {@link RcnnError}, so callers tell them apart with `instanceof` and `code`.
 */
import { RcnnError } from '@rcnn/core/web';

/** A device string is malformed, names a GPU that does not exist, or CUDA is required (`strict`) but unavailable. */
export class DeviceError extends RcnnError {
  /** The device string at fault (`cuda:7`, `tpu`), when there is one. */
  readonly device: string | undefined;
  constructor(message: string, options?: { device?: string; hint?: string; cause?: unknown }) {
    super('E_DEVICE', message, options);
    this.device = options?.device;
  }
}

/** onnxruntime failed to create a session or to run one (a bug in a graph, or the device ran out of memory). */
export class InferenceError extends RcnnError {
  /** The device of the replica that failed. */
  readonly device: string | undefined;
  constructor(message: string, options?: { device?: string; hint?: string; cause?: unknown }) {
    super('E_INFERENCE', message, options);
    this.device = options?.device;
  }
}

/** The detector (or a session) was closed while the request was queued or could not be served. */
export class ShutdownError extends RcnnError {
  constructor(message = 'the detector was closed before this request could run', options?: { hint?: string }) {
    super('E_SHUTDOWN', message, options);
  }
}
