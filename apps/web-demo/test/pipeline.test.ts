/**
 * The page's pipeline (only the packages' `/web` entries) with onnxruntime-web under Node, on the
 * Mask R-CNN and Keypoint R-CNN fixtures: the model's metadata names its host post-processors, and
 * the detections, pasted masks and decoded keypoints equal the Node runtime's on the same image
 * (boxes <= 1e-2 px, scores <= 1e-4, labels equal, masks IoU >= 0.99, keypoints within 1 px: the
 * parity harness's rules).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeRle } from '@rcnn/core';
import { BUILT_IN_PACKAGES } from '@rcnn/parity-tools';
import { createDetector, exportModel, readKeypoints, readMasks } from '@rcnn/runtime';
import { decodeRgb, publicCaseDir } from '@rcnn/testing';
import * as ort from 'onnxruntime-web';
import { type RunModel, detect, detectionsJson, hostOutputs, modelInfo } from '../src/pipeline.js';

describe('the page pipeline (web entries, onnxruntime-web under Node) equals the Node runtime', () => {
  for (const [name, postprocessor] of [
    ['maskrcnn_tiny', 'paste_masks'],
    ['keypointrcnn_tiny', 'heatmaps_to_keypoints'],
  ] as const) {
    it(name, async () => {
      const dir = publicCaseDir(name);
      const source = { config: join(dir, 'case.json'), weights: join(dir, 'weights.safetensors'), register: BUILT_IN_PACKAGES };
      const bytes = (await exportModel(source)).bytes;
      const info = modelInfo(bytes);
      assert.deepEqual(info.hostPostprocessors, [postprocessor]);
      ort.env.wasm.numThreads = 1;
      const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
      const run: RunModel = async (feeds) => {
        const t: Record<string, InstanceType<typeof ort.Tensor>> = {};
        for (const [k, v] of Object.entries(feeds)) t[k] = new ort.Tensor(v.dtype as 'float32', v.data as Float32Array, [...v.dims]);
        return hostOutputs(await session.run(t));
      };
      const image = join(dir, 'image_0.png');
      const { detections, times } = await detect(run, info, await decodeRgb(image));
      await session.release();
      assert.ok(times.inference > 0);
      const got = detectionsJson(detections);

      const detector = await createDetector({ ...source, devices: 'cpu', threads: { intraOp: 1, interOp: 1 } });
      const [outcome] = await detector.predict([image]);
      await detector.close();
      assert.ok(outcome.ok, outcome.ok ? '' : outcome.error.message);
      const ref = outcome.result.detections!;
      const n = ref.scores.length;
      assert.ok(n > 0);
      assert.deepEqual(got.labels, Array.from(ref.labels, Number));
      for (let i = 0; i < 4 * n; i++) assert.ok(Math.abs(got.boxes[i]! - ref.boxes[i]!) <= 1e-2, `box value ${i}`);
      for (let d = 0; d < n; d++) assert.ok(Math.abs(got.scores[d]! - ref.scores[d]!) <= 1e-4, `score ${d}`);
      const masks = readMasks(ref);
      if (postprocessor === 'paste_masks') {
        assert.ok(masks && got.masks);
        for (let d = 0; d < n; d++) {
          const a = decodeRle({ size: [...ref.originalSize], counts: got.masks[d]! });
          const b = decodeRle(masks.rle(d));
          let inter = 0;
          let union = 0;
          for (let i = 0; i < a.length; i++) {
            inter += a[i]! & b[i]!;
            union += a[i]! | b[i]!;
          }
          assert.ok(union === 0 || inter / union >= 0.99, `mask ${d}: IoU ${inter / union}`);
        }
      } else {
        const kp = readKeypoints(ref)!;
        assert.ok(got.keypoints);
        assert.equal(got.keypoints.length, kp.keypoints.length);
        for (let i = 0; i < kp.keypoints.length; i += 3) {
          assert.ok(Math.hypot(got.keypoints[i]! - kp.keypoints[i]!, got.keypoints[i + 1]! - kp.keypoints[i + 1]!) <= 1, `keypoint ${i / 3}`);
        }
      }
    });
  }
});
