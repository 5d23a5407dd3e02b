// @ts-check
/**
 * The page's actions: back up now, verify a backup, and the three restores (a backup, a moment,
 * the latest), each a restore only after the operator confirms it in the dialog.
 */
import { startBackup, startRestore, startRestoreTo, startVerify } from './api.js';
import { $, control } from './dom.js';
import { bytes, local, utc } from './format.js';
import { failed, track } from './jobs.js';
import { state } from './state.js';

/** @typedef {import('./types.js').BackupItem} BackupItem */

export function backupNow() {
  startBackup().then((a) => track(`Backup${a.joined ? ' (joined the one queued)' : ''}`, a), failed('Backup'));
}

/**
 * A full verification; the backup's detail is read again once it ends, so its row and mark change.
 * @param {BackupItem} b
 */
export function verifyBackup(b) {
  startVerify(b.id).then(
    (a) => {
      delete state.details[b.id];
      track(`Verify backup #${b.id}`, a, () => {
        delete state.details[b.id];
      });
    },
    failed(`Verify backup #${b.id}`),
  );
}

/**
 * Asks in the dialog; true when the operator pressed the button labelled `okLabel`.
 * @param {string} title
 * @param {string} text
 * @param {string} okLabel
 * @returns {Promise<boolean>}
 */
function confirmAction(title, text, okLabel) {
  const dialog = control('confirm', HTMLDialogElement);
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', function onClose() {
      dialog.removeEventListener('close', onClose);
      resolve(dialog.returnValue === 'ok');
    });
    dialog.showModal();
  });
}

/** The live database's size, for the question, when /health knows it. */
function dbLine() {
  const h = state.health;
  return h && h.database && h.database.sizeBytes !== null ? ` (now ${bytes(h.database.sizeBytes)})` : '';
}

/** @param {BackupItem} b */
export function restoreBackup(b) {
  const when = local(b.startedAt);
  confirmAction(
    `Restore backup #${b.id}?`,
    `The live database${dbLine()} will be replaced by backup #${b.id}, taken ${when} (${utc(b.startedAt)}). ` +
      'Everything written to it since then is replaced.',
    `Restore backup #${b.id}`,
  ).then((ok) => {
    if (!ok) return;
    startRestore(b.id).then((a) => track(`Restore of backup #${b.id}`, a), failed('Restore'));
  });
}

/**
 * A restore to a moment (ms), to `latest` (the WAL archive's last commit) or to `latest-valid`
 * (the newest backup that passes a full verification).
 * @param {number | 'latest' | 'latest-valid'} target
 */
export function restoreTo(target) {
  const replaced = `The live database${dbLine()} will be replaced by `;
  const text =
    target === 'latest' || target === 'latest-valid'
      ? replaced +
        (target === 'latest' ? 'its last archived commit (the WAL archive).' : 'the newest backup that passes a full verification.')
      : `${replaced}its state as of ${local(target)} (${utc(target)}). Everything written after that moment is replaced.`;
  const title = typeof target === 'number' ? `Restore to ${local(target)}?` : `Restore to ${target}?`;
  confirmAction(title, text, 'Restore').then((ok) => {
    if (!ok) return;
    const to = typeof target === 'number' ? new Date(target).toISOString() : target;
    startRestoreTo(to).then((a) => track(`Restore to ${typeof target === 'number' ? local(target) : target}`, a), failed('Restore'));
  });
}
