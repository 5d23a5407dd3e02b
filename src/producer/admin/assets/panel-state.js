// @ts-check
/** The top of the page: the health verdict, its problems and the six cards of "State at a glance". */
import { $, clear, el, line } from './dom.js';
import { ago, bytes, local, timeEl } from './format.js';
import { state, verificationOf } from './state.js';

/** @typedef {import('./types.js').Health} Health */

export function renderState() {
  const h = state.health;
  if (!h) return;
  renderVerdict(h);
  renderLastBackup(h);
  renderArchive(h);
  renderVerification();
  renderDrill(h);
  renderDisk(h);
  renderMirror(h);
}

/** @param {Health} h */
function renderVerdict(h) {
  const verdict = $('verdict');
  verdict.className = `verdict ${h.status}`;
  verdict.setAttribute('data-status', h.status);
  const n = (h.problems || []).length;
  verdict.textContent = { ok: 'Healthy', degraded: 'Degraded', down: 'Down' }[h.status] + (n ? ` · ${n} problem${n === 1 ? '' : 's'}` : '');
  const problems = $('problems');
  clear(problems);
  if (!n) problems.appendChild(el('li', { class: 'none' }, 'No problems: backups are on time and everything answers.'));
  for (const p of h.problems || []) problems.appendChild(el('li', null, p));
}

/** @param {Health} h */
function renderLastBackup(h) {
  const dd = $('s-last-backup');
  clear(dd);
  if (h.backups.lastSuccessfulBackup) {
    dd.appendChild(timeEl(h.backups.lastSuccessfulBackup));
    line(dd, `${ago(h.backups.lastSuccessfulBackupAgeSeconds)} · ${bytes(h.backups.lastBackupSize)}`, h.backups.overdue ? 'bad' : null);
    if (h.backups.overdue) line(dd, 'overdue', 'bad');
  } else dd.textContent = 'none yet';
}

/** @param {Health} h */
function renderArchive(h) {
  const dd = $('s-archive');
  clear(dd);
  const w = h.wal;
  if (!w.enabled) dd.textContent = 'off';
  else if (!w.running) dd.appendChild(el('span', { class: 'bad' }, 'not running'));
  else {
    dd.appendChild(el('span', { 'data-lag': String(w.lagSeconds) }, `lag ${w.lagSeconds === null ? '—' : `${w.lagSeconds} s`}`));
    line(dd, `generation ${w.generation} · ${w.segments} segments · ${bytes(w.bytes)}`);
  }
}

/** The newest verification of a backup the page has read, and the archive's. */
function renderVerification() {
  const dd = $('s-verification');
  clear(dd);
  /** @type {{ id: string, v: import('./types.js').Verification } | null} */
  let best = null;
  for (const id of Object.keys(state.details)) {
    const v = verificationOf(Number(id));
    if (v && (!best || v.verifiedAt > best.v.verifiedAt)) best = { id, v };
  }
  /** @type {{ ok: boolean, at: string, firstBadFile?: string | null } | null} */
  let archive = null;
  for (const g of (state.window && state.window.generations) || []) {
    if (g.verification && (!archive || g.verification.at > archive.at)) archive = g.verification;
  }
  if (best) {
    const { id, v } = best;
    dd.appendChild(el('span', { class: v.valid ? 'good' : 'bad' }, `backup #${id} ${v.valid ? 'valid' : 'invalid'} (${v.mode})`));
    line(dd, '').appendChild(timeEl(v.verifiedAt));
  } else dd.textContent = 'no backup verified yet';
  if (archive) {
    const words = archive.ok ? 'valid' : `broken at ${archive.firstBadFile || 'its snapshot'}`;
    line(dd, `archive: ${words}, ${local(archive.at)}`, archive.ok ? null : 'bad');
  }
}

/** @param {Health} h */
function renderDrill(h) {
  const dd = $('s-drill');
  clear(dd);
  const d = h.drills && h.drills.last;
  if (d) {
    dd.appendChild(el('span', { class: d.ok ? 'good' : 'bad' }, d.ok ? 'passed' : 'failed'));
    line(dd, '').appendChild(timeEl(d.at));
    line(dd, `restore took ${(d.durationMs / 1000).toFixed(1)} s${d.reason ? ` · ${d.reason}` : ''}`);
  } else dd.textContent = 'never run';
}

/** @param {Health} h */
function renderDisk(h) {
  const dd = $('s-disk');
  clear(dd);
  const { freeBytes, neededForNextBackup } = h.disk;
  const enough = freeBytes === null || neededForNextBackup === null ? null : freeBytes >= neededForNextBackup;
  dd.appendChild(el('span', { class: enough === false ? 'bad' : 'good' }, `${bytes(freeBytes)} free`));
  line(dd, `the next backup needs ${bytes(neededForNextBackup)}`);
}

/** @param {Health} h */
function renderMirror(h) {
  const dd = $('s-mirror');
  clear(dd);
  const m = h.storage && h.storage.mirror;
  if (!m || !m.configured) {
    dd.textContent = 'not configured';
    return;
  }
  const answer = m.writable === null ? 'no answer' : m.writable ? 'reachable' : 'unreachable';
  dd.appendChild(el('span', { class: m.writable === false || m.outage ? 'bad' : 'good' }, answer));
  line(dd, m.location);
  line(dd, `${m.copies} copies · ${m.missing} missing${m.failed.length ? ` · ${m.failed.length} failed` : ''}`);
  if (m.outage) line(dd, `failing since ${local(m.outage.since)}: ${m.outage.reason}`, 'bad');
}
