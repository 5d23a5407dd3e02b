import { beforeEach } from 'vitest';
import { outputMark, outputSince } from './processes.js';

// The processes a test starts print their logs into pipes the helpers read, so a green run shows
// none of it; a failing test prints what they logged while it ran, next to its error.
beforeEach(({ onTestFailed }) => {
  const mark = outputMark();
  onTestFailed(() => {
    for (const block of outputSince(mark)) console.log(block);
  });
});
