#!/usr/bin/env node
/**
 * `node tools/onnx-check/build/src/cli.js model.onnx...`: the ONNX checker (full check, strict shape
 * inference) on exported models, with every graph and subgraph output's declared type and shape.
 * Exit 1 when a model has a problem.
 */
import { checkerProblems, runOnnxChecker } from './index.js';

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: onnx-check <model.onnx>...\n');
  process.exit(2);
}
let failed = 0;
for (const report of runOnnxChecker(files)) {
  const problems = checkerProblems(report);
  process.stdout.write(`${report.file}: ${problems.length === 0 ? 'ok' : 'FAIL'} (onnx ${report.onnx})\n`);
  for (const o of report.outputs) {
    const dims = o.dims === null ? 'no shape' : `[${o.dims.map((d) => d ?? '?').join(', ')}]`;
    process.stdout.write(`  ${o.graph.length ? `${o.graph.join(' > ')} :: ` : ''}${o.name}  ${dims}\n`);
  }
  for (const p of problems) process.stdout.write(`  problem: ${p}\n`);
  if (problems.length > 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
