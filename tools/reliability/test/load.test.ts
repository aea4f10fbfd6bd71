/**
 * Load and shutdown (src/load.ts), CI size: 300 requests through 2 CPU replicas from 4 concurrent
 * callers, 1 in 7 corrupt and 1 in 11 failing inside post-processing. The long script runs 2,000.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runLoad, runShutdown } from '../src/load.js';

describe('load', () => {
  it('300 requests, 2 replicas, 4 callers: each gets exactly its own result or error, in order', async () => {
    const r = await runLoad({ requests: 300, replicas: 2, callers: 4 });
    assert.equal(r.ok + r.corrupt + r.poisoned, 300);
    assert.equal(r.corrupt, 42);
    assert.equal(r.poisoned, 24);
    assert.equal(r.matchedReference, r.ok, 'every result equals a sequential run of its image');
    assert.equal(r.unhandledRejections, 0);
    assert.ok(r.perReplica.every((c) => c > 0), `both replicas served: ${r.perReplica.join(', ')}`);
  });

  it('batches of 4: failures stay with their image (the batch is retried image by image)', async () => {
    const r = await runLoad({ requests: 120, replicas: 2, callers: 3, batchSize: 4, reference: false });
    assert.equal(r.ok + r.corrupt + r.poisoned, 120);
    assert.equal(r.poisoned, 9); // i % 11 == 10, except 76 (also i % 7 == 6: corrupt)
    assert.equal(r.unhandledRejections, 0);
  });

  it('close() with requests in flight: each finishes or fails with ShutdownError, nothing hangs', async () => {
    const r = await runShutdown({ requests: 120, closeAfter: 15 });
    assert.equal(r.finished + r.shutDown, 120);
    assert.equal(r.unhandledRejections, 0);
  });
});
