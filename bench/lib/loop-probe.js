/**
 * Loaded with `--import` into a worker process under benchmark: records how long the event loop
 * was blocked, and on SIGUSR2 prints the longest stall since the previous report on stderr.
 * Plain JavaScript: worker threads inherit `--import` and load it without the TypeScript loader.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  process.on('SIGUSR2', () => {
    // The histogram's delay includes the 10 ms sampling interval itself.
    const maxMs = Math.max(0, histogram.max / 1e6 - 10);
    process.stderr.write(`LOOP_PROBE ${JSON.stringify({ maxMs })}\n`);
    histogram.reset();
  });
}
