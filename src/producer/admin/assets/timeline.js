// @ts-check
/**
 * The recovery window drawn as an SVG timeline: archive generations as bars (click one to pick a
 * moment), the gaps between them hatched, each backup a mark (click one to restore it), now and
 * the picked moment as lines. ← → Home End move the pick from the keyboard.
 */
import { restoreBackup } from './actions.js';
import { $, clear, find, svg } from './dom.js';
import { bytes, inputValue, local, ms, utc } from './format.js';
import { READ_ONLY, state, verificationClass, verificationOf } from './state.js';
import { hideTip, showTip } from './tooltip.js';
import { renderWindowSummary } from './window-summary.js';

/** @typedef {import('./types.js').BackupItem} BackupItem */
/** @typedef {import('./types.js').Generation} Generation */

/** The drawing's size in SVG units: its width follows the element's, so text keeps its size. */
let W = 1000;
const H = 120;
const PAD = 14;
/** The span of time drawn, in ms. */
let view = { start: 0, end: 1 };

/** @param {string | number} t */
const x = (t) => PAD + ((ms(t) - view.start) / (view.end - view.start)) * (W - 2 * PAD);
/** @param {number} px */
const tAt = (px) => view.start + ((px - PAD) / (W - 2 * PAD)) * (view.end - view.start);

function computeView() {
  const now = Date.now();
  if (state.span !== 'fit') {
    view = { start: now - Number(state.span), end: now + Number(state.span) * 0.02 };
    return;
  }
  const firsts = [];
  if (state.window && state.window.earliest) firsts.push(ms(state.window.earliest));
  const oldest = state.marks[state.marks.length - 1];
  if (oldest) firsts.push(ms(oldest.startedAt));
  const start = firsts.length ? Math.min(...firsts) : now - 3600000;
  const width = Math.max(now - start, 60000);
  view = { start: start - width * 0.03, end: now + width * 0.03 };
}

/** @param {BackupItem} b */
function markDetails(b) {
  const v = verificationOf(b.id);
  const d = state.details[b.id];
  return [
    `Backup #${b.id} · ${b.backupType}${b.backupType === 'pre-migration' ? ' (safety)' : ''} · ${b.status}`,
    `${local(b.startedAt)}  (${utc(b.startedAt)})`,
    bytes(b.fileSize) + (d ? ` · ${d.compression}` : ''),
    v ? `last verification: ${v.valid ? 'valid' : 'invalid'} (${v.mode}, ${local(v.verifiedAt)})` : 'never verified',
  ];
}

/**
 * Shows the tip while the pointer is over an element.
 * @param {Element} target
 * @param {() => string[]} rows
 */
function tipOnHover(target, rows) {
  target.addEventListener('mousemove', (e) =>
    showTip(rows(), /** @type {MouseEvent} */ (e).clientX, /** @type {MouseEvent} */ (e).clientY),
  );
  target.addEventListener('mouseleave', hideTip);
}

