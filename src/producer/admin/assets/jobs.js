// @ts-check
/** "Jobs started here": a line per action, following its job until it ends, then the page refreshed. */
import { getJob } from './api.js';
import { $, clear, el } from './dom.js';
import { bytes, local } from './format.js';

/** @typedef {import('./types.js').JobAnswer} JobAnswer */
/** @typedef {import('./types.js').JobResult} JobResult */

/** How often a running job is read again. */
const JOB_POLL_MS = 500;

/** What runs once a job has ended: the page's whole refresh, set by main.js. */
let afterJob = () => Promise.resolve();

/** @param {() => Promise<unknown>} refresh */
export function setAfterJob(refresh) {
  afterJob = () => refresh().then(() => undefined);
}

/**
 * A line at the top of the list.
 * @param {string} text
 * @param {string | null} [cls]
 */
export function note(text, cls) {
  const li = el('li', cls ? { class: cls } : null, text);
  $('job-list').prepend(li);
  return li;
}

/**
 * The handler of a refused request: a line in the request's words.
 * @param {string} label
 * @returns {(err: Error) => void}
 */
export function failed(label) {
  return (err) => {
    note(`${label} refused: ${err.message}`, 'bad');
  };
}

/**
 * Follows a queued job on its line (its state, its progress) until it completes or fails.
 * @param {string} label
 * @param {JobAnswer} answer
 * @param {() => void} [onEnd] called when it ends, before the page is refreshed
 */
export function track(label, answer, onEnd) {
  const li = note(`${label}: queued`, null);
  li.setAttribute('data-job-id', answer.jobId);
  li.setAttribute('data-job-state', 'queued');
  const bar = el('progress', { max: 100 });
  function poll() {
    getJob(answer.jobId).then(
      (job) => {
        li.setAttribute('data-job-state', job.state);
        clear(li);
        li.appendChild(document.createTextNode(`${label}: ${job.state.replace('-', ' ')} `));
        if ((job.state === 'completed' || job.state === 'failed') && onEnd) onEnd();
        if (job.state === 'completed') {
          li.className = 'good';
          li.appendChild(document.createTextNode(describeResult(job.result)));
          return afterJob();
        }
        if (job.state === 'failed') {
          li.className = 'bad';
          li.appendChild(document.createTextNode(job.error || ''));
          return afterJob();
        }
        if (typeof job.progress === 'number') {
          bar.value = job.progress;
          li.appendChild(bar);
        } else if (job.progress && typeof job.progress === 'object' && job.progress.stage) {
          li.appendChild(document.createTextNode(`(${job.progress.stage})`));
        }
        setTimeout(poll, JOB_POLL_MS);
        return undefined;
      },
      (err) => {
        li.className = 'bad';
        li.textContent = `${label}: ${err.message}`;
      },
    );
  }
  poll();
}

/**
 * A finished job's result in a few words: a verification's verdict, where a restore went, the backup made.
 * @param {JobResult | null} r
 */
function describeResult(r) {
  if (!r || typeof r !== 'object') return '';
  if (r.valid !== undefined) return r.valid ? 'valid' : `invalid: ${r.message || ''}`;
  const safety = r.safetyBackupId ? ` (safety backup #${r.safetyBackupId})` : '';
  if (r.wal && r.wal.restoredTo) return `restored to ${local(r.wal.restoredTo)}${safety}`;
  if (r.safetyBackupId !== undefined) return `restored backup #${r.backupId}${safety}`;
  if (r.fileName !== undefined) return `backup #${r.id}, ${bytes(r.fileSize)}`;
  return '';
}
