// The logger lives in runtime/logger.ts, below every folder that logs; this path still answers
// for modules that import it from here.
export { createLogger, type Logger } from '../runtime/logger.js';
