// @ts-check
/** Reading the API again every few seconds and redrawing what changed. */
import { getHealth, getRecoveryWindow } from './api.js';
import { $ } from './dom.js';
import { utc } from './format.js';
import { loadMarks, loadTable } from './loaders.js';
import { renderState } from './panel-state.js';
import { POLL_MS, state } from './state.js';
import { renderTimeline } from './timeline.js';

/** Health, the recovery window and the timeline's backups, then the state cards and the timeline drawn. */
export function refreshAll() {
  return Promise.all([
    getHealth().then((h) => {
      state.health = h;
    }),
    getRecoveryWindow().then((w) => {
      state.window = w;
    }),
  ])
    .then(loadMarks)
    .then(() => {
      renderState();
      renderTimeline();
      $('updated').textContent = new Date().toLocaleTimeString();
      $('updated').setAttribute('title', utc(Date.now()));
    });
}

/** Everything, the table last (its mirror column reads the health just read). */
export function refreshEverything() {
  return refreshAll().then(loadTable);
}

/** @param {Error} err */
export function showFailure(err) {
  $('updated').textContent = `failed: ${err.message}`;
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;

/** The next refresh in POLL_MS, after which the one after it is scheduled, failed or not. */
export function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    refreshEverything().catch(showFailure).then(schedule);
  }, POLL_MS);
}
