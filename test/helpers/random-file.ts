import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';

const MiB = 1024 * 1024;

/** Writes `size` random bytes to `file` a MiB at a time (a large file never sits in memory whole); its SHA-256. */
export function writeRandomFile(file: string, size: number): { file: string; sha256: string } {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < size; done += MiB) {
      const chunk = randomBytes(Math.min(MiB, size - done));
      hash.update(chunk);
      fs.writeSync(fd, chunk);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { file, sha256: hash.digest('hex') };
}
