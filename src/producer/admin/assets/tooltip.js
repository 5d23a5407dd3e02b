// @ts-check
/** The timeline's tooltip: a few lines of text next to the pointer or the focused mark. */
import { $, clear, el } from './dom.js';

/**
 * @param {string[]} rows
 * @param {number} px where to show it, in client coordinates
 * @param {number} py
 */
export function showTip(rows, px, py) {
  const tip = $('tip');
  clear(tip);
  for (const row of rows) tip.appendChild(el('div', null, row));
  tip.hidden = false;
  const wrap = /** @type {HTMLElement} */ (tip.parentNode).getBoundingClientRect();
  const left = Math.min(Math.max(px - wrap.left + 12, 4), wrap.width - 290);
  tip.style.left = `${Math.max(left, 4)}px`;
  tip.style.top = `${py - wrap.top + 14}px`;
}

export function hideTip() {
  $('tip').hidden = true;
}
