/**
 * A helper thread of {@link SgdMomentum.stepAsync}: takes a share of an SGD update's parameters,
 * gradients and momentum buffers (moved here, not copied), updates them with the same function as
 * the calling thread and moves the parameters and buffers back.
 */
import { parentPort } from 'node:worker_threads';
import { type SgdJob, type SgdJobResult, runSgdJob } from './solver.js';

const port = parentPort;
if (!port) throw new Error('sgd-worker.js must run in a worker thread');

port.on('message', (job: SgdJob) => {
  let result: SgdJobResult;
  try {
    result = runSgdJob(job);
  } catch (e) {
    result = { error: e instanceof Error ? e.message : String(e) };
  }
  const transfer = 'items' in result ? result.items.flatMap((it) => [it.p.buffer, it.buffer.buffer]) : [];
  port.postMessage(result, transfer as ArrayBuffer[]);
});
