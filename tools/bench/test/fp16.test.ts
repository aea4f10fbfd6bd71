import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type ImageDetections } from '@rcnn/core';
import { createDetector } from '@rcnn/runtime';
import { publicCaseDir } from '@rcnn/testing';
import { register as registerBackbone } from '@rcnn/backbone';
import { register as registerBoxHead } from '@rcnn/box-head';
import { register as registerFpn } from '@rcnn/fpn';
import { register as registerKeypointHead } from '@rcnn/keypoint-head';
import { register as registerMaskHead } from '@rcnn/mask-head';
import { register as registerRpn } from '@rcnn/rpn';

// The FPN fixtures (the C4 one needs @rcnn/res5-head, which this package does not depend on).
const CASES = ['maskrcnn_tiny', 'keypointrcnn_tiny', 'fasterrcnn_tiny_x_batch2'];
const REGISTER = [registerBackbone, registerFpn, registerRpn, registerBoxHead, registerMaskHead, registerKeypointHead];

async function detect(dir: string, precision: 'float32' | 'float16'): Promise<ImageDetections[]> {
  const images = readdirSync(dir)
    .filter((f) => /^image_\d+\.png$/.test(f))
    .sort()
    .map((f) => join(dir, f));
  const detector = await createDetector({ config: join(dir, 'case.json'), weights: join(dir, 'weights.safetensors'), register: REGISTER, precision, batchSize: images.length, threads: { intraOp: 1 }, onWarning: () => undefined });
  try {
    return (await detector.predict(images)).map((o) => {
      if (!o.ok) throw o.error;
      return o.result.detections!;
    });
  } finally {
    await detector.close();
  }
}

function iou(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const iw = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const ih = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = iw * ih;
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  return union > 0 ? inter / union : 0;
}

describe('precision float16 (onnxruntime CPU inserts casts where it lacks float16 kernels)', () => {
  it('gives the float32 detections on the parity fixtures: every one matched, >= 95% of them at IoU >= 0.98', async () => {
    let total = 0;
    let close = 0;
    for (const name of CASES) {
      const dir = publicCaseDir(name);
      const [full, half] = [await detect(dir, 'float32'), await detect(dir, 'float16')];
      full.forEach((a, i) => {
        const b = half[i]!;
        const used = new Set<number>();
        for (let d = 0; d < a.scores.length; d++) {
          // Greedy one-to-one matching by IoU among detections of the same label.
          let best = -1;
          let bestIou = 0;
          for (let e = 0; e < b.scores.length; e++) {
            if (used.has(e) || b.labels[e] !== a.labels[d]) continue;
            const v = iou(a.boxes.subarray(4 * d, 4 * d + 4), b.boxes.subarray(4 * e, 4 * e + 4));
            if (v > bestIou) [best, bestIou] = [e, v];
          }
          assert.ok(best >= 0 && bestIou >= 0.5, `${name} image ${i} detection ${d}: no float16 match (best IoU ${bestIou})`);
          used.add(best);
          assert.ok(Math.abs(a.scores[d]! - b.scores[best]!) <= 0.01, `${name} image ${i} detection ${d}: score ${a.scores[d]} vs ${b.scores[best]}`);
          total++;
          if (bestIou >= 0.98) close++;
        }
      });
    }
    // 122 of 127 today: the few below 0.98 are sub-pixel-thin boxes (0.05 px moves such a box's IoU
    // by several %) and a near-threshold detection whose NMS winner changed (docs/performance.md).
    assert.ok(total > 100, `${total} detections`);
    assert.ok(close / total >= 0.95, `${close} of ${total} detections at IoU >= 0.98`);
  });
});
