// @ts-check
/** The sentences above the timeline: what the recovery window is, and how far the mirror alone reaches. */
import { $ } from './dom.js';
import { local } from './format.js';
import { state } from './state.js';

export function renderWindowSummary() {
  const w = state.window;
  const summary = $('window-summary');
  if (!w || !w.enabled) summary.textContent = 'WAL archiving is off: a restore goes back to a backup, not to any moment.';
  else if (!w.earliest || !w.latest) summary.textContent = 'WAL archiving is on; the window opens once the first snapshot is archived.';
  else {
    const gaps = w.gaps.length ? `, except ${w.gaps.length} gap${w.gaps.length === 1 ? '' : 's'}` : '';
    summary.textContent = `Any moment from ${local(w.earliest)} to ${local(w.latest)} can be restored to${gaps}.`;
  }
  // How far a restore from the mirror alone reaches (null without a mirror or with archiving off).
  const off = $('window-offsite');
  const o = w && w.offsite;
  off.hidden = !o;
  if (!o) return;
  const unsent = o.unmirroredSegments ? `, ${o.unmirroredSegments} segment${o.unmirroredSegments === 1 ? '' : 's'} not copied yet` : '';
  off.textContent =
    o.latest === null
      ? `Off-site: a restore from the mirror alone reaches no moment of the window yet${unsent}.`
      : `Off-site: a restore from the mirror alone reaches ${local(o.latest)} (lag ${o.lagSeconds} s${unsent}).`;
  off.className = `hint${o.lagSeconds === null || o.lagSeconds > o.threshold ? ' bad' : ''}`;
  off.setAttribute('data-lag', String(o.lagSeconds));
}
