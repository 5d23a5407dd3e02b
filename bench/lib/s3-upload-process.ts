/**
 * One upload to the mirror in a process of its own, for its peak resident memory:
 * `node --import tsx s3-upload-process.ts upload|baseline FILE NAME SHA256` with the service's
 * environment (BACKUP_MIRROR_URL and the AWS variables). `baseline` loads the same modules and
 * talks to the same bucket (one HEAD) but uploads nothing. Prints one JSON line:
 * `{"vmHwmKb":…,"maxRssKb":…,"ms":…}`, read from /proc/self/status just before exiting.
 */
import fs from 'node:fs';
import { storesOf } from '../../src/shared/storage/registry.js';
import { parseConfig } from '../../src/shared/runtime/config.js';

const [mode, file, name, sha256] = process.argv.slice(2);
if ((mode !== 'upload' && mode !== 'baseline') || !file || !name || !sha256) {
  throw new Error('usage: s3-upload-process.ts upload|baseline FILE NAME SHA256');
}

const mirror = storesOf(parseConfig(process.env)).mirror;
if (!mirror) throw new Error('BACKUP_MIRROR_URL is not set');

const started = performance.now();
if (mode === 'upload') {
  await mirror.put(file, name, sha256);
} else {
  // What `put` loads and asks before it sends a byte: the client and a HEAD.
  await mirror.stat(name);
}
const ms = performance.now() - started;
const status = fs.readFileSync('/proc/self/status', 'utf8');
const vmHwmKb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
process.stdout.write(`${JSON.stringify({ vmHwmKb, maxRssKb: process.resourceUsage().maxRSS, ms })}\n`);
// The SDK's kept-alive sockets would hold the loop for a while.
process.exit(0);
