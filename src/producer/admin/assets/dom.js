// @ts-check
/** Finding the page's elements and making new ones: the only DOM helpers the other files use. */

const SVGNS = 'http://www.w3.org/2000/svg';

/**
 * The page's element with this id. The page is rendered with every element the script asks for
 * this way; the few that read-only mode leaves out are looked up with `find`.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function $(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e;
}

/**
 * An element that may be absent (the action controls, which read-only mode leaves out).
 * @param {string} id
 * @returns {HTMLElement | null}
 */
export function find(id) {
  return document.getElementById(id);
}

/**
 * A form control of the page, typed by what it is.
 * @template {HTMLInputElement | HTMLSelectElement | HTMLButtonElement | HTMLDialogElement} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} type
 * @returns {T}
 */
export function control(id, type) {
  const e = $(id);
  if (!(e instanceof type)) throw new Error(`#${id} is not a ${type.name}`);
  return e;
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | number> | null} [attrs]
 * @param {string | null} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs, text) {
  const e = document.createElement(tag);
  if (attrs) for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

/**
 * @template {keyof SVGElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | number>} attrs
 * @returns {SVGElementTagNameMap[K]}
 */
export function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
  return e;
}

/** @param {Node} node */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/**
 * A second line under a card's value.
 * @param {HTMLElement} parent
 * @param {string} text
 * @param {string | null} [cls]
 */
export function line(parent, text, cls) {
  const s = el('small', cls ? { class: cls } : null, text);
  parent.appendChild(s);
  return s;
}
