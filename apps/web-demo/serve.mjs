// A static server for build/page (offline, no dependencies) that makes the page cross-origin isolated
// (COOP/COEP headers), so onnxruntime-web can use WASM threads:  node serve.mjs [port]
import { startServer } from './build/src/serve.js';

const server = await startServer(Number(process.argv[2] ?? 8080));
console.log(`web-demo: http://localhost:${server.port}/`);
