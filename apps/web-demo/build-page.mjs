// Builds the page into build/page/: main.js bundled by esbuild from src/main.ts (with the packages'
// /web entries; a browser build, so any Node built-in reaching the bundle is an error), index.html,
// and onnxruntime-web's own module with its WASM file from node_modules (ort/).
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'build', 'page');
mkdirSync(join(out, 'ort'), { recursive: true });
const result = await build({
  entryPoints: [join(here, 'src', 'main.ts')],
  outfile: join(out, 'main.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  // onnxruntime-web is loaded from its own files (index.html's import map): they find their WASM
  // and worker script relative to themselves.
  external: ['onnxruntime-web', 'onnxruntime-web/wasm'],
  minify: true,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
});
const inputs = Object.keys(result.metafile.inputs);
const nodeOnly = inputs.filter((p) => /(^|\/)(sharp|onnxruntime-node|protobufjs|tsyringe)\//.test(p) || p.startsWith('node:'));
if (nodeOnly.length > 0) throw new Error(`the page bundle pulls Node-only code: ${nodeOnly.join(', ')}`);
copyFileSync(join(here, 'page', 'index.html'), join(out, 'index.html'));
const ortDist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web')); // …/onnxruntime-web/dist
for (const f of ['ort.bundle.min.mjs', 'ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm', 'ort.wasm.bundle.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']) copyFileSync(join(ortDist, f), join(out, 'ort', f));
console.log(`web-demo: build/page/main.js ${(result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('main.js'))].bytes / 1024).toFixed(0)} KiB from ${inputs.length} modules`);
