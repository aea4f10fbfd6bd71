import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError, type RgbImage, loadConfig } from '@rcnn/core';
import { PUBLIC_CASES, compareDense, compareExact } from '@rcnn/testing';
import {
  GeneralizedRCNNTransform,
  detectronResizedSize,
  opencvLinearAxis,
  padToMultiple,
  pytorchLinearAxis,
  resampleBilinear,
  resampleBilinearRgb8,
  torchvisionResizedSize,
} from '../src/index.js';
import { caseSetup } from './helpers.js';

const transform = new GeneralizedRCNNTransform();

describe('GeneralizedRCNNTransform parity (torchvision 0.14.1)', () => {
  for (const name of PUBLIC_CASES) {
    it(`${name}: transform.images and transform.image_sizes`, async () => {
      const { parity, config } = caseSetup(name);
      const images = await parity.images();
      const batch = transform.prepare(images, config);
      const sizes = compareExact('transform.image_sizes', batch.imageSizes, parity.reference('transform.image_sizes'));
      assert.ok(sizes.pass, sizes.detail);
      const dense = compareDense('transform.images', batch.images, parity.reference('transform.images'));
      console.log(`  ${name} transform.images ${dense.detail}`);
      assert.ok(dense.pass, dense.detail);
      assert.deepEqual(
        Array.from(batch.originalSizes.data, Number),
        images.flatMap((im) => [im.height, im.width]),
      );
    });
  }

  it('pads with exact zeros and keeps each image top-left (batch of two)', async () => {
    const { parity, config } = caseSetup('fasterrcnn_tiny_x_batch2');
    const batch = transform.prepare(await parity.images(), config);
    const [n, c, h, w] = batch.images.dims as [number, number, number, number];
    assert.deepEqual([n, c, h, w], [2, 3, 224, 256]);
    const sizes = Array.from(batch.imageSizes.data, Number);
    assert.deepEqual(sizes, [159, 239, 218, 160]);
    for (let i = 0; i < n; i++) {
      const [ih, iw] = [sizes[2 * i]!, sizes[2 * i + 1]!];
      for (let ch = 0; ch < c; ch++) {
        for (let y = 0; y < h; y++) {
          for (let x = y < ih ? iw : 0; x < w; x++) assert.equal(batch.images.data[((i * c + ch) * h + y) * w + x], 0);
        }
      }
    }
  });
});

describe('resize rules', () => {
  it('torchvision float32 scale: 200x300 at min 160 gives 159x239', () => {
    const s = torchvisionResizedSize(200, 300, 160, 256);
    assert.deepEqual([s.height, s.width], [159, 239]);
    // f32(f32(1/200) * 160) is 0.79999995, one ulp below f32(0.8).
    assert.equal(s.scale, 0.7999999523162842);
  });

  it('torchvision: the long side is capped by MAX_SIZE; 480x640 at 800/1333 gives 800x1066', () => {
    const s = torchvisionResizedSize(480, 640, 800, 1333);
    assert.deepEqual([s.height, s.width], [800, 1066]);
    const capped = torchvisionResizedSize(100, 1000, 800, 1333);
    assert.deepEqual([capped.height, capped.width], [133, 1333]);
  });

  it('detectron: SCALE/short unless round(scale*long) > MAX_SIZE, sizes rounded', () => {
    const s = detectronResizedSize(480, 640, 800, 1333);
    assert.equal(s.scale, 800 / 480);
    assert.deepEqual([s.height, s.width], [800, 1067]);
    const capped = detectronResizedSize(100, 1000, 800, 1333);
    assert.equal(capped.scale, 1333 / 1000);
    assert.deepEqual([capped.height, capped.width], [133, 1333]);
  });

  it('padToMultiple rounds up, 0 leaves the size', () => {
    assert.equal(padToMultiple(218, 32), 224);
    assert.equal(padToMultiple(224, 32), 224);
    assert.equal(padToMultiple(218, 0), 218);
  });
});

describe('bilinear axis tables', () => {
  it('pytorch: equal sizes copy, 2x upsampling has weights 0.25/0.75 and clamps the edges', () => {
    const same = pytorchLinearAxis(5, 5);
    assert.deepEqual([...same.i0], [0, 1, 2, 3, 4]);
    assert.deepEqual([...same.w1], [0, 0, 0, 0, 0]);
    const up = pytorchLinearAxis(2, 4);
    assert.deepEqual([...up.i0], [0, 0, 0, 1]);
    assert.deepEqual([...up.i1], [1, 1, 1, 1]);
    // The last output reads pixel 1 twice (i1 = i0 at the edge), whatever its weight.
    assert.deepEqual([...up.w1], [0, 0.25, 0.75, 0.25]);
  });

  it('opencv: 2x downscaling averages pixel pairs', () => {
    const down = opencvLinearAxis(8, 4, 0.5);
    assert.deepEqual([...down.i0], [0, 2, 4, 6]);
    assert.deepEqual([...down.w1], [0.5, 0.5, 0.5, 0.5]);
  });
});

