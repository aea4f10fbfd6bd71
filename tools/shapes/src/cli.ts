#!/usr/bin/env node
/**
 * `node tools/shapes/build/src/cli.js --out data/shapes --train 200 --val 50 --seed 1`: writes a
 * synthetic shapes dataset (see README.md).
 */
import { parseArgs } from 'node:util';
import { SHAPE_OKS_SIGMAS } from './shapes.js';
import { writeShapesDataset } from './write.js';

const HELP = `Usage: node tools/shapes/build/src/cli.js --out <dir> [options]

Writes a synthetic COCO dataset of circles, squares and triangles (masks; triangle corners as
keypoints): <out>/train.json + <out>/train/*.png and <out>/val.json + <out>/val/*.png.

Options:
      --out <dir>           output folder (required)
      --train <n>           training images (default 200)
      --val <n>             validation images (default 50)
      --seed <n>            seed (default 1); the same seed writes the same files
      --size <w>x<h>        image size (default 128x128)
      --min-objects <n>     shapes per image, at least (default 1)
      --max-objects <n>     shapes per image, at most (default 4)
      --min-size <px>       smallest shape (default 16)
      --max-size <px>       largest shape (default 56)
  -h, --help                this help`;

function int(v: string | undefined, name: string, def: number, min = 0): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      train: { type: 'string' },
      val: { type: 'string' },
      seed: { type: 'string' },
      size: { type: 'string' },
      'min-objects': { type: 'string' },
      'max-objects': { type: 'string' },
      'min-size': { type: 'string' },
      'max-size': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!values.out) throw new Error('--out <dir> is required (run with --help)');
  const size = /^(\d+)x(\d+)$/.exec(values.size ?? '128x128');
  if (!size) throw new Error(`--size must be <width>x<height>, got "${values.size}"`);
  const splits = await writeShapesDataset(values.out, {
    train: int(values.train, 'train', 200),
    val: int(values.val, 'val', 50),
    seed: int(values.seed, 'seed', 1),
    width: Number(size[1]),
    height: Number(size[2]),
    minObjects: int(values['min-objects'], 'min-objects', 1, 1),
    maxObjects: int(values['max-objects'], 'max-objects', 4, 1),
    minSize: int(values['min-size'], 'min-size', 16, 4),
    maxSize: int(values['max-size'], 'max-size', 56, 4),
  });
  for (const s of splits) process.stdout.write(`${s.name}: ${s.imageCount} images, ${s.annotationCount} annotations -> ${s.dataset} (images in ${s.images})\n`);
  process.stdout.write(`keypoint eval: --oks-sigmas ${SHAPE_OKS_SIGMAS.join(',')}\n`);
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`shapes: error: ${(e as Error).message}\n`);
  process.exitCode = 2;
}
