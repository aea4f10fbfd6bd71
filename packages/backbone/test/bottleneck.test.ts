/**
 * The bottleneck stage against an independent float64 reference written from the definitions
 * (conv, frozen norm, ReLU, shortcut), for the conventions no fixture covers: Detectron's stride
 * in the 1x1, AffineChannel, dilation, FROZEN_BN_EPS, grouped 3x3 with a projection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HostTensor, WeightStore, loadConfig } from '@rcnn/core';
import { compareDense, createTestContext, runModel } from '@rcnn/testing';
import { type FrozenNormKind, type ResNetConventions, buildResNetStage, bottleneckWidth } from '../src/index.js';

/** A tiny deterministic generator (tests must not depend on Math.random). */
function generator(seed: number): (lo: number, hi: number) => number {
  let s = seed >>> 0;
  return (lo, hi) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((hi - lo) * s) / 2 ** 32;
  };
}

interface Tensor3 {
  c: number;
  h: number;
  w: number;
  data: Float64Array;
}

function conv(x: Tensor3, weight: Float32Array, out: number, k: number, stride: number, pad: number, dilation: number, groups: number): Tensor3 {
  const h = Math.floor((x.h + 2 * pad - dilation * (k - 1) - 1) / stride) + 1;
  const w = Math.floor((x.w + 2 * pad - dilation * (k - 1) - 1) / stride) + 1;
  const cin = x.c / groups;
  const cout = out / groups;
  const y = new Float64Array(out * h * w);
  for (let o = 0; o < out; o++) {
    const g = Math.floor(o / cout);
    for (let oy = 0; oy < h; oy++) {
      for (let ox = 0; ox < w; ox++) {
        let acc = 0;
        for (let i = 0; i < cin; i++) {
          for (let ky = 0; ky < k; ky++) {
            const iy = oy * stride - pad + ky * dilation;
            if (iy < 0 || iy >= x.h) continue;
            for (let kx = 0; kx < k; kx++) {
              const ix = ox * stride - pad + kx * dilation;
              if (ix < 0 || ix >= x.w) continue;
              acc += x.data[((g * cin + i) * x.h + iy) * x.w + ix]! * weight[((o * cin + i) * k + ky) * k + kx]!;
            }
          }
        }
        y[(o * h + oy) * w + ox] = acc;
      }
    }
  }
  return { c: out, h, w, data: y };
}

/** y = x * s + t per channel: FrozenBN s = w / sqrt(var + eps), t = b - mean * s; AffineChannel s = w, t = b. */
function norm(x: Tensor3, tensors: Map<string, HostTensor>, key: string, kind: FrozenNormKind, eps: number, relu: boolean): Tensor3 {
  const get = (suffix: string): Float32Array => tensors.get(`${key}.${suffix}`)!.data as Float32Array;
  const [w, b] = [get('weight'), get('bias')];
  const y = new Float64Array(x.data.length);
  const plane = x.h * x.w;
  for (let c = 0; c < x.c; c++) {
    const scale = kind === 'FrozenBN' ? w[c]! / Math.sqrt(get('running_var')[c]! + eps) : w[c]!;
    const shift = kind === 'FrozenBN' ? b[c]! - get('running_mean')[c]! * scale : b[c]!;
    for (let p = 0; p < plane; p++) {
      const v = x.data[c * plane + p]! * scale + shift;
      y[c * plane + p] = relu ? Math.max(0, v) : v;
    }
  }
  return { ...x, data: y };
}

interface StageCase {
  inChannels: number;
  planes: number;
  blocks: number;
  stride: number;
  dilation: number;
  conventions: ResNetConventions;
}

function stageTensors(prefix: string, s: StageCase, seed: number): Map<string, HostTensor> {
  const rand = generator(seed);
  const tensors = new Map<string, HostTensor>();
  const add = (key: string, dims: number[], lo: number, hi: number): void => {
    const n = dims.reduce((a, b) => a * b, 1);
    tensors.set(key, { dtype: 'float32', dims, data: Float32Array.from({ length: n }, () => rand(lo, hi)) });
  };
  const addNorm = (key: string, c: number): void => {
    add(`${key}.weight`, [c], 0.5, 1.5);
    add(`${key}.bias`, [c], -0.2, 0.2);
    if (s.conventions.norm === 'FrozenBN') {
      add(`${key}.running_mean`, [c], -0.2, 0.2);
      add(`${key}.running_var`, [c], 0.5, 1.5);
    }
  };
  const width = bottleneckWidth(s.planes, s.conventions);
  const out = s.planes * 4;
  let cin = s.inChannels;
  for (let j = 0; j < s.blocks; j++) {
    const p = `${prefix}${j}.`;
    add(`${p}conv1.weight`, [width, cin, 1, 1], -0.5, 0.5);
    addNorm(`${p}bn1`, width);
    add(`${p}conv2.weight`, [width, width / s.conventions.groups, 3, 3], -0.3, 0.3);
    addNorm(`${p}bn2`, width);
    add(`${p}conv3.weight`, [out, width, 1, 1], -0.4, 0.4);
    addNorm(`${p}bn3`, out);
    if (j === 0 && (s.stride !== 1 || cin !== out)) {
      add(`${p}downsample.0.weight`, [out, cin, 1, 1], -0.5, 0.5);
      addNorm(`${p}downsample.1`, out);
    }
    cin = out;
  }
  return tensors;
}

