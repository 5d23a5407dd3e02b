// @ts-check
/**
 * Reading the catalog's backups into the state: a page of the table, the timeline's marks, and
 * each backup's detail (its encoding and last verification, which the list does not carry).
 */
import { getBackup, listBackups } from './api.js';
import { $, control } from './dom.js';
import { ms } from './format.js';
import { renderTable } from './panel-table.js';
import { MARK_LIMIT, PAGE, POLL_MS, state } from './state.js';

/** @typedef {import('./types.js').BackupItem} BackupItem */

/** When each backup's detail was read, by id (ms). */
/** @type {Record<number, number>} */
const fetchedAt = {};
/** Details read at once. */
const PARALLEL = 6;

/**
 * Reads the detail of each backup not read within maxAgeMs (and of each still in progress), so
 * the timeline's hundreds of marks are not all re-read on every poll.
 * @param {number[]} ids
 * @param {number} maxAgeMs
 */
export function loadDetails(ids, maxAgeMs) {
  const now = Date.now();
  const todo = ids.filter((id) => {
    const d = state.details[id];
    const at = fetchedAt[id];
    return !d || d.status === 'in_progress' || at === undefined || !(now - at < maxAgeMs);
  });
  let i = 0;
  /** @returns {Promise<void>} */
  function worker() {
    if (i >= todo.length) return Promise.resolve();
    const id = /** @type {number} */ (todo[i++]);
    return getBackup(id)
      .then(
        (backup) => {
          state.details[id] = backup;
          fetchedAt[id] = Date.now();
        },
        () => {
          /* deleted meanwhile */
        },
      )
      .then(worker);
  }
  return Promise.all(Array.from({ length: PARALLEL }, worker));
}

/** The backups the timeline shows: newest first, back to the start of the span or MARK_LIMIT. */
export function loadMarks() {
  let since = state.span === 'fit' ? Date.now() - 7 * 86400000 : Date.now() - Number(state.span);
  if (state.window && state.window.earliest) since = Math.min(since, ms(state.window.earliest));
  /** @type {BackupItem[]} */
  const marks = [];
  /**
   * @param {number | null} cursor
   * @returns {Promise<void>}
   */
  function step(cursor) {
    return listBackups({ limit: 200, cursor }).then((page) => {
      let done = false;
      for (const b of page.backups) {
        if (ms(b.startedAt) < since) done = true;
        else if (marks.length < MARK_LIMIT) marks.push(b);
      }
      if (!done && page.nextCursor && marks.length < MARK_LIMIT) return step(page.nextCursor);
      return undefined;
    });
  }
  return step(null).then(() => {
    state.marks = marks;
    return loadDetails(
      marks.map((b) => b.id),
      60000,
    );
  });
}

/** One page of the table: the API's cursor; a type filter walks further pages until the table is full. */
export function loadTable() {
  const type = control('f-type', HTMLSelectElement).value;
  const status = control('f-status', HTMLSelectElement).value;
  /** @type {BackupItem[]} */
  const rows = [];
  let cursor = state.table.cursor;
  let total = 0;
  let rounds = 0;
  /** @returns {Promise<number | null>} */
  function step() {
    return listBackups({ limit: type ? 200 : PAGE, status, cursor }).then((page) => {
      total = page.total;
      /** @type {number | null} */
      let next = null;
      for (let i = 0; i < page.backups.length; i++) {
        const b = /** @type {BackupItem} */ (page.backups[i]);
        if (type && b.backupType !== type) continue;
        rows.push(b);
        if (rows.length === PAGE) {
          next = i < page.backups.length - 1 || page.nextCursor ? b.id : null;
          break;
        }
      }
      if (rows.length < PAGE && page.nextCursor && type && ++rounds < 20) {
        cursor = page.nextCursor;
        return step();
      }
      if (rows.length < PAGE) next = type && page.nextCursor ? page.nextCursor : null;
      if (!type) next = page.nextCursor;
      return next;
    });
  }
  return step()
    .then((next) => {
      state.table.rows = rows;
      state.table.next = next;
      $('b-total').textContent = `${total} backup${total === 1 ? '' : 's'} in the catalog`;
      return loadDetails(
        rows.map((b) => b.id),
        POLL_MS,
      );
    })
    .then(renderTable);
}