/** @param {SVGSVGElement} s */
function drawAxis(s) {
  const defs = svg('defs', {});
  const pattern = svg('pattern', { id: 'gap-hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' });
  pattern.appendChild(svg('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: '#b3261e', 'stroke-width': 1.5 }));
  defs.appendChild(pattern);
  s.appendChild(defs);
  s.appendChild(svg('line', { x1: PAD, x2: W - PAD, y1: 96, y2: 96, stroke: '#d0d4d9' }));
  const span = view.end - view.start;
  /** @type {Intl.DateTimeFormatOptions} */
  const format =
    span > 172800000
      ? { month: 'short', day: 'numeric', hour: '2-digit' }
      : { hour: '2-digit', minute: '2-digit', second: span < 7200000 ? '2-digit' : undefined };
  for (let i = 0; i <= 4; i++) {
    const t = view.start + (span * i) / 4;
    const tx = x(t);
    s.appendChild(svg('line', { x1: tx, x2: tx, y1: 93, y2: 99, stroke: '#9aa0a6' }));
    const label = svg('text', { x: tx, y: 112, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' });
    label.textContent = new Date(t).toLocaleString(undefined, format);
    s.appendChild(label);
  }
}

/** @param {SVGSVGElement} s */
function drawGaps(s) {
  for (const g of (state.window || { gaps: [] }).gaps) {
    const gx = Math.max(x(g.from), PAD);
    const gw = Math.max(x(g.to) - gx, 2);
    const r = svg('rect', { class: 'gap', x: gx, y: 18, width: gw, height: 26, 'data-gap': `${g.from}/${g.to}` });
    tipOnHover(r, () => ['Gap: no restore reaches', `${local(g.from)} → ${local(g.to)}`, g.reason]);
    s.appendChild(r);
  }
}

/** @param {Generation} g */
function generationDetails(g) {
  const info = [
    `Generation ${g.id} (${g.reason})`,
    `${local(g.start)} → ${local(g.end)}`,
    `${g.segments} segments · ${bytes(g.bytes)} · snapshot backup #${g.snapshotBackupId}`,
    g.verification
      ? `archive verification: ${g.verification.ok ? 'valid' : `broken: ${g.verification.reason || ''}`}`
      : 'archive not verified yet',
  ];
  if (!READ_ONLY) info.push('click to pick a moment to restore to');
  return info;
}

/** @param {SVGSVGElement} s */
function drawGenerations(s) {
  for (const g of (state.window || { generations: [] }).generations) {
    const gx = Math.max(x(g.start), PAD);
    const gw = Math.max(x(g.end) - gx, 3);
    const broken = g.verification && !g.verification.ok;
    const r = svg('rect', {
      class: `gen-bar${broken ? ' broken' : ''}`,
      x: gx,
      y: 20,
      width: gw,
      height: 22,
      rx: 2,
      'data-generation-id': g.id,
      'data-start': g.start,
      'data-end': g.end,
    });
    const info = generationDetails(g);
    tipOnHover(r, () => info);
    if (!READ_ONLY) {
      r.addEventListener('click', (e) => {
        // The moment under the pointer, in whole seconds, kept inside the generation.
        const rect = s.getBoundingClientRect();
        const t = tAt(((e.clientX - rect.left) / rect.width) * W);
        const lo = Math.ceil(ms(g.start) / 1000) * 1000;
        const hi = Math.floor(ms(g.end) / 1000) * 1000;
        setPick(Math.min(Math.max(Math.round(t / 1000) * 1000, lo), Math.max(hi, lo)));
      });
    }
    s.appendChild(r);
  }
}

/** @param {SVGSVGElement} s */
function drawMarks(s) {
  for (const b of state.marks) {
    const mx = x(b.startedAt);
    if (mx < PAD - 1) continue;
    /** @type {SVGElement} */
    const shape =
      b.backupType === 'pre-migration'
        ? svg('polygon', { points: [mx, 54, mx + 7, 62, mx, 70, mx - 7, 62].join(' ') })
        : svg('circle', { cx: mx, cy: 62, r: 6 });
    shape.setAttribute('class', `mark ${verificationClass(b)}${b.backupType === 'pre-migration' ? ' safety' : ''}`);
    shape.setAttribute('tabindex', '0');
    shape.setAttribute('role', 'button');
    shape.setAttribute('data-mark-id', String(b.id));
    shape.setAttribute('data-verification', verificationClass(b));
    shape.setAttribute('aria-label', markDetails(b).join('; '));
    tipOnHover(shape, () => markDetails(b));
    shape.addEventListener('focus', () => {
      const r = shape.getBoundingClientRect();
      showTip(markDetails(b), r.left, r.bottom);
    });
    shape.addEventListener('blur', hideTip);
    if (!READ_ONLY && b.status === 'completed') {
      shape.addEventListener('click', () => restoreBackup(b));
      shape.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          restoreBackup(b);
        }
      });
    }
    s.appendChild(shape);
  }
}

/** @param {SVGSVGElement} s */
function drawNowAndPick(s) {
  const nx = x(Date.now());
  s.appendChild(svg('line', { class: 'now', x1: nx, x2: nx, y1: 6, y2: 96, 'data-now': new Date().toISOString() }));
  const nowLabel = svg('text', { x: nx - 3, y: 12, 'text-anchor': 'end' });
  nowLabel.textContent = 'now';
  s.appendChild(nowLabel);
  if (state.pick !== null) {
    const px = x(state.pick);
    s.appendChild(svg('line', { class: 'pick', x1: px, x2: px, y1: 14, y2: 50, 'data-pick': new Date(state.pick).toISOString() }));
  }
}

function timelineSvg() {
  const s = $('timeline');
  if (!(s instanceof SVGSVGElement)) throw new Error('#timeline is not an <svg>');
  return s;
}

/** Draws the timeline anew from the state, at the element's present width. */
export function renderTimeline() {
  const s = timelineSvg();
  const box = s.getBoundingClientRect();
  W = Math.max(Math.round(box.width) || 1000, 300);
  s.setAttribute('viewBox', `0 0 ${W} ${H}`);
  computeView();
  clear(s);
  drawAxis(s);
  drawGaps(s);
  drawGenerations(s);
  drawMarks(s);
  drawNowAndPick(s);
  renderWindowSummary();
}

/**
 * Picks a moment to restore to: the form's input shows it (local time, and UTC beside it) and the
 * timeline draws it.
 * @param {number} t
 */
export function setPick(t) {
  state.pick = t;
  const input = find('restore-at');
  if (input instanceof HTMLInputElement) {
    input.value = inputValue(t);
    input.setAttribute('data-iso', new Date(t).toISOString());
    $('restore-at-utc').textContent = utc(t);
  }
  renderTimeline();
}

/**
 * ← → move the pick by a hundredth of the span shown (a tenth with Shift), Home and End to the
 * window's ends; always whole seconds inside the window.
 * @param {KeyboardEvent} e
 */
export function movePickByKey(e) {
  if (READ_ONLY || e.target !== $('timeline')) return;
  const win = state.window;
  if (!win || !win.latest || !win.earliest) return;
  const stepMs = Math.max(1000, (view.end - view.start) / (e.shiftKey ? 10 : 100));
  let t = state.pick === null ? ms(win.latest) : state.pick;
  const lo = Math.ceil(ms(win.earliest) / 1000) * 1000;
  const hi = Math.floor(ms(win.latest) / 1000) * 1000;
  // Whole seconds, rounded away from where the pick was, so that each key press moves it.
  if (e.key === 'ArrowLeft') t = Math.floor((t - stepMs) / 1000) * 1000;
  else if (e.key === 'ArrowRight') t = Math.ceil((t + stepMs) / 1000) * 1000;
  else if (e.key === 'Home') t = lo;
  else if (e.key === 'End') t = hi;
  else return;
  e.preventDefault();
  setPick(Math.min(Math.max(t, lo), Math.max(hi, lo)));
}
