/**
 * A user-supplied ONNX model timed on the same images as rcnn-node (`rcnn bench --baseline`), e.g.
 * torchvision's own export of the same architecture, which takes one CHW float image in [0, 1]
 * and does its transform inside the graph.
 */
import { type HostTensor, hostTensor } from '@rcnn/core';
import { type DecodedImage, type Detector, type Device, OrtSession, type ThreadSettings } from '@rcnn/runtime';
import { UsageError } from '../errors.js';

/** How the baseline model's inputs are fed. */
export type BaselineInputMode = 'chw' | 'nchw' | 'rcnn';

/** An opened baseline model. */
export class Baseline {
  readonly session: OrtSession;
  readonly mode: BaselineInputMode;
  private readonly inputName: string;

  private constructor(session: OrtSession, mode: BaselineInputMode, inputName: string) {
    this.session = session;
    this.mode = mode;
    this.inputName = inputName;
  }

  /** Opens `path` on `device` and works out how to feed it. */
  static async open(path: string, device: Device, threads: ThreadSettings): Promise<Baseline> {
    const session = await OrtSession.open(path, { device, threads, logLevel: 'fatal' });
    const names = session.inputs.map((i) => i.name);
    if (['images', 'image_sizes', 'original_sizes'].every((n) => names.includes(n))) return new Baseline(session, 'rcnn', 'images');
    const first = session.inputs[0]!;
    if (session.inputs.length === 1 && first.type === 'float32' && (first.shape?.length === 3 || first.shape?.length === 4)) {
      return new Baseline(session, first.shape.length === 3 ? 'chw' : 'nchw', first.name);
    }
    await session.release();
    const described = session.inputs.map((i) => `${i.name} ${i.type ?? '?'} [${(i.shape ?? []).join(', ')}]`).join('; ');
    throw new UsageError(
      `--baseline ${path}: cannot feed inputs ${described}`,
      'a baseline takes one float32 CHW (or NCHW) image in [0, 1], like torchvision\'s export, or rcnn-node\'s images / image_sizes / original_sizes',
    );
  }

  /** The feeds for one decoded image. */
  feeds(image: DecodedImage, detector: Detector): Record<string, HostTensor> {
    if (this.mode === 'rcnn') {
      const p = detector.prepare([image]);
      return { images: p.images, image_sizes: p.imageSizes, original_sizes: p.originalSizes };
    }
    const { width: w, height: h, data } = image;
    const chw = new Float32Array(3 * w * h);
    const scale = 1 / image.maxValue;
    for (let p = 0; p < w * h; p++) {
      chw[p] = data[3 * p]! * scale;
      chw[w * h + p] = data[3 * p + 1]! * scale;
      chw[2 * w * h + p] = data[3 * p + 2]! * scale;
    }
    return { [this.inputName]: hostTensor('float32', this.mode === 'chw' ? [3, h, w] : [1, 3, h, w], chw) };
  }

  /** Runs once on `image`; returns the time from the decoded image to the outputs, and the session's own. */
  async time(image: DecodedImage, detector: Detector): Promise<{ ms: number; sessionMs: number }> {
    const started = performance.now();
    const run = await this.session.run(this.feeds(image, detector));
    return { ms: performance.now() - started, sessionMs: run.sessionMs };
  }
}
