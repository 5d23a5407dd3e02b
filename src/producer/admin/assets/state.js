// @ts-check
/** What the page knows between polls, and what it was rendered with. */

/** @typedef {import('./types.js').Health} Health */
/** @typedef {import('./types.js').RecoveryWindow} RecoveryWindow */
/** @typedef {import('./types.js').BackupItem} BackupItem */
/** @typedef {import('./types.js').BackupDetail} BackupDetail */

/** How often the page reads the API again. */
export const POLL_MS = 4000;
/** Rows of the backups table. */
export const PAGE = 25;
/** At most this many backups on the timeline. */
export const MARK_LIMIT = 400;
/** BOARD_READ_ONLY: the server rendered no action control, and the script adds none. */
export const READ_ONLY = document.body.getAttribute('data-read-only') === 'true';

/**
 * @typedef {object} TableState
 * @property {number | null} cursor the API's cursor of the page shown (null: the newest)
 * @property {(number | null)[]} history the cursors of the newer pages, for ← Newer
 * @property {number | null} next the cursor of the next older page, if any
 * @property {BackupItem[]} rows
 */

/**
 * @typedef {object} PageState
 * @property {Health | null} health
 * @property {RecoveryWindow | null} window
 * @property {Record<number, BackupDetail>} details each backup's detail, by id, as last read
 * @property {BackupItem[]} marks the backups on the timeline, newest first
 * @property {number | null} pick the moment picked to restore to (ms)
 * @property {string} span the timeline's span: `fit` or milliseconds back from now
 * @property {TableState} table
 */

/** @type {PageState} */
export const state = {
  health: null,
  window: null,
  details: {},
  marks: [],
  pick: null,
  span: 'fit',
  table: { cursor: null, history: [], next: null, rows: [] },
};

/**
 * A backup's last verification: null when it has none, undefined while its detail is not read yet.
 * @param {number} id
 */
export function verificationOf(id) {
  const d = state.details[id];
  return d ? d.lastVerification || null : undefined;
}

/**
 * The word the table and the timeline mark a backup with: failed, valid, invalid or never.
 * @param {BackupItem} b
 */
export function verificationClass(b) {
  if (b.status === 'failed') return 'failed';
  const v = verificationOf(b.id);
  return v ? (v.valid ? 'valid' : 'invalid') : 'never';
}
