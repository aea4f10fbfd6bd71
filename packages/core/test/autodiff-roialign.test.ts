/**
 * RoiAlign's gradient (torchvision's roi_align_backward) against central finite differences:
 * both coordinate modes, fixed and adaptive sampling, RoIs of both images of a batch, RoIs partly
 * or wholly outside the map, sub-pixel RoIs and RoIs on the last row/column; then the multi-level
 * pooler (RoIs spread over two FPN levels).
 */
import { describe, it } from 'node:test';
import { type FeatureMaps, multiScaleRoiAlign } from '../src/index.js';
import { gradcheck, int64, randn, tensor } from './gradcheck.js';

/** x1, y1, x2, y2 in image coordinates (spatial scale 0.5: the 10x12 map covers 20x24). */
const BOXES = [
  [2, 3, 15, 11], // inside, image 0
  [-6, -4, 7, 9], // partly above/left of the map
  [14, 10, 30, 26], // partly below/right, reaching the last row/column
  [5.2, 6.1, 5.9, 6.4], // smaller than one map pixel
  [0, 0, 24, 20], // the whole image
  [19, 15, 23.9, 19.9], // at the bottom-right corner
  [-9, -9, -3, -2], // wholly outside
];
const IMAGE = [0, 0, 1, 1, 0, 1, 1];

describe('RoiAlign gradient (float64)', () => {
  for (const aligned of [false, true]) {
    for (const samplingRatio of [2, 0]) {
      it(`aligned=${aligned} sampling_ratio=${samplingRatio}, RoIs over both images and outside the map`, async () => {
        await gradcheck({
          inputs: {
            x: tensor('float64', [2, 3, 10, 12], randn(720, 300 + samplingRatio + (aligned ? 1 : 0))),
            rois: tensor('float64', [BOXES.length, 4], BOXES.flat()),
            idx: int64([BOXES.length], IMAGE),
          },
          wrt: ['x'],
          build: (g, x) =>
            g.op('RoiAlign', [x.x, x.rois, x.idx], {
              mode: 'avg',
              output_height: 2,
              output_width: 3,
              sampling_ratio: samplingRatio,
              spatial_scale: { kind: 'float', value: 0.5 },
              coordinate_transformation_mode: aligned ? 'half_pixel' : 'output_half_pixel',
            }),
        });
      });
    }
  }
});

describe('multi-level RoI pooling gradient (float32, linear in the features)', () => {
  it('RoIs across two levels and two images reach both feature maps', async () => {
    const boxes = [
      [2, 3, 30, 40],
      [1, 1, 9, 12],
      [0, 0, 60, 50],
      [10, 5, 18, 14],
      [-4, 20, 70, 66],
    ];
    await gradcheck({
      dtype: 'float32',
      inputs: {
        p2: tensor('float32', [2, 2, 16, 16], randn(1024, 310)),
        p3: tensor('float32', [2, 2, 8, 8], randn(256, 311)),
        boxes: tensor('float32', [boxes.length, 4], boxes.flat()),
        idx: int64([boxes.length], [0, 1, 0, 1, 1]),
      },
      wrt: ['p2', 'p3'],
      build: (g, x) => {
        const features: FeatureMaps = [
          { name: '0', blob: x.p2, channels: 2, spatialScale: 0.25, level: 2 },
          { name: '1', blob: x.p3, channels: 2, spatialScale: 0.125, level: 3 },
        ];
        return multiScaleRoiAlign(
          g,
          features,
          { boxes: x.boxes, batchIndex: x.idx },
          {
            outputSize: 3,
            samplingRatio: 2,
            aligned: false,
            canonicalScale: 28,
            canonicalLevel: 3,
            eps: 1e-6,
          },
        );
      },
    });
  });
});