describe('Detectron variant', () => {
  it('BGR, 0..255 minus means, std 1, detectron sizes, no padding with SIZE_DIVISIBILITY 0', () => {
    const config = loadConfig({
      layers: [
        {
          INPUT: { FORMAT: 'BGR', PIXEL_RANGE: 255, PIXEL_MEANS: [102.9801, 115.9465, 122.7717], PIXEL_STDS: [1, 1, 1], RESIZE_RULE: 'detectron', SIZE_DIVISIBILITY: 0 },
          TEST: { SCALE: 6, MAX_SIZE: 100 },
        },
      ],
    });
    // A 3x3 image whose channels are constant (R=10, G=20, B=30): any resize keeps the values.
    const data = new Uint8Array(27);
    for (let p = 0; p < 9; p++) data.set([10, 20, 30], p * 3);
    const batch = transform.prepare([{ data, width: 3, height: 3, maxValue: 255 }], config);
    assert.deepEqual(batch.images.dims, [1, 3, 6, 6]);
    const plane = 36;
    assert.equal(batch.images.data[0], Math.fround(30 - 102.9801));
    assert.equal(batch.images.data[plane], Math.fround(20 - 115.9465));
    assert.equal(batch.images.data[2 * plane + 35], Math.fround(10 - 122.7717));
  });
});

describe('input validation', () => {
  const config = loadConfig({ layers: [{ LIMITS: { MAX_BATCH: 2 } }] });
  const good: RgbImage = { data: new Uint8Array(4 * 5 * 3), width: 4, height: 5, maxValue: 255 };
  const rejects = (images: RgbImage[], pattern: RegExp): void => {
    assert.throws(
      () => transform.prepare(images, config),
      (e: unknown) => e instanceof InputError && pattern.test(e.message),
    );
  };

  it('rejects an empty batch and a batch over LIMITS.MAX_BATCH', () => {
    rejects([], /no image/);
    rejects([good, good, good], /image 2.*LIMITS\.MAX_BATCH|LIMITS\.MAX_BATCH.*image 2/);
  });

  it('rejects a zero-size image naming its index', () => {
    rejects([good, { data: new Uint8Array(0), width: 0, height: 5, maxValue: 255 }], /^image 1: size 0x5/);
  });

  it('rejects a wrong data length naming the image', () => {
    rejects([{ ...good, data: new Uint8Array(59) }], /^image 0: data holds 59 values, expected 4x5x3 = 60/);
  });

  it('rejects non-finite float data naming the image and sample', () => {
    const data = new Float32Array(60).fill(0.5);
    data[7] = Number.NaN;
    rejects([good, { data, width: 4, height: 5, maxValue: 1 }], /^image 1: sample 7 .* is NaN/);
  });

  it('rejects a bad maxValue', () => {
    rejects([{ ...good, maxValue: 0 }], /^image 0: maxValue 0/);
  });

  it('accepts float data in [0, 1] equal to the 8-bit path', () => {
    const u8 = new Uint8Array(60).map((_, i) => (i * 37) % 256);
    const f = Float32Array.from(u8, (v) => Math.fround(v / 255));
    const a = transform.prepare([{ ...good, data: u8 }], config);
    const b = transform.prepare([{ ...good, data: f, maxValue: 1 }], config);
    assert.deepEqual(a.images.data, b.images.data);
  });
});

describe('resampleBilinearRgb8 (8-bit pixels normalised inside the resampling)', () => {
  it('writes exactly the values of normalising to a planar buffer and resampling it', () => {
    for (const [w, h, ow, oh, order] of [
      [13, 7, 29, 16, [0, 1, 2]],
      [40, 30, 17, 11, [2, 1, 0]],
      [5, 9, 5, 9, [0, 1, 2]],
    ] as [number, number, number, number, number[]][]) {
      const data = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 97 + (i >> 3) * 31) % 256);
      const tables = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => Math.fround((v / 255 - 0.4 - 0.01 * c) / (0.22 + 0.003 * c))));
      const planar = new Float32Array(3 * w * h);
      for (let c = 0; c < 3; c++) for (let p = 0; p < w * h; p++) planar[c * w * h + p] = tables[c]![data[p * 3 + order[c]!]!]!;
      const ay = pytorchLinearAxis(h, oh);
      const ax = pytorchLinearAxis(w, ow);
      const stride = ow + 3;
      const expected = new Float32Array(3 * oh * stride);
      const actual = new Float32Array(3 * oh * stride);
      resampleBilinear(planar, 3, ay, ax, { data: expected, offset: 0, planeStride: oh * stride, rowStride: stride }, new Float32Array(3 * h * ow));
      resampleBilinearRgb8(data, order, tables, ay, ax, { data: actual, offset: 0, planeStride: oh * stride, rowStride: stride }, new Float32Array(3 * h * ow));
      assert.deepEqual(actual, expected, `${w}x${h} -> ${ow}x${oh}`);
    }
  });
});
