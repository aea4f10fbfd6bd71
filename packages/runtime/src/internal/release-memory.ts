/**
 * Frees array buffers now rather than at the next garbage collection. A large buffer that a
 * thread no longer reads stays allocated until its isolate collects garbage, and a thread that has
 * handed its work to onnxruntime allocates almost nothing on the JS heap afterwards, so that can
 * be never: a detector kept its weights file and the graph's folded weights (~330 MB for an R-50-FPN
 * Keypoint R-CNN) for as long as it lived.
 */
import { MessageChannel } from 'node:worker_threads';

/**
 * Buffers below this size are left to the garbage collector: Node's `Buffer` pool shares 8 KiB
 * slabs between unrelated buffers, and there is nothing worth freeing early in small ones.
 */
export const RELEASE_MIN_BYTES = 64 * 1024;

/**
 * Detaches each distinct `ArrayBuffer` of at least `minBytes` among `buffers`, which frees its
 * memory at once: it is moved into a message on a channel that is then closed, so the message
 * (and the memory) is dropped without a garbage collection. Every view of a released buffer
 * becomes empty, so only pass buffers nothing will read again. Shared, already detached and
 * untransferable buffers are skipped. Returns the number of bytes released.
 */
export function releaseArrayBuffers(buffers: Iterable<ArrayBufferLike>, minBytes = RELEASE_MIN_BYTES): number {
  const { port1, port2 } = new MessageChannel();
  let released = 0;
  try {
    for (const buffer of buffers) {
      // A buffer listed twice is detached (length 0) by the time it comes again.
      if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0 || buffer.byteLength < minBytes) continue;
      const bytes = buffer.byteLength;
      try {
        port1.postMessage(null, [buffer]);
      } catch {
        // Untransferable (a pooled Buffer slab, since Node 21): the garbage collector keeps it.
        continue;
      }
      // Node 20 ignores an untransferable buffer in the transfer list instead of throwing.
      if (buffer.byteLength === 0) released += bytes;
    }
  } finally {
    port1.close();
    port2.close();
  }
  return released;
}
