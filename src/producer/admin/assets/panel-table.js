// @ts-check
/** The backups table: one row per backup of the page shown, with Verify and Restore… unless read-only. */
import { restoreBackup, verifyBackup } from './actions.js';
import { $, clear, control, el } from './dom.js';
import { bytes, timeEl } from './format.js';
import { READ_ONLY, state, verificationClass, verificationOf } from './state.js';

/** @typedef {import('./types.js').BackupItem} BackupItem */
/** @typedef {import('./types.js').Mirror} Mirror */

export function renderTable() {
  const tbody = $('backups-body');
  clear(tbody);
  const m = state.health && state.health.storage && state.health.storage.mirror;
  for (const b of state.table.rows) tbody.appendChild(row(b, m));
  if (!state.table.rows.length)
    tbody.appendChild(el('tr', null)).appendChild(el('td', { colspan: READ_ONLY ? 7 : 8 }, 'No backups match.'));
  control('page-older', HTMLButtonElement).disabled = !state.table.next;
  control('page-newer', HTMLButtonElement).disabled = !state.table.history.length;
  $('page-info').textContent = `page ${state.table.history.length + 1}`;
}

/**
 * @param {BackupItem} b
 * @param {Mirror | undefined | null} m
 */
function row(b, m) {
  const d = state.details[b.id];
  const tr = el('tr', { 'data-backup-id': b.id, 'data-status': b.status, 'data-type': b.backupType });
  tr.appendChild(el('td', { class: 'num', 'data-label': 'ID' }, String(b.id)));
  const type = b.backupType + (b.backupType === 'pre-migration' ? ' (safety)' : '');
  tr.appendChild(el('td', { 'data-label': 'Type' }, type + (b.status !== 'completed' ? ` · ${b.status.replace('_', ' ')}` : '')));
  const td = el('td', { 'data-label': 'Time' });
  td.appendChild(timeEl(b.startedAt));
  tr.appendChild(td);
  tr.appendChild(el('td', { class: 'num', 'data-label': 'Size' }, bytes(b.fileSize)));
  tr.appendChild(el('td', { 'data-label': 'Encoding' }, d ? d.compression : '…'));
  tr.appendChild(verificationCell(b));
  tr.appendChild(mirrorCell(b, m));
  if (!READ_ONLY) tr.appendChild(actionsCell(b));
  return tr;
}

/** @param {BackupItem} b */
function verificationCell(b) {
  const v = verificationOf(b.id);
  const td = el('td', { 'data-label': 'Verification', 'data-verification': verificationClass(b) });
  if (v) {
    td.appendChild(el('span', { class: v.valid ? 'good' : 'bad', title: v.message }, `${v.valid ? 'valid' : 'invalid'} (${v.mode}) `));
    td.appendChild(timeEl(v.verifiedAt));
  } else td.textContent = b.status === 'completed' ? 'never' : '—';
  return td;
}

/**
 * Whether the mirror holds the backup, as far as `/health` tells: its failed copies by id, and
 * whether any copy is missing at all.
 * @param {BackupItem} b
 * @param {Mirror | undefined | null} m
 */
function mirrorCell(b, m) {
  /** @param {string} text @param {string} title */
  const cell = (text, title) => el('td', { title, 'data-label': 'Mirror copy' }, text);
  if (!m || !m.configured) return cell('no mirror', 'no mirror configured');
  const failed = m.failed.filter((f) => f.backupId === b.id)[0];
  if (failed) return cell('failed', failed.error || '');
  if (m.missing === 0 && b.status === 'completed') return cell('copied', m.location);
  return cell(b.status === 'completed' ? 'copied or pending' : '—', `${m.missing} backups are not copied yet`);
}

/** @param {BackupItem} b */
function actionsCell(b) {
  const td = el('td', { 'data-label': 'Actions' });
  const actions = el('div', { class: 'actions' });
  if (b.status === 'completed') {
    const verify = el('button', { type: 'button', 'data-action': 'verify', 'aria-label': `Verify backup ${b.id}` }, 'Verify');
    verify.addEventListener('click', () => verifyBackup(b));
    const restore = el(
      'button',
      { type: 'button', class: 'danger', 'data-action': 'restore', 'aria-label': `Restore backup ${b.id}` },
      'Restore…',
    );
    restore.addEventListener('click', () => restoreBackup(b));
    actions.appendChild(verify);
    actions.appendChild(restore);
  }
  td.appendChild(actions);
  return td;
}
