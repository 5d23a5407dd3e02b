import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { codeOf } from '../domain/errors.js';

/**
 * Who owns work that no queue job stands for: a CLI run records its host and process id in the
 * ids of its catalog rows (and every temp file name carries the pid, see tempPath), so that a
 * worker's reaper can tell a run that is still going from one whose process died.
 */
const CLI_RUN = /^cli:([^:]+):(\d+):/;

/** The id of one CLI run in backup_detail and restore_log: `cli:<host>:<pid>:<what>:<time>:<random>`. */
export function cliRunId(what: string): string {
  return `cli:${hostname()}:${process.pid}:${what}:${new Date().toISOString()}:${randomBytes(3).toString('hex')}`;
}

export function isCliRunId(jobId: string): boolean {
  return jobId.startsWith('cli:');
}

/** The host and pid of a CLI run id; null for ids written before they carried them. */
export function cliRunOwner(jobId: string): { host: string; pid: number } | null {
  const m = CLI_RUN.exec(jobId);
  return m ? { host: m[1]!, pid: Number(m[2]) } : null;
}

/** Whether a process with this id exists on this host (EPERM: it does, under another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return codeOf(err) === 'EPERM';
  }
}
