// @ts-check
/**
 * The operator page's script (the page loads this module; it imports the rest): wires the
 * controls to the actions, then reads the API and redraws every few seconds.
 */
import { backupNow, restoreTo } from './actions.js';
import { $, control, find } from './dom.js';
import { failed, note, setAfterJob } from './jobs.js';
import { loadTable } from './loaders.js';
import { refreshAll, refreshEverything, schedule, showFailure } from './poll.js';
import { state } from './state.js';
import { movePickByKey, renderTimeline, setPick } from './timeline.js';
import { hideTip } from './tooltip.js';

/** The form under the timeline: a moment typed or picked, or the latest. Absent in read-only mode. */
function wireRestoreForm() {
  const form = find('restore-to-form');
  if (!form) return;
  const input = control('restore-at', HTMLInputElement);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const t = new Date(input.value).getTime();
    if (isNaN(t)) {
      note('Type a moment to restore to first', 'bad');
      return;
    }
    if (Math.abs(t - (state.pick || 0)) >= 1000) setPick(t);
    restoreTo(/** @type {number} */ (state.pick));
  });
  input.addEventListener('change', () => {
    const t = new Date(input.value).getTime();
    if (!isNaN(t)) setPick(t);
  });
  $('restore-latest').addEventListener('click', () => restoreTo(state.window && state.window.enabled ? 'latest' : 'latest-valid'));
}

/** The table's filters and pager: each change reads the table again from the API. */
function wireTable() {
  const reload = () => loadTable().catch(failed('Loading backups'));
  const refilter = () => {
    state.table.cursor = null;
    state.table.history = [];
    reload();
  };
  control('f-type', HTMLSelectElement).addEventListener('change', refilter);
  control('f-status', HTMLSelectElement).addEventListener('change', refilter);
  $('page-older').addEventListener('click', () => {
    if (!state.table.next) return;
    state.table.history.push(state.table.cursor);
    state.table.cursor = state.table.next;
    reload();
  });
  $('page-newer').addEventListener('click', () => {
    if (!state.table.history.length) return;
    state.table.cursor = /** @type {number | null} */ (state.table.history.pop());
    reload();
  });
}

function wire() {
  const now = find('backup-now');
  if (now) now.addEventListener('click', backupNow);
  wireRestoreForm();
  $('timeline').addEventListener('keydown', movePickByKey);
  const span = control('span', HTMLSelectElement);
  span.addEventListener('change', () => {
    state.span = span.value;
    refreshAll();
  });
  wireTable();
  window.addEventListener('resize', () => renderTimeline());
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') hideTip();
  });
}

setAfterJob(refreshEverything);
wire();
refreshEverything().catch(showFailure).then(schedule);
