// @ts-check
/** Times and sizes in the page's words: local time shown, UTC in the title, bytes in binary units. */
import { el } from './dom.js';

/** @type {Intl.DateTimeFormatOptions} */
const LOCAL = { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' };

/**
 * A moment as milliseconds since the epoch, from the API's ISO string or a number already.
 * @param {string | number} iso
 */
export function ms(iso) {
  return typeof iso === 'number' ? iso : Date.parse(iso);
}

/** @param {string | number} iso */
export function local(iso) {
  return new Date(ms(iso)).toLocaleString(undefined, LOCAL);
}

/** @param {string | number} iso */
export function utc(iso) {
  return new Date(ms(iso))
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

/**
 * A `<time>` showing the local time, with the UTC one as its title.
 * @param {string | number} iso
 */
export function timeEl(iso) {
  return el('time', { datetime: new Date(ms(iso)).toISOString(), title: utc(iso) }, local(iso));
}

/** @param {number | null | undefined} seconds */
export function ago(seconds) {
  if (seconds === null || seconds === undefined) return '';
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

/** @param {number | null | undefined} n */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

/**
 * The value of a datetime-local input for a moment, in the browser's time zone, to the second.
 * @param {number} t
 */
export function inputValue(t) {
  const d = new Date(t);
  /** @param {number} n */
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
