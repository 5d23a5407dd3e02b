/**
 * Copying a frozen database file into a snapshot, inside the SQLite thread: the kernel's copy
 * (`cp` in a child process), cut to the frozen length and marked as a rollback-journal database.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { getSystemErrorMap } from 'node:util';

/** The byte offsets of the file format's write and read versions: 2 for WAL, 1 for a rollback journal. */
const WRITE_VERSION = 18;

/**
 * Copies a frozen database file (its first `bytes`) into a new file, and marks the copy as a
 * rollback-journal database (a WAL database's file says WAL) so that it opens read-only anywhere
 * without -wal/-shm companions. Not flushed: the caller decides.
 *
 * The copy is the kernel's (`cp`, which uses `copy_file_range`): about four times faster here than
 * reading and writing through this thread's buffers. On a filesystem that can share extents
 * (XFS with reflink, btrfs) the kernel may share them instead of copying, exactly as `cp` does;
 * the copy is still a separate file that later writes to the database never change.
 * @param {string} source @param {string} destination @param {number} bytes
 * @returns {number} the destination's open file descriptor
 */
export function copyFrozen(source, destination, bytes) {
  // The destination is this backup's own temp file: one left by an earlier run of the same job
  // that died is replaced, as the backup API would.
  fs.rmSync(destination, { force: true });
  copyInChild(source, destination);
  const output = fs.openSync(destination, 'r+');
  try {
    // The copy takes the database's mode; a backup is private to its owner.
    fs.fchmodSync(output, 0o600);
    const size = fs.fstatSync(output).size;
    if (size < bytes) {
      throw Object.assign(new Error(`the database file holds ${size} bytes, fewer than its ${bytes}`), { code: 'SNAPSHOT_SHORT' });
    }
    if (size > bytes) fs.ftruncateSync(output, bytes);
    const versions = Buffer.alloc(2);
    fs.readSync(output, versions, 0, 2, WRITE_VERSION);
    if (versions[0] === 2) fs.writeSync(output, Buffer.from([1, 1]), 0, 2, WRITE_VERSION);
    return output;
  } catch (err) {
    fs.closeSync(output);
    throw err;
  }
}

/**
 * `cp` in a process of its own. This process must never open and close a descriptor of the live
 * database itself: POSIX advisory locks belong to the process, and closing any descriptor of a
 * file drops every lock the process holds on it, SQLite's included. The WAL archiver's connections
 * in this process would then hold no lock on the database file, and the application's last
 * connection, closing, would checkpoint and delete a `-wal` the archiver has not read yet.
 * @param {string} source @param {string} destination
 */
function copyInChild(source, destination) {
  const run = spawnSync('cp', ['--reflink=auto', '--', source, destination], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (run.error) throw run.error;
  if (run.status !== 0) {
    const said = String(run.stderr).trim();
    // The error as the copy in this process would have thrown it (ENOSPC, EACCES…): the backup
    // explains those to the operator by their code.
    throw Object.assign(new Error(`cp ${source} failed: ${said || `exit ${run.status ?? run.signal}`}`), { code: errnoOf(said) });
  }
}

/** Errno names by the text `cp` prints for them (strerror; libuv's texts are the same but for a few). */
const ERRNO_BY_TEXT = new Map([
  ...[...getSystemErrorMap().values()].map(([name, text]) => /** @type {[string, string]} */ ([text.toLowerCase(), name])),
  ['input/output error', 'EIO'],
  ['disk quota exceeded', 'EDQUOT'],
]);

/** @param {string} said @returns {string | undefined} */
function errnoOf(said) {
  const text = /: ([^:]+)$/.exec(said.split('\n').at(-1) ?? '')?.[1];
  return text ? ERRNO_BY_TEXT.get(text.toLowerCase()) : undefined;
}
