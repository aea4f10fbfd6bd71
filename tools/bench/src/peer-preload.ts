/**
 * Loaded with `node --import` into the peer's timing process (the shared time_peer.cjs, unchanged):
 * on exit it reports the process's peak RSS and the time since process start, which time_peer.cjs
 * itself does not print, on a stderr line starting with `@@peer@@`.
 */
process.on('exit', () => {
  process.stderr.write(`\n@@peer@@${JSON.stringify({ peakRssMb: process.resourceUsage().maxRSS / 1024, exitAtMs: performance.now() })}\n`);
});
export {};
