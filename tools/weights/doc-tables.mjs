#!/usr/bin/env node
// Prints the name-map tables and the unpickler allow-list of docs/weights.md from the code
// (packages/checkpoint's tests fail when the docs and these tables differ).
// Usage: node tools/weights/doc-tables.mjs   (after building packages/checkpoint)
/* global console */
import { ALLOWED_GLOBALS, DETECTRON2_RULES, DETECTRON_RULES, TORCHVISION_RULES, rulesTable } from '@rcnn/checkpoint';

console.log('## torchvision legacy upgrades\n');
console.log(rulesTable(TORCHVISION_RULES, ['torchvision (old)', 'torchvision 0.14']));
console.log('\n## Detectron2\n');
console.log(rulesTable(DETECTRON2_RULES, ['Detectron2', 'torchvision']));
console.log('\n## Detectron\n');
console.log(rulesTable(DETECTRON_RULES, ['Detectron (Caffe2 blob)', 'torchvision']));
console.log('\n## allow-list\n');
console.log('| global | REDUCE | what the stand-in builds |\n| --- | --- | --- |');
for (const g of ALLOWED_GLOBALS) console.log(`| \`${g.module}.${g.name}\` | ${g.call ? 'yes' : 'no (data only)'} | ${g.builds} |`);
