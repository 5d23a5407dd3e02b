import type { Config } from '../../src/shared/runtime/config.js';
import { createLogger, type Logger } from '../../src/shared/runtime/logger.js';

/**
 * The logger for a part a test runs inside its own process (the producer, a pipeline called
 * directly). pino's default destination writes to fd 1 through sonic-boom, past vitest, so every
 * warning (each 4xx answer is one) reached the terminal of a green run. Here each line goes
 * through `console` instead: vitest files it under the test (or the hook) running at the time, and
 * with `silent: 'passed-only'` (vitest.config.ts) prints it only if that test or its file fails.
 * `seen` also collects the lines, for a test about what is logged.
 */
export function testLogger(config: Pick<Config, 'logLevel'>, service: string, seen?: string[]): Logger {
  return createLogger(config, service, 1, {
    write(line: string) {
      seen?.push(line);
      console.log(line.trimEnd());
    },
  });
}
