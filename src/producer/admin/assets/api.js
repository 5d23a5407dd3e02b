// @ts-check
/**
 * The JSON API as the page reaches it: `/admin/api`, the very routers of `/api` and `/health`
 * behind the page's Basic login (src/producer/admin/router.ts). One function per call the page makes.
 */

/** @typedef {import('./types.js').Health} Health */
/** @typedef {import('./types.js').RecoveryWindow} RecoveryWindow */
/** @typedef {import('./types.js').BackupPage} BackupPage */
/** @typedef {import('./types.js').BackupDetail} BackupDetail */
/** @typedef {import('./types.js').Job} Job */
/** @typedef {import('./types.js').JobAnswer} JobAnswer */

const API = '/admin/api';

/** A refusal or failure, in the API's own words (`error.message`), else its status line. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {number} status
   */
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/**
 * @typedef {object} CallOptions
 * @property {string} [method]
 * @property {unknown} [body] sent as JSON
 * @property {boolean} [async] asks for `202` and a job to follow (`Prefer: respond-async`)
 * @property {number[]} [allow] statuses besides 2xx whose body is the answer (`/health`'s 503)
 */

/**
 * @param {string} path
 * @param {CallOptions} [opts]
 * @returns {Promise<any>} the parsed body; each caller below gives it its type
 */
async function call(path, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.async) headers.Prefer = 'respond-async';
  const res = await fetch(API + path, {
    method: opts.method || 'GET',
    headers,
    credentials: 'same-origin',
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const json = await res.json().catch(() => ({}));
  const fine = res.ok || (opts.allow && opts.allow.indexOf(res.status) >= 0);
  if (!fine) throw new ApiError((json.error && json.error.message) || `${res.status} ${res.statusText}`, res.status);
  return json;
}

/**
 * A query string of the parameters that have a value.
 * @param {Record<string, string | number | null | undefined>} params
 */
function query(params) {
  const q = Object.keys(params)
    .filter((k) => params[k] !== null && params[k] !== undefined && params[k] !== '')
    .map((k) => `${k}=${encodeURIComponent(String(params[k]))}`);
  return q.length ? `?${q.join('&')}` : '';
}

/** `/health`, whose 503 (down) still carries the whole answer. @returns {Promise<Health>} */
export const getHealth = () => call('/health', { allow: [503] });

/** @returns {Promise<RecoveryWindow>} */
export const getRecoveryWindow = () => call('/recovery-window');

/**
 * One page of the catalog's backups, newest first, before `cursor`.
 * @param {{ limit: number, status?: string, cursor?: number | null }} params
 * @returns {Promise<BackupPage>}
 */
export const listBackups = (params) => call(`/backups${query(params)}`);

/**
 * @param {number | string} id
 * @returns {Promise<BackupDetail>}
 */
export const getBackup = (id) => call(`/backups/${id}`).then((r) => r.backup);

/**
 * @param {string} id
 * @returns {Promise<Job>}
 */
export const getJob = (id) => call(`/jobs/${encodeURIComponent(id)}`).then((r) => r.job);

/** @returns {Promise<JobAnswer>} */
export const startBackup = () => call('/backups', { method: 'POST', body: {}, async: true });

/**
 * @param {number} id
 * @returns {Promise<JobAnswer>}
 */
export const startVerify = (id) => call(`/backups/${id}/verify`, { method: 'POST', body: { mode: 'full' }, async: true });

/**
 * @param {number} id
 * @returns {Promise<JobAnswer>}
 */
export const startRestore = (id) => call(`/backups/${id}/restore`, { method: 'POST', body: {}, async: true });

/**
 * A restore to a moment (ISO), to `latest` (the WAL archive's last commit) or `latest-valid`.
 * @param {string} to
 * @returns {Promise<JobAnswer>}
 */
export const startRestoreTo = (to) => call('/restores', { method: 'POST', body: { to }, async: true });
