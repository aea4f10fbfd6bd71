#!/usr/bin/env node
// Renames a torchvision-named weights file (a parity fixture by default) into a Detectron2-named
// and a Detectron-named .pkl, written the way those projects write them:
//   <out>/<name>.detectron2.pkl  {"model": {name: ndarray}, "__author__": ...}    (Python 3 pickle, protocol 4)
//   <out>/<name>.detectron.pkl   {"blobs": {name: ndarray}, "cfg": "..."}          (Python 2 pickle, protocol 2)
// Both load back through @rcnn/checkpoint's maps (readCheckpoint) and in Python with
// pickle.load(f, encoding="latin1"). What cannot round-trip is printed (see docs/weights.md):
// Detectron2 has no background rows in bbox_pred / mask logits; Detectron stores FrozenBN folded
// into AffineChannel (scale, bias).
//
// Usage: node tools/weights/export-fixture.mjs [--case keypointrcnn_tiny | --weights file.safetensors|.pth] [--out dir] [--eps 1e-5]
// Needs the built package: (cd packages/checkpoint && npx tsc -b).
/* global console, process */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportCheckpoint, formatReport, readCheckpoint } from '@rcnn/checkpoint';
import { writeNumpyPickle } from '@rcnn/testing';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const caseName = opt('case', 'keypointrcnn_tiny');
const weights = opt('weights', join(root, 'fixtures', 'parity', caseName, 'weights.safetensors'));
const out = resolve(opt('out', join(root, '.data', 'weights-export')));
const eps = Number(opt('eps', '1e-5'));
const name = args.includes('--weights') ? basename(weights).replace(/\.[^.]+$/, '') : caseName;

const source = readCheckpoint(weights, { from: 'torchvision' });
if (source.report.unmapped.length > 0) {
  console.error(`warning: ${source.report.unmapped.length} keys are not torchvision detection names and are passed through: ${source.report.unmapped.join(', ')}`);
}
mkdirSync(out, { recursive: true });

const d2 = exportCheckpoint(source.tensors, 'detectron2');
const d2Path = join(out, `${name}.detectron2.pkl`);
writeFileSync(d2Path, writeNumpyPickle(new Map([['model', d2.tensors], ['__author__', `rcnn-node tools/weights from ${basename(weights)}`]]), 'py3'));

const c2 = exportCheckpoint(source.tensors, 'detectron', { frozenBnEps: eps });
const c2Path = join(out, `${name}.detectron.pkl`);
writeFileSync(c2Path, writeNumpyPickle(new Map([['blobs', c2.tensors], ['cfg', `# converted from ${basename(weights)} by rcnn-node\n`]]), 'py2'));

for (const [path, ex] of [
  [d2Path, d2],
  [c2Path, c2],
]) {
  console.log(formatReport({ ...ex.report, source: path }));
}
console.log(JSON.stringify({ detectron2: d2Path, detectron: c2Path, tensors: { detectron2: d2.tensors.size, detectron: c2.tensors.size } }));
