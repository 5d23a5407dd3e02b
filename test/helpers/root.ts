import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root directory, whichever folder of test/ the file asking for it is in. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
