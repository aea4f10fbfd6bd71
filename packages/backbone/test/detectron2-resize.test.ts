/**
 * Detectron2's ResizeShortestEdge (`INPUT.RESIZE_RULE: detectron2`): its size rule, and the PIL
 * bilinear resampling of the 8-bit image, bit-exact against the image Detectron2's DefaultPredictor
 * fed its network (`input.image_bgr.<i>` of fixtures/d2, Pillow 9.4).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeEntry, loadConfig, readSafetensorsFile } from '@rcnn/core';
import { decodeRgb, findRepoRoot } from '@rcnn/testing';
import { GeneralizedRCNNTransform, detectron2ResizedSize, pilBilinearAxis, pilBilinearResizeRgb8 } from '../src/index.js';

const caseDir = join(findRepoRoot(), 'fixtures', 'd2', 'd2_maskrcnn_R50FPN_tiny_pub');

describe('Detectron2 ResizeShortestEdge', () => {
  it('computes sizes as Detectron2 does: int(x + 0.5), unrounded long side against MAX_SIZE', () => {
    assert.deepEqual(detectron2ResizedSize(384, 512, 320, 512), { height: 320, width: 427, scale: 320 / 384 });
    // 426.67 wide rounds up (floor or float32 torchvision give 426).
    assert.equal(detectron2ResizedSize(320, 480, 320, 512).width, 480);
    // Long side 800 * 2000/1000 = 1600 > 1333: both sides scaled by 1333 / 1600.
    const limited = detectron2ResizedSize(1000, 2000, 800, 1333);
    assert.deepEqual([limited.height, limited.width], [Math.trunc(800 * (1333 / 1600) + 0.5), 1333]);
  });

  it('has fixed-point coefficients that sum to one and widen when downscaling', () => {
    const up = pilBilinearAxis(10, 20);
    const down = pilBilinearAxis(20, 10);
    assert.ok(down.window > up.window, 'the antialiasing support grows with the downscaling factor');
    for (const axis of [up, down]) {
      for (let o = 0; o < axis.outSize; o++) {
        let sum = 0;
        for (let i = 0; i < axis.count[o]!; i++) sum += axis.coefficients[o * axis.window + i]!;
        assert.ok(Math.abs(sum - 2 ** 22) <= axis.count[o]!, `output ${o}: coefficients sum to ${sum}`);
      }
    }
    // Equal sizes copy.
    const src = Uint8Array.from({ length: 4 * 3 * 3 }, (_, i) => (i * 37) % 256);
    assert.deepEqual(pilBilinearResizeRgb8(src, 4, 3, 4, 3), src);
  });

  it('resamples the 8-bit image bit-exactly as Pillow did for Detectron2', async () => {
    const reference = readSafetensorsFile(join(caseDir, 'reference.safetensors'));
    for (const index of [0, 1]) {
      const image = await decodeRgb(join(caseDir, `image_${index}.png`));
      const bgr = decodeEntry(reference.entries.get(`input.image_bgr.${index}`)!);
      const [h, w] = bgr.dims as [number, number];
      const rgb = pilBilinearResizeRgb8(image.data as Uint8Array, image.width, image.height, w, h);
      const expected = bgr.data as Uint8Array;
      let mismatches = 0;
      for (let p = 0; p < h * w; p++) for (let c = 0; c < 3; c++) if (rgb[p * 3 + c] !== expected[p * 3 + 2 - c]) mismatches++;
      assert.equal(mismatches, 0, `image_${index} (${image.width}x${image.height} -> ${w}x${h}): ${mismatches} samples differ`);
    }
  });

  it('feeds the network Detectron2 input: BGR 0..255 minus the means, zero-padded to 32', async () => {
    const config = loadConfig({ layers: [join(caseDir, 'config.yaml')] });
    const image = await decodeRgb(join(caseDir, 'image_0.png'));
    const batch = new GeneralizedRCNNTransform().prepare([image], config);
    assert.deepEqual(batch.images.dims, [1, 3, 320, 448]);
    assert.deepEqual(Array.from(batch.imageSizes.data as BigInt64Array, Number), [320, 427]);
    const bgr = decodeEntry(readSafetensorsFile(join(caseDir, 'reference.safetensors')).entries.get('input.image_bgr.0')!).data as Uint8Array;
    const means = [103.53, 116.28, 123.675].map(Math.fround);
    const data = batch.images.data as Float32Array;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 320; y++) {
        for (let x = 0; x < 448; x++) {
          const expected = x < 427 ? Math.fround(bgr[(y * 427 + x) * 3 + c]! - means[c]!) : 0;
          const got = data[(c * 320 + y) * 448 + x];
          if (got !== expected) assert.fail(`channel ${c} (${y}, ${x}): ${got} != ${expected}`);
        }
      }
    }
  });
});