function referenceStage(x: Tensor3, prefix: string, s: StageCase, tensors: Map<string, HostTensor>): Tensor3 {
  const { norm: kind, eps, groups, stride1x1 } = s.conventions;
  const width = bottleneckWidth(s.planes, s.conventions);
  const out = s.planes * 4;
  const W = (key: string): Float32Array => tensors.get(key)!.data as Float32Array;
  let y = x;
  for (let j = 0; j < s.blocks; j++) {
    const p = `${prefix}${j}.`;
    const stride = j === 0 ? s.stride : 1;
    let z = norm(conv(y, W(`${p}conv1.weight`), width, 1, stride1x1 ? stride : 1, 0, 1, 1), tensors, `${p}bn1`, kind, eps, true);
    z = norm(conv(z, W(`${p}conv2.weight`), width, 3, stride1x1 ? 1 : stride, s.dilation, s.dilation, groups), tensors, `${p}bn2`, kind, eps, true);
    z = norm(conv(z, W(`${p}conv3.weight`), out, 1, 1, 0, 1, 1), tensors, `${p}bn3`, kind, eps, false);
    const shortcut = tensors.has(`${p}downsample.0.weight`)
      ? norm(conv(y, W(`${p}downsample.0.weight`), out, 1, stride, 0, 1, 1), tensors, `${p}downsample.1`, kind, eps, false)
      : y;
    y = { ...z, data: z.data.map((v, i) => Math.max(0, v + shortcut.data[i]!)) };
  }
  return y;
}

async function checkStage(s: StageCase, name: string): Promise<void> {
  const prefix = 'roi_heads.box_head.res5.';
  const tensors = stageTensors(prefix, s, 7);
  const weights = WeightStore.fromTensors(tensors, name);
  const ctx = createTestContext(loadConfig(), { weights });
  const stage = buildResNetStage(ctx, ctx.batch.images, { prefix, inChannels: s.inChannels, planes: s.planes, blocks: s.blocks, stride: s.stride, dilation: s.dilation, conventions: s.conventions });
  assert.equal(stage.channels, s.planes * 4);
  assert.deepEqual(weights.unusedKeys(), [], 'every generated weight is read');
  ctx.graph.output(stage.blob, 'y', 'float32');
  const rand = generator(11);
  const [h, w] = [11, 9];
  const x: Tensor3 = { c: s.inChannels, h, w, data: Float64Array.from({ length: s.inChannels * h * w }, () => rand(-1, 1)) };
  const images: HostTensor<'float32'> = { dtype: 'float32', dims: [1, s.inChannels, h, w], data: Float32Array.from(x.data) };
  const zeros: HostTensor<'int64'> = { dtype: 'int64', dims: [1, 2], data: new BigInt64Array(2) };
  const out = (await runModel(ctx.graph.toModelProto(), { images, image_sizes: zeros, original_sizes: zeros })).get('y')!;
  const ref = referenceStage({ ...x, data: Float64Array.from(images.data) }, prefix, s, tensors);
  const verdict = compareDense(name, out, { dtype: 'float32', dims: [1, ref.c, ref.h, ref.w], data: Float32Array.from(ref.data) });
  assert.ok(verdict.pass, verdict.detail);
}

describe('buildResNetStage against a float64 reference', () => {
  it('torchvision: stride in the 3x3, FrozenBN (eps 1e-5), grouped 3x3, projection + identity blocks', async () => {
    await checkStage({ inChannels: 3, planes: 8, blocks: 2, stride: 2, dilation: 1, conventions: { groups: 4, widthPerGroup: 16, stride1x1: false, norm: 'FrozenBN', eps: 1e-5 } }, 'torchvision');
  });

  it('Detectron: stride in the 1x1, AffineChannel (weight/bias only)', async () => {
    await checkStage({ inChannels: 3, planes: 4, blocks: 2, stride: 2, dilation: 1, conventions: { groups: 1, widthPerGroup: 64, stride1x1: true, norm: 'AffineChannel', eps: 1e-5 } }, 'detectron');
  });

  it('dilation 2 at stride 1, with FROZEN_BN_EPS 0 (legacy COCO checkpoints)', async () => {
    await checkStage({ inChannels: 3, planes: 4, blocks: 2, stride: 1, dilation: 2, conventions: { groups: 1, widthPerGroup: 64, stride1x1: false, norm: 'FrozenBN', eps: 0 } }, 'dilated');
  });
});
